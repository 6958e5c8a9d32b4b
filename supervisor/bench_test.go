package supervisor_test

import (
	"io"
	"os/exec"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/supervisor"
)

// BenchmarkStart is one process through the slot, cat echoing its stdin:
// the supervisor's own share of a /command round trip.
func BenchmarkStart(b *testing.B) {
	cat, err := exec.LookPath("cat")
	if err != nil {
		b.Fatal("no cat")
	}
	sup, err := supervisor.New(supervisor.Config{TempRoot: b.TempDir()}, hclog.NewNullLogger())
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- sup.Run() }()
	defer func() { sup.Stop(time.Now()); <-done }()
	for b.Loop() {
		var got []byte
		r, err := sup.Start(supervisor.Spec{Path: cat, Stdin: []byte("hi"), Timeout: time.Minute,
			Stdout: func(r io.Reader) { got, _ = io.ReadAll(r) }})
		if err != nil {
			b.Fatal(err)
		}
		if res := r.Wait(); res.ExitCode != 0 || string(got) != "hi" {
			b.Fatalf("run = %+v, %q", res, got)
		}
	}
}
