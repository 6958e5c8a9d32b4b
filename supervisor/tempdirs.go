package supervisor

import (
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/internal/leftovers"
)

// tempDirs gives each process in the slot a fresh TMPDIR and removes it
// afterwards, both off the process's path, in a goroutine of its own (the
// janitor): it keeps one directory ready and removes used ones. Creating a
// directory costs a disk write, and deleting the Chromium profile a
// browsing command leaves can take seconds; neither may hold back an
// answer, nor the reaping of the next process.
type tempDirs struct {
	root   string
	log    hclog.Logger
	spare  chan *leftovers.Dir // a directory ready for the next command
	taken  chan struct{}       // the spare was taken: make another
	used   chan *leftovers.Dir // directories to remove
	done   chan struct{}       // closed when the janitor has stopped
	remove func(*leftovers.Dir)
}

// newTempDirs starts the janitor, which first removes what a vmd that died
// left in root.
func newTempDirs(root string, log hclog.Logger) *tempDirs {
	if root == "" {
		root = os.TempDir()
	}
	t := &tempDirs{
		root: root, log: log,
		spare: make(chan *leftovers.Dir, 1),
		taken: make(chan struct{}, 1),
		used:  make(chan *leftovers.Dir, 8),
		done:  make(chan struct{}),
	}
	t.remove = func(d *leftovers.Dir) {
		if err := d.Remove(); err != nil {
			t.log.Warn("cannot remove command temp dir", "dir", d.Path, "error", err)
		}
	}
	go t.janitor()
	return t
}

func (t *tempDirs) janitor() {
	defer close(t.done)
	t.sweep()
	t.refill()
	// Again, now and then: a leftover too young at start (a vmd killed just
	// before this one started) must not stay for this vmd's whole life.
	resweep := time.NewTicker(leftovers.MinAge)
	defer resweep.Stop()
	for {
		select {
		case d, ok := <-t.used:
			if !ok {
				return
			}
			t.remove(d)
			t.refill()
		case <-t.taken:
			t.refill()
		case <-resweep.C:
			t.sweep()
		}
	}
}

func (t *tempDirs) sweep() {
	if gone := leftovers.Sweep(t.root, "cmd"); len(gone) > 0 {
		t.log.Info("removed command temp dirs left by a previous vmd", "count", len(gone))
	}
}

// take returns the spare directory, or makes one if there is none, and
// has the janitor make the next: a warm agent keeps its directory for
// its whole life, so a removal may be long in coming.
func (t *tempDirs) take() (*leftovers.Dir, error) {
	defer func() { // once the spare is out: the janitor makes one only if there is none
		select {
		case t.taken <- struct{}{}:
		default:
		}
	}()
	select {
	case d := <-t.spare:
		return d, nil
	default:
		return leftovers.Make(t.root, "cmd")
	}
}

// discardOrNil discards d, unless it is nil.
func (t *tempDirs) discardOrNil(d *leftovers.Dir) {
	if d != nil {
		t.discard(d)
	}
}

// discard hands a used directory to the janitor, or removes it at once if
// the janitor is that far behind.
func (t *tempDirs) discard(d *leftovers.Dir) {
	select {
	case t.used <- d:
	default:
		t.remove(d)
	}
}

func (t *tempDirs) refill() {
	if len(t.spare) > 0 {
		return
	}
	d, err := leftovers.Make(t.root, "cmd")
	if err != nil {
		t.log.Warn("cannot make a command temp dir", "root", t.root, "error", err)
		return
	}
	t.spare <- d
}

// stop ends the janitor once no command can discard any more. It waits at
// most wait for removals under way; what is left then, the next start
// removes.
func (t *tempDirs) stop(wait time.Duration) {
	close(t.used)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-t.done:
	case <-timer.C:
		t.log.Warn("command temp dirs still being removed at exit; the next start removes them", "root", t.root)
		return
	}
	select {
	case d := <-t.spare:
		t.remove(d)
	default:
	}
}
