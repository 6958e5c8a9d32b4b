package supervisor

import "github.com/vmd-dev/vmd/internal/leftovers"

// SetRemove replaces how the janitor removes a used temp dir; it returns
// the one it replaced. Call it before the first process ends.
func (s *Supervisor) SetRemove(remove func(*leftovers.Dir)) func(*leftovers.Dir) {
	old := s.tmp.remove
	s.tmp.remove = remove
	return old
}
