package supervisor

import "sync/atomic"

// Stats is a snapshot of what the supervisor has done since it started, for
// metrics. The counters only grow.
type Stats struct {
	// ZombiesReaped counts the processes other than the CLI (and its version
	// probes) that vmd reaped: orphans that came to it as PID 1 or as a
	// child subreaper.
	ZombiesReaped uint64
	// StraysKilled counts the processes the sweep after each command found
	// still alive below vmd and killed.
	StraysKilled uint64
	// Busy is whether a command is running now.
	Busy bool
}

// counters are the supervisor's running totals; atomic, so that reading them
// takes none of its locks.
type counters struct {
	reaped atomic.Uint64
	strays atomic.Uint64
}

// Stats returns the supervisor's counters as they are now.
func (s *Supervisor) Stats() Stats {
	return Stats{
		ZombiesReaped: s.stats.reaped.Load(),
		StraysKilled:  s.stats.strays.Load(),
		Busy:          s.Busy(),
	}
}
