package commands

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/internal/ready"
	"github.com/vmd-dev/vmd/store"
)

// SpendError refuses a command while what commands cost within the spend
// window has reached the spend limit. RetryAfter is when enough of that
// spend will have left the window for a command to be taken again.
type SpendError struct {
	Spent, Limit float64
	Window       time.Duration
	RetryAfter   time.Duration
}

func (e *SpendError) Error() string {
	return fmt.Sprintf("spend limit reached: commands cost $%.4f in the last %s, the limit is $%.4f", e.Spent, e.Window, e.Limit)
}

// spending sums what commands cost over a rolling window. A runaway or
// prompt-injected loop of commands must not spend without bound: past the
// limit new commands are refused; the one running finishes, and commands
// already queued run.
type spending struct {
	limit  float64
	window time.Duration

	mu   sync.Mutex
	ends []spent // commands that cost something, within the window, oldest first
}

type spent struct {
	at   time.Time
	cost float64
}

func newSpending(limit float64, window time.Duration) *spending {
	if window <= 0 {
		window = 24 * time.Hour
	}
	return &spending{limit: limit, window: window}
}

// on reports whether there is a limit.
func (sp *spending) on() bool { return sp.limit > 0 }

// load adds what the commands the store has ended within the window cost.
func (sp *spending) load(ctx context.Context, st *store.Store) error {
	if !sp.on() || st == nil {
		return nil
	}
	now := time.Now()
	costs, err := st.Costs(ctx, now.Add(-sp.window))
	if err != nil {
		return err
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for _, c := range costs {
		sp.ends = append(sp.ends, spent{at: c.EndedAt, cost: c.CostUSD})
	}
	return nil
}

// add counts what a command that ended at at cost.
func (sp *spending) add(at time.Time, res *agent.Result) {
	cost := costOf(res)
	if !sp.on() || cost <= 0 || math.IsInf(cost, 0) || math.IsNaN(cost) {
		return
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.ends = append(sp.ends, spent{at: at, cost: cost})
}

// total is what commands cost within the window at now.
func (sp *spending) total(now time.Time) float64 {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.totalLocked(now)
}

func (sp *spending) totalLocked(now time.Time) float64 {
	cut := now.Add(-sp.window)
	i := 0
	for i < len(sp.ends) && !sp.ends[i].at.After(cut) {
		i++
	}
	sp.ends = sp.ends[i:]
	sum := 0.0
	for _, e := range sp.ends {
		sum += e.cost
	}
	return sum
}

// check refuses a command at now while the limit is reached.
func (sp *spending) check(now time.Time) error {
	if !sp.on() {
		return nil
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sum := sp.totalLocked(now)
	if sum < sp.limit {
		return nil
	}
	// The earliest moment the sum falls under the limit: when enough of
	// the oldest costs have left the window.
	left := sum
	retry := sp.window
	for _, e := range sp.ends {
		left -= e.cost
		if left < sp.limit {
			retry = e.at.Add(sp.window).Sub(now)
			break
		}
	}
	return &SpendError{Spent: sum, Limit: sp.limit, Window: sp.window, RetryAfter: max(retry, time.Second)}
}

// Spend is what commands cost within the spend window, and the limit (0:
// none), for /status.
func (s *Service) Spend() (spent, limit float64, window time.Duration) {
	return s.spend.total(time.Now()), s.spend.limit, s.spend.window
}

// LoadSpend reads what the commands ended within the spend window cost,
// so that a restart does not reset the limit. Call it before taking
// commands.
func (s *Service) LoadSpend(ctx context.Context) error { return s.spend.load(ctx, s.st) }

// spendCheck is /ready's spend check.
func (s *Service) spendCheck(context.Context) ready.Status {
	if err := s.spend.check(time.Now()); err != nil {
		return ready.Status{Message: err.Error()}
	}
	return ready.Status{OK: true}
}
