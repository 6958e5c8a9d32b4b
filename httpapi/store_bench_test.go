package httpapi_test

import (
	"os/exec"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

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
			s := vmdtest.Start(b, vmdtest.Options{Bin: cat, Plain: true, Loopback: true, StateDir: tc.dir})
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for b.Loop() {
				req.Header.SetMethod("POST")
				req.SetRequestURI("http://localhost/command")
				req.SetBodyString(`{"text":"hi"}`)
				req.Header.SetContentType("application/json")
				if err := s.Client.DoTimeout(req, resp, 10*time.Second); err != nil || resp.StatusCode() != 200 {
					b.Fatalf("POST /command = %d %s %v", resp.StatusCode(), resp.Body(), err)
				}
			}
		})
	}
}
