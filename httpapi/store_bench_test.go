package httpapi_test

import (
	"os/exec"
	"testing"

	"github.com/vmd-dev/vmd/internal/vmdtest"
	"github.com/vmd-dev/vmd/store"
)

// BenchmarkCommandStore is the /command round trip (over cat) with the
// command store in memory and on the local disk, side by side: what keeping
// the record costs a command. Compare it with BenchmarkCommand's
// bare-forkexec.
//
//	go test -run '^$' -bench CommandStore -benchtime 2000x -count 3 ./httpapi/
func BenchmarkCommandStore(b *testing.B) {
	cat, err := exec.LookPath("cat")
	if err != nil {
		b.Skip("no cat")
	}
	for _, tc := range []struct{ name, dir string }{{"memory", store.Memory}, {"disk", b.TempDir()}} {
		b.Run(tc.name, func(b *testing.B) {
			roundTrips(b, vmdtest.Start(b, vmdtest.Options{Bin: cat, Plain: true, Loopback: true, StateDir: tc.dir, Quiet: true}))
		})
	}
}
