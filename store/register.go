package store

import (
	"context"
	"time"

	"github.com/vmd-dev/vmd/internal/metric"
	"github.com/vmd-dev/vmd/internal/ready"
)

// sizeTimeout bounds reading the store's size at a scrape.
const sizeTimeout = time.Second

// Register adds the store's metrics and its readiness check: the store
// takes writes (see Health).
func (s *Store) Register(reg *metric.Registry, p *ready.Prober) {
	reg.Help("vmd_store_write_errors_total", "Writes to the command store that failed (disk full, read-only, I/O error).")
	reg.Help("vmd_store_size_bytes", "The command store's size on disk: its file plus its write-ahead log.")
	reg.CounterFunc("vmd_store_write_errors_total", s.writeErrors.Load)
	reg.Gauge("vmd_store_size_bytes", func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), sizeTimeout)
		defer cancel()
		size, err := s.Size(ctx)
		if err != nil {
			return 0
		}
		return float64(size)
	})
	p.Add("store", func(context.Context) ready.Status {
		if err := s.Health(); err != nil {
			return ready.Status{Message: err.Error(), Path: s.Path()}
		}
		return ready.Status{OK: true, Path: s.Path()}
	})
}
