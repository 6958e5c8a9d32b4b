package vmdtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// T lets a program outside `go test` (cmd/vmdload) run the harness and
// test-shaped cases: it is a testing.TB that records failures instead of
// reporting them to the testing package. The embedded TB is nil: it only
// supplies the interface's unexported method, which nothing calls; every
// method a case may call is defined here.
type T struct {
	testing.TB

	name string
	ctx  context.Context
	out  io.Writer

	mu       sync.Mutex
	errs     []string
	failed   bool
	skipped  string
	cleanups []func()
	temps    []string
}

// NewT is a T named name whose log lines go to out (nil: discarded), and
// whose Context is ctx.
func NewT(ctx context.Context, name string, out io.Writer) *T {
	if out == nil {
		out = io.Discard
	}
	return &T{name: name, ctx: ctx, out: out}
}

// Run runs f as a subtest named name on a goroutine of its own, so that
// FailNow and SkipNow end f alone, then runs its cleanups; it returns the
// subtest for its verdict. A failure of the subtest fails t too.
func (t *T) Run(name string, f func(testing.TB)) *T {
	sub := NewT(t.ctx, t.name+"/"+name, t.out)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer sub.runCleanups()
		f(sub)
	}()
	<-done
	if sub.Failed() {
		t.Fail()
	}
	return sub
}

// Close runs t's cleanups, as the testing package does when a test ends.
func (t *T) Close() { t.runCleanups() }

func (t *T) runCleanups() {
	for {
		t.mu.Lock()
		if len(t.cleanups) == 0 {
			t.mu.Unlock()
			break
		}
		f := t.cleanups[len(t.cleanups)-1]
		t.cleanups = t.cleanups[:len(t.cleanups)-1]
		t.mu.Unlock()
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("cleanup panicked: %v", r)
				}
			}()
			f()
		}()
	}
	for _, d := range t.temps {
		_ = os.RemoveAll(d)
	}
	t.temps = nil
}

// Errors are the failures t recorded, in order.
func (t *T) Errors() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.errs...)
}

// SkipReason is why t was skipped, or "".
func (t *T) SkipReason() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.skipped
}

// Name is the test's name.
func (t *T) Name() string { return t.name }

// Context is the run's context.
func (t *T) Context() context.Context { return t.ctx }

// Output is where log lines go.
func (t *T) Output() io.Writer { return t.out }

// Helper does nothing: messages carry no file and line.
func (t *T) Helper() {}

// Attr logs a key and value.
func (t *T) Attr(key, value string) { t.Logf("%s: %s", key, value) }

// ArtifactDir is a temporary directory.
func (t *T) ArtifactDir() string { return t.TempDir() }

// Log writes a line to the output.
func (t *T) Log(args ...any) { t.log(fmt.Sprintln(args...)) }

// Logf writes a line to the output.
func (t *T) Logf(format string, args ...any) { t.log(fmt.Sprintf(format, args...)) }

func (t *T) log(s string) {
	fmt.Fprintf(t.out, "%s: %s\n", t.name, strings.TrimRight(s, "\n"))
}

// Fail marks t failed.
func (t *T) Fail() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed = true
}

// Failed reports whether t failed.
func (t *T) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

// Error records a failure.
func (t *T) Error(args ...any) { t.record(strings.TrimRight(fmt.Sprintln(args...), "\n")) }

// Errorf records a failure.
func (t *T) Errorf(format string, args ...any) { t.record(fmt.Sprintf(format, args...)) }

func (t *T) record(msg string) {
	t.mu.Lock()
	t.failed = true
	t.errs = append(t.errs, msg)
	t.mu.Unlock()
	t.log("FAIL: " + msg)
}

// FailNow marks t failed and ends the goroutine that called it, which must
// be the one running the (sub)test, as with the testing package.
func (t *T) FailNow() {
	t.Fail()
	runtime.Goexit()
}

// Fatal is Error and FailNow.
func (t *T) Fatal(args ...any) { t.Error(args...); t.FailNow() }

// Fatalf is Errorf and FailNow.
func (t *T) Fatalf(format string, args ...any) { t.Errorf(format, args...); t.FailNow() }

// Skip is Log and SkipNow.
func (t *T) Skip(args ...any) { t.skip(strings.TrimRight(fmt.Sprintln(args...), "\n")) }

// Skipf is Logf and SkipNow.
func (t *T) Skipf(format string, args ...any) { t.skip(fmt.Sprintf(format, args...)) }

// SkipNow ends the (sub)test as skipped.
func (t *T) SkipNow() { t.skip("skipped") }

func (t *T) skip(why string) {
	t.mu.Lock()
	t.skipped = why
	t.mu.Unlock()
	runtime.Goexit()
}

// Skipped reports whether t was skipped.
func (t *T) Skipped() bool { return t.SkipReason() != "" }

// Cleanup registers f to run when t ends, last registered first.
func (t *T) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// TempDir makes a directory removed when t ends.
func (t *T) TempDir() string {
	d, err := os.MkdirTemp("", "vmdtest-")
	if err != nil {
		t.Fatalf("TempDir: %v", err)
	}
	t.mu.Lock()
	t.temps = append(t.temps, d)
	t.mu.Unlock()
	return d
}

// Setenv sets an environment variable until t ends.
func (t *T) Setenv(key, value string) {
	old, had := os.LookupEnv(key)
	_ = os.Setenv(key, value)
	t.Cleanup(func() {
		if had {
			_ = os.Setenv(key, old)
		} else {
			_ = os.Unsetenv(key)
		}
	})
}

// Chdir changes the working directory until t ends.
func (t *T) Chdir(dir string) {
	old, err := os.Getwd()
	if err == nil {
		err = os.Chdir(dir)
	}
	if err != nil {
		t.Fatalf("Chdir: %v", err)
	}
	t.Cleanup(func() { _ = os.Chdir(old) })
}
