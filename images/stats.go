package images

import (
	"context"
	"sync/atomic"

	"github.com/vmd-dev/vmd/internal/metric"
	"github.com/vmd-dev/vmd/internal/ready"
)

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

// Register adds the store's metrics and its readiness check: the
// directory takes files, as a command's screenshots need.
func (s *Store) Register(reg *metric.Registry, p *ready.Prober) {
	reg.Help("vmd_images_written_total", "Images commands made, as listed in their answers.")
	reg.Help("vmd_images_cleaned_total", "Images deleted for being older than image_ttl.")
	reg.CounterFunc("vmd_images_written_total", s.stats.written.Load)
	reg.CounterFunc("vmd_images_cleaned_total", s.stats.cleaned.Load)
	p.Add("images_dir", func(context.Context) ready.Status {
		if err := s.CheckWritable(); err != nil {
			return ready.Status{Message: err.Error()}
		}
		return ready.Status{OK: true}
	})
}
