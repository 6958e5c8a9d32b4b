package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/store"
)

// Defaults of Options.
const (
	DefaultFirstRetry  = 4 * time.Second
	DefaultMaxDelay    = time.Hour
	DefaultGiveUpAfter = 24 * time.Hour
	DefaultTimeout     = 15 * time.Second

	// idleWait is how long Run sleeps with nothing pending; Notify wakes
	// it sooner. It only bounds the damage of a Notify the caller forgot.
	idleWait = time.Minute
	// storeRetry is how long Run waits after a read of the store failed
	// it, and the longest it backs off a write that failed after a POST
	// (see held).
	storeRetry = 5 * time.Second
	// batch is how many due rows one store read returns.
	batch = 32
)

// Options configures a Sender. URL and Secret are required.
type Options struct {
	URL    string // where to POST (http or https)
	Secret string // "whsec_..." (see ParseSecret)
	Logger hclog.Logger

	// FirstRetry bounds the first retry: it comes between FirstRetry/2
	// and FirstRetry after the first failure; each later delay doubles,
	// up to MaxDelay. After GiveUpAfter from the command's end the
	// delivery is abandoned (state expired).
	FirstRetry, MaxDelay, GiveUpAfter time.Duration
	// Timeout bounds one attempt (connect, send, answer).
	Timeout time.Duration
	// Client sends the requests; default: an http.Client with Timeout
	// that does not follow redirects (a 3xx is a failed attempt).
	Client *http.Client
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Stats counts delivery attempts by outcome, for /metrics.
type Stats struct {
	Delivered, Retried, Gone, Expired uint64
	// StoreErrors counts store reads and writes that failed the sender.
	StoreErrors uint64
}

// Sender delivers the outbox: Run it as an actor, Stop it to end Run, and
// call Notify after each store.Finish that queued a webhook.
type Sender struct {
	store  *store.Store
	opts   Options
	url    string
	shown  string // url as logs and errors show it: no user, query or fragment
	secret Secret
	log    hclog.Logger

	// held is the attempt made whose outcome the store could not record
	// (one at most: deliverDue stops at it). Run records it before it
	// sends anything else, backing off as after a failed attempt
	// (heldFails counts the failed tries), and never posts it again
	// meanwhile: a delivery made, or refused, is not made again only
	// because the store failed. Only Run's goroutine touches it; it is
	// lost with the process, and the outbox then sends that delivery
	// again (at least once).
	held      *heldAttempt
	heldFails int

	wake     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once

	delivered, retried, gone, expired, storeErrors atomic.Uint64
}

// New checks the options and returns a Sender for st's outbox.
func New(st *store.Store, opts Options) (*Sender, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Not the URL itself: receivers put secrets in its query.
		return nil, errors.New("webhook_url is not an http or https URL with a host")
	}
	secret, err := ParseSecret(opts.Secret)
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	return &Sender{
		store: st, opts: opts, url: u.String(), shown: redact(u), secret: secret,
		log:  opts.Logger.With("url", redact(u)),
		wake: make(chan struct{}, 1), stop: make(chan struct{}),
	}, nil
}

