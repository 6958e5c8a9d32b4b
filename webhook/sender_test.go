package webhook

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/vmd-dev/vmd/internal/poll"
	"github.com/vmd-dev/vmd/outcome"
	"github.com/vmd-dev/vmd/store"
)

// hangUp, as a receiver's answer, closes the connection without a word.
const hangUp = -1

// receiver is a loopback webhook endpoint that answers from a script (the
// last answer repeats) and checks every signature with the Standard
// Webhooks library.
type receiver struct {
	srv        *httptest.Server
	wh         *standardwebhooks.Webhook
	ignoreTime bool // for senders on a shifted clock

	mu       sync.Mutex
	script   []int
	hits     int
	accepted []string // bodies answered 2xx
	bad      []error  // signature failures
}

func newReceiver(t *testing.T, script ...int) *receiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{wh: wh, script: script}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	verify := r.wh.Verify
	if r.ignoreTime {
		verify = r.wh.VerifyIgnoringTimestamp
	}
	err := verify(body, req.Header)
	r.mu.Lock()
	status := r.script[min(r.hits, len(r.script)-1)]
	r.hits++
	if err != nil {
		r.bad = append(r.bad, err)
	}
	if status >= 200 && status < 300 {
		r.accepted = append(r.accepted, string(body))
	}
	r.mu.Unlock()
	if status == hangUp {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
		return
	}
	w.WriteHeader(status)
}

func (r *receiver) counts() (hits int, accepted []string, bad []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits, append([]string(nil), r.accepted...), append([]error(nil), r.bad...)
}

// ended stores a command that ended with a webhook queued, and returns its
// id and payload.
func ended(t *testing.T, st *store.Store) (string, string) {
	t.Helper()
	ctx := context.Background()
	rec, _, err := st.Create(ctx, store.NewRecord{})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := Payload([]byte(fmt.Sprintf(`{"id":%q,"state":"succeeded","status":200}`, rec.ID)), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	err = st.Finish(ctx, rec.ID, store.End{State: store.State(outcome.Succeeded), Status: 200, Body: []byte("{}"), Webhook: payload})
	if err != nil {
		t.Fatal(err)
	}
	return rec.ID, string(payload)
}

// start runs a Sender until the end of t (or an earlier stop).
func start(t *testing.T, st *store.Store, url string, opts Options) (s *Sender, stop func()) {
	t.Helper()
	opts.URL, opts.Secret = url, testSecret
	if opts.FirstRetry == 0 {
		opts.FirstRetry = 10 * time.Millisecond
	}
	s, err := New(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	stop = sync.OnceFunc(func() {
		s.Stop()
		if err := <-done; err != nil {
			t.Errorf("Run = %v; want nil after Stop", err)
		}
	})
	t.Cleanup(stop)
	return s, stop
}

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// delivery returns the record's delivery as stored.
func delivery(t *testing.T, st *store.Store, id string) store.Delivery {
	t.Helper()
	rec, err := st.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Webhook
}

func TestDeliveredOnceAfterReceiverComesBack(t *testing.T) {
	t.Parallel()
	st := openStore(t, store.Memory)
	rcv := newReceiver(t, hangUp, http.StatusServiceUnavailable, http.StatusOK)
	s, stop := start(t, st, rcv.srv.URL, Options{})
	id, payload := ended(t, st)
	s.Notify()
	poll.Eventually(t, "delivered", func() bool { return delivery(t, st, id).State == store.DeliveryDelivered })
	stop()

	d := delivery(t, st, id)
	if d.Attempts != 3 || d.LastStatus != 200 || d.DeliveredAt.IsZero() {
		t.Errorf("delivery = %+v; want 3 attempts, last status 200, a delivered time", d)
	}
	hits, accepted, bad := rcv.counts()
	if hits != 3 || len(accepted) != 1 || accepted[0] != payload || len(bad) != 0 {
		t.Errorf("receiver: %d hits, accepted %q, signature errors %v; want 3, [%s], none",
			hits, accepted, bad, payload)
	}
	want := Stats{Delivered: 1, Retried: 2}
	if got := s.Stats(); got != want {
		t.Errorf("Stats() = %+v; want %+v", got, want)
	}
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		script    []int
		giveUp    time.Duration
		want      store.DeliveryState
		wantStats func(Stats) bool
	}{
		{"2xx delivered", []int{http.StatusNoContent}, 0, store.DeliveryDelivered,
			func(s Stats) bool { return s == Stats{Delivered: 1} }},
		{"410 stops at once", []int{http.StatusGone}, 0, store.DeliveryGone,
			func(s Stats) bool { return s == Stats{Gone: 1} }},
		{"redirect is a failure", []int{http.StatusFound, http.StatusOK}, 0, store.DeliveryDelivered,
			func(s Stats) bool { return s == Stats{Retried: 1, Delivered: 1} }},
		{"given up", []int{http.StatusInternalServerError}, 50 * time.Millisecond, store.DeliveryExpired,
			func(s Stats) bool { return s.Expired == 1 && s.Delivered == 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t, store.Memory)
			rcv := newReceiver(t, tt.script...)
			s, stop := start(t, st, rcv.srv.URL, Options{GiveUpAfter: tt.giveUp})
			id, _ := ended(t, st)
			s.Notify()
			poll.Eventually(t, string(tt.want), func() bool { return delivery(t, st, id).State == tt.want })
			stop()
			hits, _, bad := rcv.counts()
			if d := delivery(t, st, id); d.Attempts != hits || d.LastStatus != tt.script[min(hits, len(tt.script))-1] {
				t.Errorf("delivery = %+v; want %d attempts like the receiver's hits, its last status", d, hits)
			}
			if got := s.Stats(); !tt.wantStats(got) || len(bad) != 0 {
				t.Errorf("Stats() = %+v, signature errors %v; not what %s wants", got, bad, tt.name)
			}
		})
	}
}

func TestDeliveredAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rcv := newReceiver(t, http.StatusServiceUnavailable, http.StatusOK)
	st, err := store.Open(context.Background(), dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The first run fails once, then waits half an hour or more to retry.
	s, stop := start(t, st, rcv.srv.URL, Options{FirstRetry: time.Hour})
	id, payload := ended(t, st)
	s.Notify()
	poll.Eventually(t, "a failed attempt", func() bool { return delivery(t, st, id).Attempts == 1 })
	stop()
	st.Close()

	// The next run starts with a clock an hour ahead, so the retry is due;
	// the signature's timestamp is then an hour ahead too, and the library
	// would refuse it for that alone.
	rcv.ignoreTime = true
	st = openStore(t, dir)
	later := func() time.Time { return time.Now().Add(time.Hour) }
	start(t, st, rcv.srv.URL, Options{Now: later}) // no Notify: Run looks at once
	poll.Eventually(t, "delivered after restart", func() bool { return delivery(t, st, id).State == store.DeliveryDelivered })
	hits, accepted, bad := rcv.counts()
	if hits != 2 || len(accepted) != 1 || accepted[0] != payload || len(bad) != 0 {
		t.Errorf("receiver: %d hits, accepted %q, signature errors %v; want 2, [%s], none", hits, accepted, bad, payload)
	}
}

func TestStopCancelsAttemptInFlight(t *testing.T) {
	t.Parallel()
	st := openStore(t, store.Memory)
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // else the server does not watch the connection
		arrived <- struct{}{}
		<-r.Context().Done() // answer only when the sender gives up
	}))
	defer srv.Close()
	s, stop := start(t, st, srv.URL, Options{})
	id, _ := ended(t, st)
	s.Notify()
	<-arrived
	stop()
	if d := delivery(t, st, id); d != (store.Delivery{State: store.DeliveryPending}) {
		t.Errorf("delivery after Stop mid-attempt = %+v; want pending, no attempt recorded", d)
	}
}

