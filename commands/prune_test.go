package commands_test

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/internal/vmdtest"
	"github.com/vmd-dev/vmd/outcome"
	"github.com/vmd-dev/vmd/store"
)

// The pruner prunes at its start, keeping max_commands records, and stops.
func TestPruner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for range 3 {
		rec, _, err := st.Create(ctx, store.NewRecord{})
		if err == nil {
			err = st.Finish(ctx, rec.ID, store.End{State: store.State(outcome.Succeeded), Status: 200, Body: []byte(`{}`)})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	p := commands.NewPruner(st, time.Hour, 1, hclog.NewNullLogger())
	done := make(chan error, 1)
	go func() { done <- p.Run() }()
	vmdtest.Eventually(t, "the oldest two pruned", func() bool {
		recs, _, err := st.List(ctx, 10, "", 0)
		return err == nil && len(recs) == 1
	})
	p.Stop()
	if err := vmdtest.Within(t, "the pruner to stop", done); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
}
