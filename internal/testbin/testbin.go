// Package testbin builds the programs vmd's tests run as real processes.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// The packages the tests build.
const (
	// FakeClaude stands in for the Claude Code CLI.
	FakeClaude = "github.com/vmd-dev/vmd/internal/fakeclaude"
	// Scripted is the fake CLI seen as any program: it acts out a script
	// read from stdin (answer, fail, hang, leave processes behind).
	Scripted = FakeClaude
	// VMD is vmd itself.
	VMD = "github.com/vmd-dev/vmd/cmd/vmd"
)

// Main is a TestMain: it builds each package of pkgs into a temporary
// directory and stores the executable's path in the matching element of
// paths, runs the tests under goleak with opts, removes the directory and
// exits. Building comes first, before any test starts a supervisor: the
// supervisor owns every wait4 in the process, the go command's included.
func Main(m *testing.M, pkgs []string, paths []*string, opts ...goleak.Option) {
	dir, err := os.MkdirTemp("", "vmd-test-bin-")
	for i := 0; err == nil && i < len(pkgs); i++ {
		*paths[i], err = build(dir, pkgs[i])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, append(opts, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))...)
}

func build(dir, pkg string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}
