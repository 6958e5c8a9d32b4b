package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/vmd-dev/vmd/internal/testfs"
	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// Started by `go run`, vmd stops (drains and exits) when the go process is
// killed; started by anything else, it lives on when its parent dies. The
// parent is a shell, copied under the name go for the first case.
func TestParentDeath(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		parent string
		stops  bool
	}{
		{"go", true},
		{"sh", false},
	} {
		t.Run(tt.parent, func(t *testing.T) {
			parent := filepath.Join(t.TempDir(), tt.parent)
			b, err := os.ReadFile(sh)
			if err != nil {
				t.Fatal(err)
			}
			if err := testfs.WriteExecutable(parent, b, 0o755); err != nil {
				t.Fatal(err)
			}
			// exec's name: the shell's comm is its file's name.
			p := startVMD(t, baseEnv(t), parent, "-c", vmdBin+" & wait")
			vmdPid := int(p.field("startup", "pid").(float64))
			p.signal(syscall.SIGKILL) // the parent
			vmdtest.Eventually(t, "the parent to die", func() bool {
				st, ok := vmdtest.ReadStat(p.pid)
				return !ok || st.State == 'Z'
			})
			if tt.stops {
				vmdtest.Within(t, "vmd to stop", p.Exited())
				if !p.logged("stopped") {
					t.Errorf("vmd under go did not drain and log its stop after go was killed")
				}
				return
			}
			if resp, err := http.Get(p.url + "/health"); err != nil || resp.StatusCode != 200 {
				t.Errorf("GET /health after its parent %s died = %v, %v; want 200", tt.parent, resp, err)
			} else {
				resp.Body.Close()
			}
			if p.logged("stopped") {
				t.Errorf("vmd stopped when its parent %s died; want it to live on", tt.parent)
			}
			syscall.Kill(vmdPid, syscall.SIGTERM)
			vmdtest.Within(t, "vmd to stop", p.Exited())
		})
	}
}
