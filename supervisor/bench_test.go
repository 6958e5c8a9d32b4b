package supervisor_test

import (
	"io"
	"os/exec"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/supervisor"
)

// BenchmarkStart is one process with a TMPDIR of its own, cat echoing its
// stdin: the supervisor's own share of a cold command.
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
	defer func() { sup.Stop(); <-done }()
	for b.Loop() {
		var got []byte
		p, err := sup.Start(supervisor.Spec{Path: cat, TempDir: true, Stdout: func(r io.Reader) { got, _ = io.ReadAll(r) }})
		if err != nil {
			b.Fatal(err)
		}
		io.WriteString(p.Stdin(), "hi")
		p.Stdin().Close()
		if ex := p.Wait(); ex.Code != 0 || string(got) != "hi" {
			b.Fatalf("run = %+v, %q", ex, got)
		}
	}
}