func TestStopBeforeRun(t *testing.T) {
	t.Parallel()
	st := openStore(t, store.Memory)
	s, err := New(st, Options{URL: "http://127.0.0.1:1/", Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s.Stop()
	if err := s.Run(context.Background()); err != nil {
		t.Errorf("Run after Stop = %v; want nil", err)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	st := openStore(t, store.Memory)
	tests := []Options{
		{URL: "", Secret: testSecret},
		{URL: "ftp://example.com/", Secret: testSecret},
		{URL: "http:///path", Secret: testSecret},
		{URL: "http://example.com/", Secret: "plain"},
	}
	for _, o := range tests {
		if _, err := New(st, o); err == nil {
			t.Errorf("New(%+v) = nil error; want one", o)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	s := &Sender{opts: Options{}.withDefaults()}
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{1, 2 * time.Second, 4 * time.Second}, // the first retry comes within 5 s
		{2, 4 * time.Second, 8 * time.Second},
		{5, 32 * time.Second, 64 * time.Second},
		{12, 30 * time.Minute, time.Hour}, // capped
		{1000, 30 * time.Minute, time.Hour},
	}
	for _, tt := range tests {
		for range 100 {
			if got := s.backoff(tt.n); got < tt.min || got > tt.max {
				t.Fatalf("backoff(%d) = %v; want %v to %v", tt.n, got, tt.min, tt.max)
			}
		}
	}
}

// A record that keeps failing backs off as a receiver's retries do, up to
// storeRetry and no further: the store is local, and the outbox waits on it.
func TestHeldBackoffCapped(t *testing.T) {
	t.Parallel()
	s := &Sender{opts: Options{}.withDefaults(), log: hclog.NewNullLogger(), held: &heldAttempt{}}
	fail := errors.New("disk I/O error")
	first := s.heldFailed(context.Background(), fail)
	if first < 2*time.Second || first > 4*time.Second {
		t.Errorf("after the first failed record: wait %v; want 2s to 4s, as a first retry", first)
	}
	for n := 2; n <= 20; n++ {
		if d := s.heldFailed(context.Background(), fail); d > storeRetry {
			t.Fatalf("after %d failed records: wait %v; want at most %v", n, d, storeRetry)
		}
	}
}

// A delivery made whose outcome the store cannot record (the write fails
// after the POST) is not posted again while the store fails: the sender
// holds the outcome, tries to record it again backing off as after a
// failed attempt, and records it once the store takes writes.
func TestUnrecordedAttemptNotPostedAgain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), dir, store.Options{BusyTimeout: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id, payload := ended(t, st)
	unlock := lockStore(t, dir)
	rcv := newReceiver(t, http.StatusOK)
	s, stop := start(t, st, rcv.srv.URL, Options{})
	s.Notify()
	poll.Eventually(t, "the record of the attempt to fail four times", func() bool { return s.Stats().StoreErrors >= 4 })
	if hits, _, _ := rcv.counts(); hits != 1 {
		t.Errorf("receiver hit %d times while the store failed; want once", hits)
	}
	if d := delivery(t, st, id); d.Attempts != 0 {
		t.Errorf("delivery while the store fails = %+v; want nothing recorded yet", d)
	}
	unlock()
	poll.Eventually(t, "the attempt recorded", func() bool { return delivery(t, st, id).State == store.DeliveryDelivered })
	stop()
	hits, accepted, _ := rcv.counts()
	if d := delivery(t, st, id); hits != 1 || len(accepted) != 1 || accepted[0] != payload || d.Attempts != 1 || d.LastStatus != 200 {
		t.Errorf("after the store is back: %d hits, delivery %+v; want one delivery, recorded once with status 200", hits, d)
	}
	if got := s.Stats(); got.Delivered != 1 || got.Retried != 0 {
		t.Errorf("Stats() = %+v; want one delivered, none retried", got)
	}
}

// lockStore holds the write lock of the store in dir from another
// connection, as a backup or the sqlite3 shell can, until unlock.
func lockStore(t *testing.T, dir string) (unlock func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	return sync.OnceFunc(func() {
		if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
			t.Error(err)
		}
		conn.Close()
	})
}

// lockedBuffer is a log's output that the test reads while the sender
// writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Receivers put secrets in the URL's query (and user part): a failing
// webhook's log lines and New's errors show its scheme, host and path
// only.
func TestURLShownWithoutSecrets(t *testing.T) {
	t.Parallel()
	secrets := []string{"SECRET", "hunter2", "alice", "frag"}
	st := openStore(t, store.Memory)
	rcv := newReceiver(t, hangUp)
	host := strings.TrimPrefix(rcv.srv.URL, "http://")
	var logs lockedBuffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug})
	s, stop := start(t, st, "http://alice:hunter2@"+host+"/hook?token=SECRET#frag", Options{Logger: log})
	id, _ := ended(t, st)
	s.Notify()
	poll.Eventually(t, "a failed attempt", func() bool { return delivery(t, st, id).Attempts >= 1 })
	stop()
	out := logs.String()
	if !strings.Contains(out, "webhook attempt failed") || !strings.Contains(out, "http://"+host+"/hook") {
		t.Errorf("log = %s; want the failed attempt, naming http://%s/hook", out, host)
	}
	for _, secret := range secrets {
		if strings.Contains(out, secret) {
			t.Errorf("log shows %q:\n%s", secret, out)
		}
	}

	for _, u := range []string{
		"ftp://alice:hunter2@example.com/hook?token=SECRET#frag",
		"http://alice:hunter2@/hook?token=SECRET#frag",
		"http://alice:hunter2@[::1/hook?token=SECRET#frag",
		"alice:hunter2@example.com/hook?token=SECRET",
	} {
		_, err := New(st, Options{URL: u, Secret: testSecret})
		if err == nil {
			t.Errorf("New(%q) = nil error; want one", u)
			continue
		}
		for _, secret := range secrets {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("New(%q) = %v; shows %q", u, err, secret)
			}
		}
	}
}
