package images

import "sync/atomic"

// Stats is a snapshot of what the store has seen since it opened, for
// metrics. The counters only grow.
type Stats struct {
	// Written counts the images commands made, as listed in their answers.
	Written uint64
	// Cleaned counts the images deleted for being older than the TTL.
	Cleaned uint64
}

// counters are the store's running totals.
type counters struct {
	written atomic.Uint64
	cleaned atomic.Uint64
}

// Stats returns the store's counters as they are now.
func (s *Store) Stats() Stats {
	return Stats{Written: s.stats.written.Load(), Cleaned: s.stats.cleaned.Load()}
}
