package commands

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/store"
)

// PruneEvery is how often the pruner looks for records to delete.
const PruneEvery = 10 * time.Minute

// Pruner deletes ended records past the retention or past the most kept,
// at its start and every PruneEvery: an actor (Run, Stop).
type Pruner struct {
	st        *store.Store
	retention time.Duration
	max       int
	log       hclog.Logger
	stop      chan struct{}
	stopOnce  sync.Once
}

// NewPruner makes a pruner of st's records older than retention, or past
// the newest max.
func NewPruner(st *store.Store, retention time.Duration, max int, log hclog.Logger) *Pruner {
	return &Pruner{st: st, retention: retention, max: max, log: log, stop: make(chan struct{})}
}

// Run prunes now, then every PruneEvery, until Stop.
func (p *Pruner) Run() error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-p.stop
		cancel()
	}()
	tick := time.NewTicker(PruneEvery)
	defer tick.Stop()
	for {
		n, err := p.st.Prune(ctx, time.Now(), p.retention, p.max)
		switch {
		case err != nil && ctx.Err() == nil:
			p.log.Error("cannot prune command records", "error", err)
		case n > 0:
			p.log.Info("pruned command records", "deleted", n)
		}
		select {
		case <-p.stop:
			return nil
		case <-tick.C:
		}
	}
}

// Stop ends Run, cancelling a prune in flight.
func (p *Pruner) Stop() { p.stopOnce.Do(func() { close(p.stop) }) }
