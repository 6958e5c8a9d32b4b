package supervisor

import (
	"os/exec"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/images"
)

// BenchmarkExec is one command through the supervisor over cat (which
// echoes its prompt), with and without an images directory to record: the
// supervisor's own share of a /command round trip.
func BenchmarkExec(b *testing.B) {
	cat, err := exec.LookPath("cat")
	if err != nil {
		b.Skip("no cat")
	}
	for _, withImages := range []bool{false, true} {
		name := "no-images"
		if withImages {
			name = "images"
		}
		b.Run(name, func(b *testing.B) {
			var img *images.Store
			if withImages {
				img, err = images.Open(b.TempDir(), time.Hour, hclog.NewNullLogger())
				if err != nil {
					b.Fatal(err)
				}
				go img.Run()
				defer img.Stop()
			}
			sup, err := New(Config{Bin: cat, TempRoot: b.TempDir(), Timeout: time.Minute, MaxOutput: 1 << 20}, hclog.NewNullLogger(), img)
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan error)
			go func() { done <- sup.Run() }()
			defer func() { sup.Stop(); <-done }()
			for b.Loop() {
				res, err := sup.Exec(Request{Prompt: "hi"})
				if err != nil || res.Text != "hi" {
					b.Fatalf("Exec = %+v, %v", res, err)
				}
			}
		})
	}
}
