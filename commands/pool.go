package commands

import (
	"slices"
	"time"

	"github.com/vmd-dev/vmd/agent"
)

// Which agent process serves which message. Cold (Options.Warm false),
// every message gets a process of its own that exits after its answer.
// Warm, each conversation keeps its process between turns, so that a
// follow-up is served in milliseconds by a CLI whose MCP servers are up
// and whose browser still shows the page:
//
//   - a message for a session held warm goes to its agent; for a session
//     not held, to a new agent that resumes it; never to two agents at
//     once (a second process would fork the conversation's history);
//   - a new conversation takes the spare, an agent started ahead of any
//     message (Options.Prewarm), and a new spare is started once its turn
//     is over (not during it, which it would slow down);
//   - at most WarmConversations agents are held; a new one closes the
//     least recently used idle agent first;
//   - an agent idle for WarmIdle is closed; idle time counts only while
//     the machine runs (see tick), so an agent survives a machine
//     suspended for an hour;
//   - an agent that dies between turns is dropped, and the next message
//     for its session resumes it in a new one.
//
// Closing an agent closes its input (the CLI exits) and kills it after a
// grace. The pool is guarded by Service.mu.
type pool struct {
	s     *Service
	held  []*held // conversations' agents, least recently used first
	spare *held   // started ahead of a new conversation; nil while none

	spareDue     time.Time     // no spare is started before this
	spareBackoff time.Duration // grows while spares die unused
	spawning     bool          // a spare is being started

	all map[*agent.Process]struct{} // every process started and not seen done
}

// held is an agent of the pool's.
type held struct {
	p       *agent.Process
	session string        // the conversation's; "" until its first turn names it
	busy    bool          // its turn runs (or it is being started for one)
	idle    time.Duration // how long it has waited for a message, machine running
	since   time.Time     // when it last began to wait
	spare   bool          // it was the spare: its turn over, a new one is due
}

// The reasons an agent is started, as vmd_agent_starts_total counts them.
const (
	startSpare    = "spare"    // ahead of a new conversation
	startNew      = "new"      // for a new conversation, no spare ready
	startResume   = "resume"   // for a session not held
	startReplaced = "replaced" // for a session whose agent died, or ran low on budget
	startCold     = "cold"     // one message, one process (warm off)
)

// spareWarmup is how long a spare counts as starting: the CLI prints
// nothing until its first message, and Playwright MCP takes about this
// long to connect here.
const spareWarmup = 1500 * time.Millisecond

// acquire finds or starts the agent for c's turn; again says c's last
// agent died under it.
func (pl *pool) acquire(c *Command, again bool) (*agent.Process, error) {
	s := pl.s
	if !s.opts.Warm {
		s.m.started(startCold)
		p, err := s.agent.Spawn(agent.SpawnRequest{Resume: c.rec.Resume, Log: c.log})
		if err == nil {
			s.mu.Lock()
			pl.track(p)
			s.mu.Unlock()
		}
		return p, err
	}
	reason := startNew
	s.mu.Lock()
	if c.rec.Resume != "" {
		reason = startResume
		if again {
			reason = startReplaced
		}
		if h := pl.find(c.rec.Resume); h != nil {
			if !h.busy && h.p.Idle() {
				h.busy = true
				pl.touch(h)
				s.mu.Unlock()
				return h.p, nil
			}
			pl.forget(h) // it died meanwhile
			reason = startReplaced
		}
	} else if h := pl.spare; h != nil && h.p.Idle() {
		pl.spare, h.busy, h.spare = nil, true, true
		pl.held = append(pl.held, h)
		evicted := pl.evict()
		s.mu.Unlock()
		closeAll(evicted)
		return h.p, nil
	}
	h := &held{session: c.rec.Resume, busy: true}
	pl.held = append(pl.held, h)
	evicted := pl.evict()
	s.mu.Unlock()
	closeAll(evicted)
	s.m.started(reason)
	p, err := s.agent.Spawn(agent.SpawnRequest{Resume: c.rec.Resume, Warm: true, Log: c.log})
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		pl.forget(h)
		return nil, err
	}
	h.p = p
	pl.track(p)
	return p, nil
}

