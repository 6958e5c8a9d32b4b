package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/vmd-dev/vmd/internal/poll"
	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// settleWait is how long vmd idles before a settled reading: it hands
// freed memory back to the OS a second after the last command. Config's
// Settle overrides it.
const settleWait = 1500 * time.Millisecond

// Allowed growth between settled readings: a leak, not the runtime's
// keeping of freed spans, fails the run (see the README's performance
// notes; a leak of 1 KiB a command grows RSS by 10 MiB over 10,000).
const (
	rssSlackKiB    = 3 << 10
	threadSlack    = 6
	goroutineSlack = 2
	warmCycles     = 3
)

// loadPhases runs the load and /health phases on one vmd, then stops it
// with SIGTERM.
func (r *runner) loadPhases(t testing.TB) {
	dir := filepath.Join(r.work, "load")
	s := startVMD(t, r.cfg, vmdSpec{name: "load", fake: r.fake, images: filepath.Join(dir, "images"),
		tmp: filepath.Join(dir, "tmp"), timeout: faultTimeout, env: []string{"LOG_LEVEL=info"}})
	// Warm-up: the start figures are of a vmd whose heap has met every
	// kind of command a few times.
	r.mix(t, s, warmCycles*cycleLen(), r.cfg.Seed+2, nil)
	if r.wants("load") {
		r.progress("load: %d commands", r.cfg.Commands)
		rep := &LoadReport{Start: r.settled(t, s)}
		rep.Commands, rep.Kinds = r.mix(t, s, r.cfg.Commands, r.cfg.Seed, rep)
		if n := rep.Commands.Requests; n != uint64(r.cfg.Commands) && t.Context().Err() == nil {
			t.Errorf("%d commands sent; want %d", n, r.cfg.Commands)
		}
		rep.End = r.flat(t, s, rep.Start, rssSlackKiB)
		rep.StoreBytes = int64(s.metric("vmd_store_size_bytes"))
		r.rep.Load = rep
	}
	if r.wants("health") && t.Context().Err() == nil {
		r.progress("health: %d commands, %d clients on /health", r.cfg.HealthCommands, r.cfg.HealthClients)
		r.rep.Health = r.health(t, s)
	}
	r.rep.Stops = append(r.rep.Stops, s.stop(t, r.fake))
}

// lockstep paces an attack of n hits one at a time: a hit starts only
// once the previous one's answer has been checked, so that the checks
// between commands see vmd idle, and their time counts in no latency
// (vegeta starts a hit's clock when the pacer lets it go).
type lockstep struct {
	ctx     context.Context
	n       uint64
	checked chan struct{}
}

// Pace lets hit number hits go once the one before it was checked.
func (l *lockstep) Pace(_ time.Duration, hits uint64) (time.Duration, bool) {
	if hits >= l.n {
		return 0, true
	}
	if hits > 0 {
		select {
		case <-l.checked:
		case <-l.ctx.Done():
			return 0, true
		}
	}
	return 0, false
}

// Rate is unknown: as fast as vmd answers.
func (l *lockstep) Rate(time.Duration) float64 { return 0 }

// mix runs n commands of the mix on s through vegeta, one at a time, and
// checks each answer and what it left (rep, if not nil, gets the usage
// figures). It returns vegeta's metrics, all and by kind.
func (r *runner) mix(t testing.TB, s *server, n int, seed uint64, rep *LoadReport) (*vegeta.Metrics, map[string]*vegeta.Metrics) {
	d := newDeck(seed)
	var mu sync.Mutex
	var dealt []*kind
	var bodies [][]byte
	body := func(k *kind, i int) []byte {
		m := map[string]any{"text": k.script(i)}
		if k.timed {
			m["timeoutMs"] = r.cfg.Timeout.Milliseconds()
		}
		b, _ := json.Marshal(m)
		return b
	}
	targeter := func(tgt *vegeta.Target) error {
		mu.Lock()
		defer mu.Unlock()
		k, i := d.next(), len(dealt)
		*tgt = vegeta.Target{Method: http.MethodPost, URL: s.URL + "/command", Body: body(k, i),
			Header: http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {mixKey(seed, i)}}}
		dealt, bodies = append(dealt, k), append(bodies, tgt.Body)
		return nil
	}
	// A check that stops t mid-run stops the attack too: no goroutine of
	// it outlives the run.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pace := &lockstep{ctx: ctx, n: uint64(n), checked: make(chan struct{}, 1)}
	atk, closeIdle := attacker(1, r.cfg.Timeout+time.Minute)
	defer closeIdle()
	defer atk.Stop()
	all, byKind := &vegeta.Metrics{}, map[string]*vegeta.Metrics{}
	for res := range atk.Attack(targeter, pace, 0, "mix") {
		mu.Lock()
		k := dealt[res.Seq]
		mu.Unlock()
		all.Add(res)
		if byKind[k.name] == nil {
			byKind[k.name] = &vegeta.Metrics{}
		}
		byKind[k.name].Add(res)
		for _, p := range r.check(s, k, int(res.Seq), res, rep) {
			t.Errorf("#%d %s: %s", res.Seq, k.name, p)
		}
		mu.Lock()
		b := bodies[res.Seq]
		mu.Unlock()
		r.retries(t, s, seed, int(res.Seq), b, res, rep)
		if rep != nil {
			r.between(t, s, int(res.Seq), n, rep)
		}
		pace.checked <- struct{}{}
	}
	all.Close()
	for _, m := range byKind {
		m.Close()
	}
	return all, byKind
}

