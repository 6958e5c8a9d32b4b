package supervisor

import (
	"io"
	"os"
	"sync"
	"time"
)

// pipe is one of the child's stdio pipes: the end vmd keeps and the end
// handed to the child.
type pipe struct{ ours, theirs *os.File }

// stdio is the child's stdin, stdout and stderr.
type stdio [3]pipe

func newStdio() (stdio, error) {
	var p stdio
	for i := range p {
		r, w, err := os.Pipe()
		if err != nil {
			p.close() // closes the pipes made so far
			return stdio{}, err
		}
		p[i] = pipe{ours: r, theirs: w}
		if i == 0 { // the child reads its stdin
			p[i] = pipe{ours: w, theirs: r}
		}
	}
	return p, nil
}

// closeTheirs closes the child's ends once it has its own copies: ours
// would keep the pipes open forever.
func (p stdio) closeTheirs() {
	for _, q := range p {
		q.theirs.Close()
	}
}

// drain waits for the readers of stdout and stderr (copying) to reach the
// end, at most drainPipes, then closes every end. A writer that escaped
// vmd's tree cannot hold it back for long: past the wait, reads are cut
// short. It reports whether the readers ended by themselves.
func (p stdio) drain(copying *sync.WaitGroup) bool {
	done := make(chan struct{})
	go func() { copying.Wait(); close(done) }()
	ended := true
	select {
	case <-done:
	case <-time.After(drainPipes):
		ended = false
		_ = p[1].ours.SetReadDeadline(time.Now())
		_ = p[2].ours.SetReadDeadline(time.Now())
		<-done
	}
	p.close()
	return ended
}

// close closes every end left open; closing one twice is harmless.
func (p stdio) close() {
	for _, q := range p {
		if q.ours != nil {
			q.ours.Close()
			q.theirs.Close()
		}
	}
}

// copyOut runs the readers of stdout and stderr, each in a goroutine of
// its own; a missing one discards.
func (p stdio) copyOut(spec Spec) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i, read := range []func(io.Reader){spec.Stdout, spec.Stderr} {
		if read == nil {
			read = func(r io.Reader) { _, _ = io.Copy(io.Discard, r) }
		}
		f := p[i+1].ours
		wg.Go(func() { read(f) })
	}
	return &wg
}
