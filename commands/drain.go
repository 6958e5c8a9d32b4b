package commands

import (
	"time"

	"github.com/vmd-dev/vmd/outcome"
)

// vmd's stop, as the service sees it: Drain refuses new commands and ends
// the queued ones, Run waits for the running command (until the deadline,
// or Hurry), then for the agents, then for the store to take every end.

// Drain makes Submit refuse new commands and starts vmd's stop: queued
// commands end drained without running, idle agents and the spare are
// closed, and the running command may go on until deadline, when it is
// stopped. Run returns once all of that is over.
func (s *Service) Drain(deadline time.Time) {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return
	}
	s.draining, s.drainBy = true, deadline
	queued := s.queue
	s.queue = nil
	running := s.running
	s.mu.Unlock()
	for _, c := range queued {
		if c.published() {
			s.end(c, c.never(outcome.Drained))
		}
	}
	close(s.drained) // after the queued ends: the persister's last writes take them
	if running != nil {
		s.log.Info("draining", "until", deadline)
	}
	s.pool.closeIdle()
}

// Run looks after the agents and the store until Drain, then waits for
// the drain: the running command ended (stopped at the deadline), every
// agent gone, every end stored, or given up on at the deadline.
func (s *Service) Run() error {
	defer close(s.done)
	s.pool.refill()
	go s.out.run()
	t := time.NewTicker(tick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case now := <-t.C:
			s.pool.tick(now.Sub(last))
			last = now
		case <-s.drained:
			s.finishDrain()
			return nil
		}
	}
}

// finishDrain waits out the drain: the command running until the
// deadline (or Hurry), then the agents, closed, until the deadline too;
// then it kills what is left and has the store take every end it will.
func (s *Service) finishDrain() {
	s.mu.Lock()
	running, by := s.running, s.drainBy
	s.mu.Unlock()
	if running != nil && !running.published() {
		running = nil // Submit could not record it: it never runs
	}
	deadline := time.NewTimer(time.Until(by))
	defer deadline.Stop()
	late := false
	if running != nil {
		select {
		case <-running.answered:
		case <-deadline.C:
			late = true
		case <-s.hurry:
			late = true
		}
		if late {
			running.stop(outcome.Drained)
			<-running.answered
		}
	}
	s.pool.closeIdle() // the one that served the last turn too
	if !late {
		s.pool.wait(deadline.C, s.hurry)
	}
	s.pool.killAll()
	s.pool.wait(nil, nil)
	s.out.stop(by)
}

// Hurry makes the drain's deadline now, for a second SIGTERM or SIGINT:
// the running command is stopped, every agent killed.
func (s *Service) Hurry() { s.hurried.Do(func() { close(s.hurry) }) }

// Done is closed once Run has returned: no command runs and none will.
func (s *Service) Done() <-chan struct{} { return s.done }