// redact is a URL as vmd writes it in logs and errors: its scheme, host
// and path only. Receivers put secrets in the query string (a token) and
// the user part; neither belongs in a log.
func redact(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.FirstRetry <= 0 {
		o.FirstRetry = DefaultFirstRetry
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = DefaultMaxDelay
	}
	if o.GiveUpAfter <= 0 {
		o.GiveUpAfter = DefaultGiveUpAfter
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Client == nil {
		o.Client = &http.Client{
			Timeout: o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Notify wakes Run to look at the outbox now. It never blocks.
func (s *Sender) Notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Stop ends Run, cancelling an attempt in flight: that attempt is not
// recorded, and the row is sent again after the restart (at least once).
// It may be called before Run, and more than once.
func (s *Sender) Stop() {
	s.stopOnce.Do(func() { close(s.stop) })
}

// Stats returns the counters.
func (s *Sender) Stats() Stats {
	return Stats{
		Delivered: s.delivered.Load(), Retried: s.retried.Load(),
		Gone: s.gone.Load(), Expired: s.expired.Load(),
		StoreErrors: s.storeErrors.Load(),
	}
}

// Run delivers what is due, then sleeps until the next row is due or
// Notify, until Stop or ctx ends. It returns nil: a failure of the store
// or of the receiver is logged, counted and retried, never fatal.
func (s *Sender) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer s.opts.Client.CloseIdleConnections()
	timer := time.NewTimer(0) // look at once: rows left by the last run
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-timer.C:
		}
		timer.Reset(s.deliverDue(ctx))
	}
}

// deliverDue records the held attempt, then sends every due row, and
// returns how long to sleep.
func (s *Sender) deliverDue(ctx context.Context) time.Duration {
	if err := s.recordHeld(ctx); err != nil {
		return s.heldFailed(ctx, err)
	}
	for {
		due, err := s.store.Due(ctx, s.opts.Now(), batch)
		if err != nil {
			return s.storeFailed(ctx, "read outbox", err)
		}
		for _, o := range due {
			if err := s.deliver(ctx, o); err != nil {
				return s.heldFailed(ctx, err)
			}
		}
		if ctx.Err() != nil || len(due) < batch {
			break
		}
	}
	next, ok, err := s.store.NextDue(ctx)
	switch {
	case err != nil:
		return s.storeFailed(ctx, "read outbox", err)
	case !ok:
		return idleWait
	}
	return max(0, next.Sub(s.opts.Now()))
}

func (s *Sender) storeFailed(ctx context.Context, what string, err error) time.Duration {
	if ctx.Err() == nil {
		s.storeErrors.Add(1)
		s.log.Error("webhook store failed", "op", what, "error", err)
	}
	return storeRetry
}

// heldAttempt is an attempt made and not yet recorded: the row as it was
// due, the attempt, and the receiver's error, for the log.
type heldAttempt struct {
	o       store.Outgoing
	a       store.Attempt
	postErr error
}

// heldFailed logs a failure to record the held attempt and returns how
// long to wait before the next try: longer each time, as a failing
// receiver's retries, but never longer than a failed read waits. The
// store is local and nothing else is sent meanwhile, so once it takes
// writes again the outbox goes on within storeRetry, not within the
// receiver's MaxDelay.
func (s *Sender) heldFailed(ctx context.Context, err error) time.Duration {
	s.heldFails++
	if ctx.Err() == nil {
		s.storeErrors.Add(1)
		s.log.Error("webhook store failed; recording the attempt again later, not sending it again",
			"op", "record attempt", "id", s.held.o.CommandID, "error", err)
	}
	return min(s.backoff(s.heldFails), storeRetry)
}

// recordHeld records the held attempt, if any.
func (s *Sender) recordHeld(ctx context.Context) error {
	if s.held != nil {
		if err := s.record(ctx, *s.held); err != nil {
			return err
		}
	}
	s.held, s.heldFails = nil, 0
	return nil
}

// deliver makes one attempt at o and records it. Only a store error is
// returned, the attempt then held; the receiver's failures are the
// attempt's outcome.
func (s *Sender) deliver(ctx context.Context, o store.Outgoing) error {
	status, err := s.post(ctx, o)
	if ctx.Err() != nil {
		return nil // stopped: not an attempt, the row stays due
	}
	h := heldAttempt{o: o, a: s.outcome(o, status, err), postErr: err}
	if err := s.record(ctx, h); err != nil {
		s.held = &h
		return err
	}
	return nil
}

// record writes an attempt to the store and counts it.
func (s *Sender) record(ctx context.Context, h heldAttempt) error {
	// Record even while stopping: a delivery that was made must not be
	// made again only because Stop came before the write.
	if err := s.store.Attempted(context.WithoutCancel(ctx), h.o.CommandID, h.a); err != nil &&
		!errors.Is(err, store.ErrNotFound) { // pruned meanwhile: nothing to record
		return err
	}
	s.count(h.o, h.a, h.postErr)
	return nil
}

// outcome turns an answer (or its absence) into the attempt to record.
func (s *Sender) outcome(o store.Outgoing, status int, err error) store.Attempt {
	now := s.opts.Now()
	a := store.Attempt{At: now, Status: status}
	switch {
	case err == nil && status >= 200 && status < 300:
		a.Outcome = store.DeliveryDelivered
	case status == http.StatusGone:
		a.Outcome = store.DeliveryGone
	default:
		a.Next = now.Add(s.backoff(o.Attempts + 1))
		a.Outcome = store.DeliveryPending
		if a.Next.Sub(o.CreatedAt) > s.opts.GiveUpAfter {
			a.Outcome, a.Next = store.DeliveryExpired, time.Time{}
		}
	}
	return a
}

// backoff is the delay after the n-th failed attempt (n >= 1): FirstRetry
// doubled n-1 times, capped at MaxDelay, with "equal jitter" (a random
// point in its upper half) so receivers coming back up are not hit by
// every vmd at once.
func (s *Sender) backoff(n int) time.Duration {
	d := s.opts.FirstRetry
	for i := 1; i < n && d < s.opts.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, s.opts.MaxDelay)
	return d/2 + rand.N(d/2+1)
}

func (s *Sender) count(o store.Outgoing, a store.Attempt, err error) {
	log := s.log.With("id", o.CommandID, "attempt", o.Attempts+1, "status", a.Status)
	if err != nil {
		log = log.With("error", err)
	}
	switch a.Outcome {
	case store.DeliveryDelivered:
		s.delivered.Add(1)
		log.Debug("webhook delivered")
	case store.DeliveryGone:
		s.gone.Add(1)
		log.Warn("webhook receiver answered 410, not retrying")
	case store.DeliveryExpired:
		s.expired.Add(1)
		log.Error("webhook given up", "after", s.opts.GiveUpAfter)
	default:
		s.retried.Add(1)
		log.Warn("webhook attempt failed", "next", a.Next)
	}
}

// post sends o once, signed, and returns the receiver's status.
func (s *Sender) post(ctx context.Context, o store.Outgoing) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(o.Payload))
	if err != nil {
		return 0, err
	}
	ts := s.opts.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vmd-webhook")
	req.Header.Set(HeaderID, o.CommandID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(HeaderSignature, s.secret.Sign(o.CommandID, ts, o.Payload))
	resp, err := s.opts.Client.Do(req)
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = s.shown // the client's error names the URL whole, query and all
	}
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	// Read a little of the answer so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}