// Every command of the mix carries an Idempotency-Key, as the relay's
// do; every replayEvery-th is sent again once answered, and after every
// hangUpEvery-th a client hangs up on a command of its own and retries it:
// over the load phase, no command may run twice and no answer be lost.
const (
	replayEvery = 10
	hangUpEvery = 50
)

func mixKey(seed uint64, i int) string { return fmt.Sprintf("vmdload-mix-%d-%d", seed, i) }

// retries replays the i-th command of the mix (its answer res, its body)
// or hangs up on another, as replayEvery and hangUpEvery say, and counts
// what it found in rep.
func (r *runner) retries(t testing.TB, s *server, seed uint64, i int, body []byte, res *vegeta.Result, rep *LoadReport) {
	if i%replayEvery == 0 && res.Code != 0 {
		a, err := s.postBody(body, "Idempotency-Key", mixKey(seed, i))
		switch {
		case err != nil:
			t.Errorf("#%d replayed: no answer: %v", i, err)
		case a.header.Get("Idempotent-Replayed") != "true" || a.status != int(res.Code) || !bytes.Equal(a.raw, res.Body):
			// Not the stored answer: the command ran again, or its answer
			// was lost.
			t.Errorf("#%d replayed: %s, Idempotent-Replayed %q; want the first answer, %d %.80q, replayed",
				i, a, a.header.Get("Idempotent-Replayed"), res.Code, res.Body)
			if rep != nil {
				rep.Retries.Duplicates++
			}
		}
		if rep != nil {
			rep.Retries.Replayed++
		}
	}
	if i%hangUpEvery == hangUpEvery-1 {
		lost, dup := hangUpOnce(t, s, fmt.Sprintf("%s-hangup", mixKey(seed, i)), i)
		if rep != nil {
			rep.Retries.HungUp++
			rep.Retries.Lost += lost
			rep.Retries.Duplicates += dup
		}
	}
}

// attacker is a vegeta attacker of n workers whose idle connections can be
// closed, so that they are not counted as vmd's descriptors.
func attacker(n uint64, timeout time.Duration) (*vegeta.Attacker, func()) {
	tr := &http.Transport{MaxIdleConnsPerHost: int(n), DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: timeout}
	return vegeta.NewAttacker(vegeta.Workers(n), vegeta.MaxWorkers(n), vegeta.Client(client)), tr.CloseIdleConnections
}

// check checks one answer of the mix against its kind, then that nothing
// is left below vmd (no process, no zombie), every process the command
// started is dead, and every image listed is served with the bytes on disk.
func (r *runner) check(s *server, k *kind, i int, res *vegeta.Result, rep *LoadReport) []string {
	if res.Code == 0 {
		return []string{"no answer: " + res.Error}
	}
	a, err := decode(int(res.Code), res.Body)
	if err != nil {
		return []string{err.Error()}
	}
	var p []string
	if a.status != k.status {
		p = append(p, fmt.Sprintf("status %s; want %d", a, k.status))
	} else {
		p = append(p, k.check(a, i, r.cfg.Timeout)...)
	}
	live, zombies, list := s.leftover()
	if live+zombies > 0 {
		p = append(p, fmt.Sprintf("%d processes and %d zombies below vmd that no agent owns after its answer: %s", live, zombies, list))
	}
	if rep != nil {
		rep.MaxZombies = max(rep.MaxZombies, zombies)
	}
	for _, st := range startedPids(a.Text) {
		if s.stray(st.pid, r.fake) {
			p = append(p, fmt.Sprintf("%s %d still alive after the answer, owned by no agent", st.role, st.pid))
		}
	}
	for _, img := range a.Images {
		if msg := checkImage(s, img); msg != "" {
			p = append(p, msg)
		}
	}
	return p
}

// between takes the figures between commands: settled ones at each
// quarter, the peak every tenth, and no fake CLI running anywhere.
func (r *runner) between(t testing.TB, s *server, i, n int, rep *LoadReport) {
	if q := n / 4; q > 0 && (i+1)%q == 0 && i+1 < n && rep.Health == nil {
		rep.Quarters = append(rep.Quarters, r.settled(t, s))
	}
	if every := max(n/10, 1); (i+1)%every == 0 {
		if u, err := usageOf(s.Pid); err == nil {
			rep.Peak.RSSKiB, rep.Peak.FDs = max(rep.Peak.RSSKiB, u.RSSKiB), max(rep.Peak.FDs, u.FDs)
		}
		if left := slices.DeleteFunc(running(r.fake), func(pid int) bool { return !s.stray(pid, r.fake) }); len(left) > 0 {
			t.Errorf("#%d: fake CLI processes %v running between commands, owned by no agent", i, left)
		}
		r.progress("%s: %d/%d commands", t.Name(), i+1, n)
	}
}