// release takes back the agent of a turn that has ended: held for the
// next message of its conversation, or closed.
func (pl *pool) release(p *agent.Process, res *agent.Result, c *Command) {
	s := pl.s
	if !p.Warm() {
		p.Close() // its turn is over: it exits by itself, or is killed after a grace
		return
	}
	s.mu.Lock()
	i := slices.IndexFunc(pl.held, func(h *held) bool { return h.p == p })
	if i < 0 {
		s.mu.Unlock()
		p.Close()
		return
	}
	h := pl.held[i]
	h.busy, h.idle, h.since = false, 0, time.Now()
	if res.SessionID != "" {
		h.session = res.SessionID
	}
	wasSpare := h.spare
	h.spare = false
	lowBudget := s.opts.MaxCostUSD > 0 && p.Spent() > s.opts.MaxCostUSD/2
	var closing []*agent.Process
	switch {
	case s.draining || lowBudget || !p.Idle() || h.session == "":
		pl.forget(h)
		closing = append(closing, p)
	default:
		pl.touch(h)
		// Never two agents for one session: an older one goes.
		for _, o := range pl.held {
			if o != h && o.session == h.session && !o.busy {
				pl.forget(o)
				closing = append(closing, o.p)
			}
		}
	}
	s.mu.Unlock()
	closeAll(closing)
	if wasSpare {
		pl.refill()
	}
}

// find is the held agent of session, if any.
func (pl *pool) find(session string) *held {
	for _, h := range pl.held {
		if h.session == session {
			return h
		}
	}
	return nil
}

// touch makes h the most recently used.
func (pl *pool) touch(h *held) {
	pl.forget(h)
	pl.held = append(pl.held, h)
}

func (pl *pool) forget(h *held) {
	pl.held = slices.DeleteFunc(pl.held, func(o *held) bool { return o == h })
}

// evict drops the least recently used idle agents past
// WarmConversations, and returns them to close.
func (pl *pool) evict() []*agent.Process {
	var out []*agent.Process
	for len(pl.held) > max(pl.s.opts.WarmConversations, 1) {
		i := slices.IndexFunc(pl.held, func(h *held) bool { return !h.busy })
		if i < 0 {
			break
		}
		out = append(out, pl.held[i].p)
		pl.held = slices.Delete(pl.held, i, i+1)
	}
	return out
}

func closeAll(ps []*agent.Process) {
	for _, p := range ps {
		p.Close()
	}
}

// refill starts a spare unless there is one, one is being started, vmd is
// stopping, or spares have been dying unused lately.
func (pl *pool) refill() {
	s := pl.s
	if !s.opts.Warm || !s.opts.Prewarm {
		return
	}
	s.mu.Lock()
	if pl.spare != nil || pl.spawning || s.draining || time.Now().Before(pl.spareDue) {
		s.mu.Unlock()
		return
	}
	pl.spawning = true
	s.mu.Unlock()
	go func() {
		s.m.started(startSpare)
		p, err := s.agent.Spawn(agent.SpawnRequest{Warm: true, Ahead: true, Log: s.log.Named("spare")})
		s.mu.Lock()
		defer s.mu.Unlock()
		pl.spawning = false
		switch {
		case err != nil: // stopping
		case s.draining:
			pl.track(p)
			p.Close()
		default:
			pl.track(p)
			pl.spare = &held{p: p}
		}
	}()
}

// tick looks after the agents, elapsed after the last tick: it closes
// those idle for WarmIdle, drops those that died, and starts a spare when
// one is due. A tick late by far more than its period means the machine
// was suspended: that time is not idle time.
func (pl *pool) tick(elapsed time.Duration) {
	s := pl.s
	s.mu.Lock()
	pl.prune()
	var closing []*agent.Process
	for _, h := range slices.Clone(pl.held) {
		switch {
		case h.busy:
		case isDone(h.p):
			pl.forget(h)
		case h.wait(time.Now(), elapsed, s.opts.WarmIdle):
			pl.forget(h)
			closing = append(closing, h.p)
		}
	}
	if h := pl.spare; h != nil && isDone(h.p) {
		// It died before any message: start the next one later, and later
		// still if that one dies too, so that a CLI that cannot start is
		// not started again every second.
		pl.spare = nil
		pl.spareBackoff = min(max(2*pl.spareBackoff, time.Second), time.Minute)
		pl.spareDue = time.Now().Add(pl.spareBackoff)
		s.log.Warn("the spare agent exited before any message; starting another later",
			"exit_code", h.p.Exit().Code, "signal", h.p.Exit().SignalName(), "in", pl.spareBackoff)
	} else if h != nil && time.Since(h.p.Started()) > time.Minute {
		pl.spareBackoff = 0
	}
	busy := s.running != nil
	s.mu.Unlock()
	closeAll(closing)
	if !busy { // a spare is not started beside a turn, which it would slow down
		pl.refill()
	}
}

// wait adds elapsed, the time since the last tick (or, if later, since it
// began to wait: an agent released just before a tick is not charged the
// whole tick), to the agent's idle time at now, and reports whether it
// has now waited idleLimit (0: for ever). A tick far later than its period
// means the machine was suspended: that counts as two periods at most.
func (h *held) wait(now time.Time, elapsed, idleLimit time.Duration) bool {
	h.idle += min(elapsed, now.Sub(h.since), 2*tick)
	return idleLimit > 0 && h.idle >= idleLimit
}

