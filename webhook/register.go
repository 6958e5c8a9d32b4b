package webhook

import "github.com/vmd-dev/vmd/internal/metric"

// Register adds the sender's metrics.
func (s *Sender) Register(reg *metric.Registry) {
	const family = "vmd_webhook_deliveries_total"
	reg.Help(family, "Completion webhook attempts, by outcome: delivered, retried (failed, will retry), gone (410, never again), expired (given up after 24 h).")
	reg.CounterFunc(family, func() uint64 { return s.Stats().Delivered }, "outcome", "delivered")
	reg.CounterFunc(family, func() uint64 { return s.Stats().Retried }, "outcome", "retried")
	reg.CounterFunc(family, func() uint64 { return s.Stats().Gone }, "outcome", "gone")
	reg.CounterFunc(family, func() uint64 { return s.Stats().Expired }, "outcome", "expired")
}
