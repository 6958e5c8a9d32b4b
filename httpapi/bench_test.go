package httpapi_test

import (
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// BenchmarkCommand sets the cost of a /command round trip against a bare
// fork/exec of the same trivial program (cat, which echoes its prompt): the
// difference is vmd's overhead per command. Run the two side by side:
//
//	go test -run '^$' -bench Command -benchtime 2000x ./httpapi/
func BenchmarkCommand(b *testing.B) {
	cat, err := exec.LookPath("cat")
	if err != nil {
		b.Skip("no cat")
	}
	prompt := []byte("hi")
	// First, before any supervisor reaps children in this process.
	b.Run("bare-forkexec", func(b *testing.B) {
		for b.Loop() {
			inR, inW, _ := os.Pipe()
			outR, outW, _ := os.Pipe()
			pid, err := syscall.ForkExec(cat, []string{cat}, &syscall.ProcAttr{
				Env:   os.Environ(),
				Files: []uintptr{inR.Fd(), outW.Fd(), 2},
				Sys:   &syscall.SysProcAttr{Setpgid: true},
			})
			if err != nil {
				b.Fatal(err)
			}
			inR.Close()
			outW.Close()
			inW.Write(prompt)
			inW.Close()
			out, _ := io.ReadAll(outR)
			outR.Close()
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, 0, nil)
			if string(out) != "hi" || ws.ExitStatus() != 0 {
				b.Fatalf("cat said %q, status %v", out, ws)
			}
		}
	})
	b.Run("http-roundtrip", func(b *testing.B) {
		roundTrips(b, serve(b, setup{bin: cat, loopback: true, plain: true, quiet: true}).Stack)
	})
}

// BenchmarkHealth is the cost of the liveness probe over loopback TCP.
func BenchmarkHealth(b *testing.B) {
	s := serve(b, setup{loopback: true, quiet: true})
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://localhost/health")
		for pb.Next() {
			if err := s.Client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Errorf("GET /health = %d, %v", resp.StatusCode(), err)
				return
			}
		}
	})
}

// roundTrips sends POST /command {"text":"hi"} to s for each iteration of
// b, each a 200.
func roundTrips(b *testing.B, s *vmdtest.Stack) {
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
}
