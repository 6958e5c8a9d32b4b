package commands

import (
	"context"
	"errors"
	"math"
	"strconv"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/vmd-dev/vmd/internal/metric"
	"github.com/vmd-dev/vmd/outcome"
)

// The commands service's metric families.
const (
	familyCommands = "vmd_commands_total"
	familyDuration = "vmd_command_duration_seconds"
	familyCost     = "vmd_cost_usd_total"
	familyTokens   = "vmd_tokens_total"
	familyReplayed = "vmd_commands_replayed_total"
	familyBusy     = "vmd_command_busy"
	familyQueue    = "vmd_queue_length"
	familyAgents   = "vmd_agents"
	familyStarts   = "vmd_agent_starts_total"
	familyTurns    = "vmd_turns_total"
	familyLatency  = "vmd_turn_latency_seconds"
)

// The outcomes of a request that did not run, as vmd_commands_total
// counts them beside the outcomes of commands that ran.
const (
	RefusedBusy       = "busy"                   // 409: another command runs
	RefusedDraining   = "shutting_down"          // 503: vmd is draining
	RefusedBadRequest = "bad_request"            // 400: a bad body (counted by the HTTP layer)
	RefusedStorage    = "insufficient_storage"   // 507: a disk is low
	RefusedInternal   = "internal_error"         // 500
	RefusedKeyReused  = "idempotency_key_reused" // 422: the key holds another body
	RefusedQueueFull  = "queue_full"             // 429: queue_max commands wait
	RefusedStore      = "store_unavailable"      // 503: the store cannot look up or record the key
	RefusedSpendLimit = "spend_limit_reached"    // 429: spend_limit_usd reached
)

var refusals = []string{RefusedBusy, RefusedDraining, RefusedBadRequest, RefusedStorage, RefusedInternal,
	RefusedKeyReused, RefusedQueueFull, RefusedStore, RefusedSpendLimit}

// tokenKinds are the label values of vmd_tokens_total.
var tokenKinds = []string{"input", "output", "cache_creation", "cache_read"}

// durationBuckets, in seconds, span a trivial answer (100 ms) to the
// default command timeout (5 min) and past it; latencyBuckets a warm
// follow-up (tens of ms) to a long turn.
var (
	durationBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 180, 300, 450, 600}
	latencyBuckets  = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
)

type metrics struct {
	reg      *metric.Registry
	commands map[string]*vm.Counter // by outcome label
	cost     *vm.FloatCounter
	tokens   []*vm.Counter
	replayed *vm.Counter
}

