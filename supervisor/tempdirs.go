package supervisor

import (
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/internal/leftovers"
)

// tempDirs gives each command a fresh TMPDIR and removes it afterwards, both
// off the command's path: Run keeps one directory ready and removes used ones
// in the background. Creating a directory costs a disk write, and deleting
// the Chromium profile a browsing command leaves can take long; neither
// should hold back an answer.
type tempDirs struct {
	root  string
	log   hclog.Logger
	spare chan string // a directory ready for the next command
	used  chan string // directories to remove
}

// newTempDirs also removes the directories a vmd that died left in root.
func newTempDirs(root string, log hclog.Logger) *tempDirs {
	if root == "" {
		root = os.TempDir()
	}
	if gone := leftovers.Sweep(root, "cmd"); len(gone) > 0 {
		log.Info("removed command temp dirs left by a previous vmd", "count", len(gone))
	}
	return &tempDirs{root: root, log: log, spare: make(chan string, 1), used: make(chan string, 8)}
}

// take returns the spare directory, or makes one if there is none.
func (t *tempDirs) take() (string, error) {
	select {
	case d := <-t.spare:
		return d, nil
	default:
		return os.MkdirTemp(t.root, leftovers.Pattern("cmd"))
	}
}

// discard hands a used directory to Run, or removes it at once if Run is
// behind.
func (t *tempDirs) discard(d string) {
	select {
	case t.used <- d:
	default:
		t.remove(d)
	}
}

// refill makes a spare directory if there is none. Only Run calls it.
func (t *tempDirs) refill() {
	if len(t.spare) > 0 {
		return
	}
	d, err := os.MkdirTemp(t.root, leftovers.Pattern("cmd"))
	if err != nil {
		t.log.Warn("cannot make a command temp dir", "root", t.root, "error", err)
		return
	}
	t.spare <- d
}

// close removes every directory left, used or spare. Run calls it last.
func (t *tempDirs) close() {
	for {
		select {
		case d := <-t.used:
			t.remove(d)
		case d := <-t.spare:
			t.remove(d)
		default:
			return
		}
	}
}

func (t *tempDirs) remove(d string) {
	if err := os.RemoveAll(d); err != nil {
		t.log.Warn("cannot remove command temp dir", "dir", d, "error", err)
	}
}