// checkImage fetches an image an answer listed and compares it with the
// file in the images directory.
func checkImage(s *server, url string) string {
	name, ok := strings.CutPrefix(url, "/images/")
	if !ok {
		return fmt.Sprintf("image %q is not under /images/", url)
	}
	disk, err := os.ReadFile(filepath.Join(s.images, name))
	if err != nil {
		return fmt.Sprintf("image %s listed but not on disk: %v", url, err)
	}
	status, h, body, err := s.get(url)
	if err != nil || status != 200 || h.Get("Content-Type") != "image/png" || !bytes.Equal(body, disk) {
		return fmt.Sprintf("GET %s = %d %s, %d bytes, %v; want 200 image/png, the %d bytes on disk",
			url, status, h.Get("Content-Type"), len(body), err, len(disk))
	}
	return ""
}

// health asks for /health from HealthClients vegeta workers without pause
// while HealthCommands commands run; every /health must be 200 {"status":"ok"}.
func (r *runner) health(t testing.TB, s *server) *LoadReport {
	rep := &LoadReport{Start: r.settled(t, s), Health: &vegeta.Metrics{}}
	c := uint64(r.cfg.HealthClients)
	atk, closeIdle := attacker(c, 30*time.Second)
	defer closeIdle()
	target := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: s.URL + "/health"})
	results := atk.Attack(target, vegeta.ConstantPacer{}, 0, "health")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for res := range results {
			rep.Health.Add(res)
			if res.Code != 200 || string(res.Body) != "{\"status\":\"ok\"}\n" {
				t.Errorf("GET /health = %d %q %s; want 200 {\"status\":\"ok\"}", res.Code, res.Body, res.Error)
			}
		}
	}()
	rep.Commands, rep.Kinds = r.mix(t, s, r.cfg.HealthCommands, r.cfg.Seed+1, rep)
	atk.Stop()
	<-done
	closeIdle() // before the descriptors are counted
	rep.Health.Close()
	if rep.Health.Requests == 0 {
		t.Errorf("no /health answered while commands ran")
	}
	rep.End = r.flat(t, s, rep.Start, rssSlackKiB)
	return rep
}

// settled reads vmd's usage once it has idled for settleWait (or Settle),
// the runner's own idle connections closed first so that they are not
// counted.
func (r *runner) settled(t testing.TB, s *server) Usage {
	if !procOK {
		return Usage{Goroutines: s.goroutines()}
	}
	wait := settleWait
	if r.cfg.Settle > 0 {
		wait = r.cfg.Settle
	}
	time.Sleep(wait) // an idle vmd is what is measured, not a synchronisation
	g := s.goroutines()
	s.client.CloseIdleConnections()
	u, err := usageOf(s.Pid)
	if err != nil {
		t.Errorf("reading vmd's usage: %v", err)
	}
	return Usage{Usage: u, Goroutines: g}
}

// flat takes the settled reading at the end of a phase and checks it
// against start: no agent closing and nothing left below vmd,
// descriptors and goroutines back where they were (a closing connection
// may take a moment), RSS and threads within slack.
func (r *runner) flat(t testing.TB, s *server, start Usage, rssSlack int) Usage {
	end := r.settled(t, s)
	if !procOK {
		return end
	}
	// Every process whose turn is over has exited, and took with it all
	// its turns left running.
	if !poll.Until(func() bool { _, closing := s.agentPids(); return !closing }) {
		t.Errorf("agents still closing %s after the phase: %v", poll.Patience, s.agents())
	}
	if live, zombies, list := s.leftover(); live+zombies > 0 {
		t.Errorf("%d processes and %d zombies below vmd that no agent owns after the phase: %s", live, zombies, list)
	}
	if !poll.Until(func() bool {
		s.client.CloseIdleConnections() // the runner's own are not counted
		u, err := usageOf(s.Pid)
		end.FDs = u.FDs
		return err == nil && u.FDs <= start.FDs
	}) {
		t.Errorf("vmd's descriptors not back to %d within %s: %d, %s; agents %v", start.FDs, poll.Patience, end.FDs, descriptors(s.Pid), s.agents())
	}
	if start.Goroutines >= 0 {
		// fasthttp stops an idle worker up to 20 s after its last request.
		vmdtest.Eventually(t, "vmd's goroutines back", func() bool {
			end.Goroutines = s.goroutines()
			s.client.CloseIdleConnections()
			return end.Goroutines <= start.Goroutines+goroutineSlack
		})
	}
	if end.RSSKiB > start.RSSKiB+rssSlack {
		t.Errorf("vmd resident memory %d KiB after, %d KiB before: grew more than %d KiB", end.RSSKiB, start.RSSKiB, rssSlack)
	}
	if end.Threads > start.Threads+threadSlack {
		t.Errorf("vmd has %d threads after, %d before: grew more than %d", end.Threads, start.Threads, threadSlack)
	}
	return end
}
