package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A command's worth of data, about the size of a short real answer.
var (
	benchStart   = []byte(`{"type":"start","sessionId":"5b0c1c8e-2f7a-4c55-9f0e-0d8f3f1e2a11","model":"claude-sonnet-4-5"}`)
	benchMessage = []byte(`{"type":"message","text":"` + strings.Repeat("The change is in place and the tests pass. ", 7) + `"}`)
	benchResult  = []byte(`{"type":"result","durationMs":5321,"costUsd":0.0123,"numTurns":3,"usage":{"input_tokens":1200,"output_tokens":340}}`)
	benchBody    = []byte(`{"result":"` + strings.Repeat("The change is in place and the tests pass. ", 10) +
		`","sessionId":"5b0c1c8e-2f7a-4c55-9f0e-0d8f3f1e2a11","durationMs":5321,"costUsd":0.0123,"numTurns":3,"usage":{"input_tokens":1200,"output_tokens":340}}`)
	benchWebhook = []byte(`{"type":"command.completed","timestamp":"2026-11-30T08:00:00Z","data":{"id":"x"}}`)
)

// command runs one command's life through the store: Create (with the
// CLI's start, as vmd writes it once the CLI has started),
// three events (in one AppendEvents when batched, with Finish when
// withEnd, as vmd does), Finish with a webhook row. key may be "".
func command(ctx context.Context, s *Store, key string, batched, withEnd bool) error {
	rec, _, err := s.Create(ctx, NewRecord{PromptLen: 120, IdempotencyKey: key, BodyHash: benchBody[:32],
		StartedAt: time.Now(), SessionID: "5b0c1c8e-2f7a-4c55-9f0e-0d8f3f1e2a11"})
	if err != nil {
		return err
	}
	evs := []Event{{1, "start", benchStart}, {2, "message", benchMessage}, {3, "result", benchResult}}
	if withEnd {
		return s.Finish(ctx, rec.ID, End{State: Succeeded, Status: 200, Body: benchBody, Webhook: benchWebhook, Events: evs})
	}
	if batched {
		if _, err := s.AppendEvents(ctx, rec.ID, evs...); err != nil {
			return err
		}
	}
	for i := 0; i < len(evs) && !batched; i++ {
		if _, err := s.AppendEvent(ctx, rec.ID, evs[i]); err != nil {
			return err
		}
	}
	return s.Finish(ctx, rec.ID, End{State: Succeeded, Status: 200, Body: benchBody, Webhook: benchWebhook})
}

// BenchmarkCommand: the store's cost of one command on the local disk and
// in memory, side by side, with its events written one by one and batched
// (go test -bench Command ./store/).
func BenchmarkCommand(b *testing.B) {
	for _, where := range []string{"disk", "memory", "disk/batched", "memory/batched", "disk/with-end", "memory/with-end"} {
		b.Run(where, func(b *testing.B) {
			dir := Memory
			if strings.HasPrefix(where, "disk") {
				dir = b.TempDir()
			}
			batched, withEnd := strings.HasSuffix(where, "batched"), strings.HasSuffix(where, "with-end")
			s := open(b, dir)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				i++
				if err := command(ctx, s, fmt.Sprintf("key-%d", i), batched, withEnd); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSize10k reports the store's size on disk after 10,000 commands
// like the ones BenchmarkCommand stores (go test -bench Size10k ./store/).
func BenchmarkSize10k(b *testing.B) {
	for b.Loop() {
		s := open(b, b.TempDir())
		ctx := context.Background()
		for i := range 10_000 {
			if err := command(ctx, s, fmt.Sprintf("wamid.%d", i), true, true); err != nil {
				b.Fatal(err)
			}
		}
		live, err := s.Size(ctx)
		if err != nil {
			b.Fatal(err)
		}
		s.Close() // folds the WAL into the file
		closed, err := sizeOf(s.Path())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(live), "bytes-live/10k")
		b.ReportMetric(float64(closed), "bytes-closed/10k")
		// Open reads every page once (quick_check): the start-up cost.
		t0 := time.Now()
		again := open(b, filepath.Dir(s.Path()))
		b.ReportMetric(float64(time.Since(t0).Milliseconds()), "ms-open/10k")
		again.Close()
	}
}

func sizeOf(path string) (int64, error) {
	s := &Store{path: path}
	return s.Size(context.Background())
}
