package supervisor

import "runtime"

// forker runs every fork on one OS thread that lives as long as the
// supervisor. Linux sends the parent-death signal when the thread that
// forked the child exits, not only the process, and Go ends threads of its
// own accord; a thread locked to a goroutine that never returns while a
// child lives is the one safe place to fork from.
type forker chan func()

func startForker() forker {
	f := make(forker)
	go func() {
		// Never unlocked: when the supervisor is done, the thread ends with
		// this goroutine, and any child still alive (none should be) dies.
		runtime.LockOSThread()
		for fn := range f {
			fn()
		}
	}()
	return f
}

// do runs fn on the forking thread and waits for it.
func (f forker) do(fn func()) {
	done := make(chan struct{})
	f <- func() { fn(); close(done) }
	<-done
}