func newMetrics(s *Service, reg *metric.Registry) *metrics {
	reg.Help(familyCommands, "Requests to run a command (POST /command, POST /commands), by outcome: ok, agent_error, error, timeout, cancelled, drained, stalled, start_failed, session_not_found (the command ran), busy, shutting_down, bad_request, insufficient_storage, internal_error, idempotency_key_reused, queue_full, store_unavailable, spend_limit_reached (it did not).")
	reg.Help(familyDuration, "How long commands that ran took, from their start to their answer, by outcome.")
	reg.Help(familyCost, "What commands cost, in US dollars, as the CLI reports it.")
	reg.Help(familyTokens, "Tokens commands used, by kind: input, output, cache_creation, cache_read.")
	reg.Help(familyReplayed, "Submits whose Idempotency-Key found its command (running or ended) instead of starting one.")
	reg.Help(familyBusy, "1 while a command runs, else 0.")
	reg.Help(familyQueue, "Commands waiting for the one that runs to end.")
	reg.Help(familyAgents, "Agent processes (a CLI with its MCP servers and browser) not yet exited, by state: starting, spare, idle, busy, closing.")
	reg.Help(familyStarts, "Agent processes started, by reason: spare (ahead of a new conversation), new (a new conversation with no spare ready), resume (a session not held), replaced (a session whose agent died or ran low on budget), cold (one per message, warm off).")
	reg.Help(familyTurns, "Turns served, by whether their agent was already running (warm=true) or started for them.")
	reg.Help(familyLatency, "Time from a message written to its agent to the CLI's result, by whether the agent was already running.")
	m := &metrics{reg: reg, commands: map[string]*vm.Counter{}}
	for _, o := range outcome.All {
		if l := answers[o].metric; l != "" {
			m.commands[l] = reg.Counter(familyCommands, "outcome", l)
		}
	}
	for _, r := range refusals {
		m.commands[r] = reg.Counter(familyCommands, "outcome", r)
	}
	for _, k := range tokenKinds {
		m.tokens = append(m.tokens, reg.Counter(familyTokens, "kind", k))
	}
	m.cost = reg.FloatCounter(familyCost)
	m.replayed = reg.Counter(familyReplayed)
	reg.Gauge(familyBusy, func() float64 { return b2f(s.Busy()) })
	reg.Gauge(familyQueue, func() float64 { return float64(s.Queued()) })
	for _, state := range []string{"starting", "spare", "idle", "busy", "closing"} {
		reg.Gauge(familyAgents, func() float64 { return float64(s.agentCounts()[state]) }, "state", state)
	}
	for _, r := range []string{startSpare, startNew, startResume, startReplaced, startCold} {
		reg.Counter(familyStarts, "reason", r)
	}
	for _, w := range []string{"false", "true"} {
		reg.Counter(familyTurns, "warm", w)
	}
	return m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// refusedFor counts a request Submit refused with err.
func (m *metrics) refusedFor(err error) {
	var storage *StorageError
	var spend *SpendError
	label := RefusedInternal
	switch {
	case err == nil:
		return
	case errors.Is(err, ErrBusy):
		label = RefusedBusy
	case errors.Is(err, ErrDraining):
		label = RefusedDraining
	case errors.Is(err, ErrKeyReused):
		label = RefusedKeyReused
	case errors.Is(err, ErrQueueFull):
		label = RefusedQueueFull
	case errors.Is(err, ErrStoreUnavailable):
		label = RefusedStore
	case errors.As(err, &storage):
		label = RefusedStorage
	case errors.As(err, &spend):
		label = RefusedSpendLimit
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return // the client left while its key was looked up: nothing to count
	}
	m.commands[label].Inc()
}

// Refused counts a request the HTTP layer refused before it reached the
// service (RefusedBadRequest).
func (s *Service) Refused(label string) {
	if c := s.m.commands[label]; c != nil {
		c.Inc()
	}
}

// Replayed counts a submit whose idempotency key found its command.
func (s *Service) Replayed() { s.m.replayed.Inc() }

// started counts an agent started for a reason.
func (m *metrics) started(reason string) { m.reg.Counter(familyStarts, "reason", reason).Inc() }

// ended counts a command that has ended.
func (m *metrics) ended(c *Command) {
	c.mu.Lock()
	rec := c.rec
	c.mu.Unlock()
	res := rec.Result
	label := answers[rec.Outcome].metric
	if label == "" {
		return
	}
	m.commands[label].Inc()
	took := res.Duration
	if !rec.Started.IsZero() {
		took = rec.Ended.Sub(rec.Started)
	}
	m.reg.Histogram(familyDuration, durationBuckets, "outcome", label).Update(took.Seconds())
	if res.Pid != 0 {
		warm := strconv.FormatBool(res.Warm)
		m.reg.Counter(familyTurns, "warm", warm).Inc()
		if res.Latency > 0 {
			m.reg.Histogram(familyLatency, latencyBuckets, "warm", warm).Update(res.Latency.Seconds())
		}
	}
	if r := res.Report; r != nil {
		if r.CostUSD != nil && *r.CostUSD > 0 && !math.IsInf(*r.CostUSD, 0) {
			m.cost.Add(*r.CostUSD)
		}
		for i, n := range []int{r.Tokens.Input, r.Tokens.Output, r.Tokens.CacheCreation, r.Tokens.CacheRead} {
			if n > 0 {
				m.tokens[i].Add(n)
			}
		}
	}
}

// Counts are the requests counted so far, by outcome, for /status.
func (s *Service) Counts() map[string]int64 {
	out := make(map[string]int64, len(s.m.commands))
	for label, c := range s.m.commands {
		out[label] = int64(c.Get())
	}
	return out
}
