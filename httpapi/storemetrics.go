package httpapi

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmd-dev/vmd/store"
	"github.com/vmd-dev/vmd/webhook"
)

// sizeTimeout bounds reading the store's size at a scrape.
const sizeTimeout = time.Second

// storeCollector exposes the store's and the webhook sender's counters,
// read at each scrape, so that neither package knows about Prometheus.
type storeCollector struct {
	st    *store.Store
	hooks *webhook.Sender // nil without webhooks
}

var (
	storeErrorsDesc = prometheus.NewDesc("vmd_store_write_errors_total",
		"Writes to the command store that failed (disk full, read-only, I/O error): those answers were given but not kept.", nil, nil)
	storeSizeDesc = prometheus.NewDesc("vmd_store_size_bytes",
		"The command store's size on disk: its file plus its write-ahead log.", nil, nil)
	webhookDesc = prometheus.NewDesc("vmd_webhook_deliveries_total",
		"Completion webhook attempts, by outcome: delivered, retried (failed, will retry), gone (410, never again), expired (given up after 24 h).",
		[]string{"outcome"}, nil)
)

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{storeErrorsDesc, storeSizeDesc, webhookDesc} {
		ch <- d
	}
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	if c.st != nil {
		ch <- prometheus.MustNewConstMetric(storeErrorsDesc, prometheus.CounterValue, float64(c.st.Stats().WriteErrors))
		ctx, cancel := context.WithTimeout(context.Background(), sizeTimeout)
		if size, err := c.st.Size(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(storeSizeDesc, prometheus.GaugeValue, float64(size))
		}
		cancel()
	}
	var w webhook.Stats
	if c.hooks != nil {
		w = c.hooks.Stats()
	}
	for _, o := range []struct {
		label string
		n     uint64
	}{{"delivered", w.Delivered}, {"retried", w.Retried}, {"gone", w.Gone}, {"expired", w.Expired}} {
		ch <- prometheus.MustNewConstMetric(webhookDesc, prometheus.CounterValue, float64(o.n), o.label)
	}
}
