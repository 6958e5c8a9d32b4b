package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// vmd's directories are private to it and go with it: by default the
// images land beside its state; with state_dir ":memory:" the images and
// the agent's git configuration go in directories of its own under TMPDIR,
// removed when it stops. Either way nothing is left in TMPDIR.
func TestOwnDirectories(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, state string
		images      func(home, tmp string) string // where images land: a prefix
		kept        bool                          // the image outlives vmd
	}{
		{"default state_dir", "", func(home, _ string) string { return filepath.Join(home, ".vmd", "images") + "/" }, true},
		{"state in memory", ":memory:", func(_, tmp string) string { return filepath.Join(tmp, "vmd-images-") }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			home, tmp := t.TempDir(), t.TempDir()
			p := startVMD(t, append(baseEnv(t), "HOME="+home, "TMPDIR="+tmp, "IMAGES_DIR=", "STATE_DIR="+tt.state))
			r := post(p.url, "image shot.png\nenv IMAGES_DIR")
			dir, _ := strings.CutPrefix(strings.TrimSpace(r.body["text"].(string)), "IMAGES_DIR=")
			if images, _ := r.body["images"].([]any); r.status != 200 || len(images) != 1 || images[0] != "/images/shot.png" {
				t.Fatalf("POST /command = %d %v; want 200 listing /images/shot.png", r.status, r.body)
			}
			if want := tt.images(home, tmp); !strings.HasPrefix(dir+"/", want) {
				t.Errorf("the CLI's IMAGES_DIR = %q; want it in %s*", dir, want)
			}
			p.signal(syscall.SIGTERM)
			if code := p.WaitExit(t); code != 0 {
				t.Fatalf("exit code after SIGTERM = %d; want 0", code)
			}
			if _, err := os.Stat(filepath.Join(dir, "shot.png")); (err == nil) != tt.kept {
				t.Errorf("after vmd stopped, the image: %v; want it kept %v", err, tt.kept)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("TMPDIR holds %v after vmd stopped; want nothing", left)
			}
		})
	}
}

// A directory vmd cannot create stops it at start, naming the setting and
// the fix: an images directory it cannot write would lose every
// screenshot, a state_dir every record.
func TestDirNotCreatable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		env  string
		want []string // in the error, each
	}{
		{"IMAGES_DIR", []string{"images_dir", "set IMAGES_DIR"}},
		{"STATE_DIR", []string{"state_dir", "cannot be created", "set STATE_DIR"}},
	} {
		t.Run(tt.env, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(file, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(vmdBin)
			cmd.Env = append(baseEnv(t), tt.env+"="+filepath.Join(file, "dir"))
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != 1 {
				t.Errorf("vmd with %s under a file: exit %d, %s; want 1", tt.env, code, out)
			}
			for _, want := range tt.want {
				if !strings.Contains(string(out), want) {
					t.Errorf("vmd with %s under a file: %s; want it to say %q", tt.env, out, want)
				}
			}
		})
	}
}
