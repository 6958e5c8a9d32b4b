package leftovers

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/vmd-dev/vmd/internal/testfs"
)

// asNobodyEnv marks the test binary re-executed as nobody.
const asNobodyEnv = "VMD_TEST_LEFTOVERS_AS_NOBODY"

// A command run as a normal user may leave directories in its TMPDIR that
// os.RemoveAll cannot empty: unwritable (chmod 500) or unreadable (000),
// nested, with a link pointing out. Remove and Sweep must still remove it
// all, and chmod nothing outside. Root ignores modes, so as root the test
// re-executes itself as nobody; it never passes as root without having run.
func TestRemoveWhateverModes(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		if os.Getenv(asNobodyEnv) != "" {
			t.Fatal("still root after dropping privileges")
		}
		runAsNobody(t, "^TestRemoveWhateverModes$")
		return
	}
	root := t.TempDir()
	outside := filepath.Join(root, "outside")
	if err := os.Mkdir(outside, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(outside, 0o700)

	for _, how := range []string{"Remove", "Sweep"} {
		t.Run(how, func(t *testing.T) {
			d, err := Make(root, "cmd")
			if err != nil {
				t.Fatal(err)
			}
			mess(t, d.Path, outside)
			if how == "Remove" {
				err = d.Remove()
			} else {
				d.lock.Close() // its maker died
				age(t, d.Path)
				if got := Sweep(root, "cmd"); len(got) != 1 || got[0] != d.Path {
					t.Errorf("Sweep = %q; want [%s]", got, d.Path)
				}
			}
			if err != nil {
				t.Errorf("Remove: %v", err)
			}
			if _, err := os.Lstat(d.Path); !os.IsNotExist(err) {
				t.Errorf("%s left behind (%v)", d.Path, err)
			}
			if info, err := os.Stat(outside); err != nil || info.Mode().Perm() != 0o500 {
				t.Errorf("outside the directory: %v, %v; want it untouched (0500)", info.Mode(), err)
			}
		})
	}
}

// mess leaves in dir what a careless command might: a 500 directory with a
// file, a 000 directory with a file, one inside the other, and a link to a
// directory outside.
func mess(t *testing.T, dir, outside string) {
	t.Helper()
	steps := []func() error{
		func() error { return os.MkdirAll(filepath.Join(dir, "ro", "none", "deep"), 0o755) },
		func() error { return os.WriteFile(filepath.Join(dir, "ro", "f"), nil, 0o400) },
		func() error { return os.WriteFile(filepath.Join(dir, "ro", "none", "deep", "f"), nil, 0o000) },
		func() error { return os.Symlink(outside, filepath.Join(dir, "ro", "link")) },
		func() error { return os.Chmod(filepath.Join(dir, "ro", "none", "deep"), 0o000) },
		func() error { return os.Chmod(filepath.Join(dir, "ro", "none"), 0o000) },
		func() error { return os.Chmod(filepath.Join(dir, "ro"), 0o500) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	// The point of the test: os.RemoveAll alone fails here.
	if err := os.RemoveAll(dir); err == nil {
		t.Fatal("os.RemoveAll removed the directory: the test cannot tell anything (running as root?)")
	}
}

// runAsNobody runs the tests matching pattern in a copy of this test binary
// as the user nobody, and fails unless they ran and passed.
func runAsNobody(t *testing.T, pattern string) {
	t.Helper()
	cred := nobody(t)
	dir, err := os.MkdirTemp("", "vmd-leftovers-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// The go command builds the test binary where only root may enter.
	bin := filepath.Join(dir, "leftovers.test")
	if err := testfs.CopyExecutable(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, tmp} {
		if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "-test.run="+pattern, "-test.v")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, asNobodyEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	t.Logf("as nobody (uid %d):\n%s", cred.Uid, out)
}

func nobody(t *testing.T) *syscall.Credential {
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("no user nobody to drop root's privileges to: %v", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		t.Fatalf("nobody: uid %q gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}