func isDone(p *agent.Process) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}

// closeIdle closes every agent not serving a turn, the spare included.
func (pl *pool) closeIdle() {
	s := pl.s
	s.mu.Lock()
	var closing []*agent.Process
	for _, h := range slices.Clone(pl.held) {
		if !h.busy {
			pl.forget(h)
			closing = append(closing, h.p)
		}
	}
	if pl.spare != nil {
		closing = append(closing, pl.spare.p)
		pl.spare = nil
	}
	s.mu.Unlock()
	closeAll(closing)
}

// track adds a process started for the pool to those the drain waits for;
// the caller holds Service.mu.
func (pl *pool) track(p *agent.Process) {
	if pl.all == nil {
		pl.all = map[*agent.Process]struct{}{}
	}
	pl.all[p] = struct{}{}
}

// prune forgets the processes started that are done, each tick, so that
// all does not grow with every command; the caller holds Service.mu.
func (pl *pool) prune() {
	for p := range pl.all {
		if isDone(p) {
			delete(pl.all, p)
		}
	}
}

// processes are the processes started that are not done yet.
func (pl *pool) processes() []*agent.Process {
	pl.s.mu.Lock()
	defer pl.s.mu.Unlock()
	var out []*agent.Process
	for p := range pl.all {
		if !isDone(p) {
			out = append(out, p)
		}
	}
	return out
}

// wait waits for every process started to be done, until deadline fires
// or hurry is closed (nil: never).
func (pl *pool) wait(deadline <-chan time.Time, hurry <-chan struct{}) {
	for _, p := range pl.processes() {
		select {
		case <-p.Done():
		case <-deadline:
			return
		case <-hurry:
			return
		}
	}
}

// killAll kills every process started that is not done.
func (pl *pool) killAll() {
	for _, p := range pl.processes() {
		p.Kill()
	}
}

// AgentStatus is one agent as /status shows it.
type AgentStatus struct {
	// SessionID is its conversation's; nil for the spare (and an agent
	// whose first turn has not named it yet).
	SessionID *string `json:"sessionId"`
	// State is starting (a spare just started), spare, idle, busy, or
	// closing (its input closed, it has not exited yet).
	State string `json:"state"`
	Pid   int    `json:"pid"`
	// IdleMs is how long it has waited for a message.
	IdleMs int64 `json:"idleMs"`
	// RSSBytes is the resident memory of its whole tree: the CLI, its MCP
	// servers, their browser.
	RSSBytes uint64 `json:"rssBytes"`
}

// Agents lists every agent process vmd has started and not seen exit: the
// agents held, the spare, those closing; with warm off, the running
// command's and those exiting after their turn.
func (s *Service) Agents() []AgentStatus {
	s.mu.Lock()
	es := s.pool.list()
	s.mu.Unlock()
	out := make([]AgentStatus, 0, len(es))
	for _, e := range es {
		a := AgentStatus{SessionID: optional(e.session), State: e.state, IdleMs: e.idle.Milliseconds()}
		if e.p != nil { // RSS read outside the lock: it walks /proc
			a.Pid, a.RSSBytes = e.p.Pid(), e.p.RSS()
		}
		out = append(out, a)
	}
	return out
}

// agentCounts counts the agents by state, for the metrics.
func (s *Service) agentCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := map[string]int{}
	for _, e := range s.pool.list() {
		n[e.state]++
	}
	return n
}

// agentEntry is an agent process and its state.
type agentEntry struct {
	p       *agent.Process // nil while it is being started for a turn
	session string
	state   string
	idle    time.Duration
}

// list is every agent process not yet exited, with its state; the caller
// holds Service.mu.
func (pl *pool) list() []agentEntry {
	var es []agentEntry
	listed := map[*agent.Process]bool{}
	for _, h := range pl.held {
		listed[h.p] = true
		state := "idle"
		if h.busy {
			state = "busy"
		}
		es = append(es, agentEntry{p: h.p, session: h.session, state: state, idle: h.idle})
	}
	if h := pl.spare; h != nil {
		state := "spare"
		if time.Since(h.p.Started()) < spareWarmup {
			state = "starting"
		}
		listed[h.p] = true
		es = append(es, agentEntry{p: h.p, state: state, idle: time.Since(h.p.Started())})
	}
	for p := range pl.all {
		if isDone(p) || listed[p] {
			continue
		}
		// Warm, one closed; cold, the running command's, or one whose
		// turn has ended (at its result line) and that is exiting.
		state := "closing"
		if p.Busy() {
			state = "busy"
		}
		es = append(es, agentEntry{p: p, state: state})
	}
	return es
}
