package supervisor_test

import (
	"testing"

	"github.com/vmd-dev/vmd/internal/leftovers"
)

// Removing a used TMPDIR (a Chromium profile can take seconds) must not hold
// back reaping: the next process still ends as it should.
func TestSlowTempRemovalDoesNotBlockReaping(t *testing.T) {
	t.Parallel()
	h := start(t, false)
	release := make(chan struct{})
	blocked := make(chan struct{}, 1)
	var remove func(*leftovers.Dir)
	// Set before the first discard; the channel send in discard orders it
	// before the janitor reads it.
	remove = h.sup.SetRemove(func(d *leftovers.Dir) {
		select {
		case blocked <- struct{}{}:
			<-release // the first removal hangs until the end of the test
		default:
		}
		remove(d)
	})
	defer close(release)
	h.run(t, script("say first"))
	<-blocked
	ex, out := h.run(t, script("say second\nexit 3"))
	if ex.Code != 3 || out.String() != "second\n" {
		t.Errorf("run while a removal hangs = exit %d %q; want exit 3 second", ex.Code, out)
	}
}
