package supervisor

import (
	"os"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Every fork, wait and kill vmd makes runs under Supervisor.reapMu, which is
// what makes them safe together:
//
//   - A pid is registered in waiters while the lock is still held after the
//     fork, so the reaper can never collect a child before anyone waits for it
//     (the race os/exec's Wait has with a wait4(-1) reaper).
//   - A child is only signalled while it has not been reaped. Until then its
//     pid, and its process group id if it leads one, cannot be reused by an
//     unrelated process, so a kill can never hit a stranger.

// start forks spec on the forking thread. The pid is registered under
// reapMu, before the reaper can see the child exit.
func (s *Supervisor) start(spec Spec, env []string, pipes stdio) (int, <-chan exit, error) {
	s.reapMu.Lock()
	defer s.reapMu.Unlock()
	argv := append([]string{spec.Path}, spec.Args...)
	var pid int
	var err error
	s.fork.do(func() { pid, err = spawn(spec.Path, argv, env, spec.Dir, pipes) })
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan exit, 1)
	s.waiters[pid] = ch
	return pid, ch, nil
}

// kill ends a process early: SIGKILL to its whole process group, at once.
// Not SIGTERM first: a timeout is a promise to the caller, and a process
// (or a browser below it) that ignores SIGTERM must not stretch it.
func (s *Supervisor) kill(pid int, exitc <-chan exit, log hclog.Logger) (exit, bool) {
	s.reapMu.Lock()
	if _, ok := s.waiters[pid]; ok { // not reaped: pid and group are still ours
		killTree(pid)
	}
	s.reapMu.Unlock()
	t := time.NewTimer(killWait)
	defer t.Stop()
	select {
	case ex := <-exitc:
		return ex, true
	case <-t.C:
	}
	// Stuck in the kernel. Stop waiting for it: the reaper will collect it
	// as an orphan if it ever dies.
	s.reapMu.Lock()
	delete(s.waiters, pid)
	s.reapMu.Unlock()
	log.Error("process survives SIGKILL", "waited", killWait)
	return exit{}, false
}

// reap collects every child that has exited.
func (s *Supervisor) reap() {
	s.reapMu.Lock()
	defer s.reapMu.Unlock()
	s.reapLocked()
}

// reapLocked reaps every exited child and reports whether any child, live
// or zombie, is left.
func (s *Supervisor) reapLocked() bool {
	for {
		pid, children := peekExited(s.waiters)
		if pid == 0 {
			return children
		}
		ch, ours := s.waiters[pid]
		if ours {
			// It exited. Kill what is left of its group now, while its
			// zombie still holds the group id; once it is reaped the id
			// could name someone else's group.
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
		status, usage, ok := reapPid(pid)
		if !ok {
			return true
		}
		if ours {
			delete(s.waiters, pid)
			ch <- exit{status: status, usage: usage}
			continue
		}
		s.stats.reaped.Add(1)
		s.log.Debug("reaped orphan", "pid", pid)
	}
}

// sweep kills every process still below vmd and waits for them to die. It
// kills only direct children of vmd, which nobody else can reap, so no pid
// it signals can have been reused; their own children come to vmd as they
// die and are killed in the next round. Processes someone waits for (run by
// Exec beside the slot) are spared.
func (s *Supervisor) sweep(log hclog.Logger) int {
	killed := map[int]bool{}
	deadline := time.Now().Add(sweepWait)
	pause := 50 * time.Microsecond
	for {
		s.reapMu.Lock()
		if !s.reapLocked() {
			// No child at all: the common case, known without reading /proc.
			s.reapMu.Unlock()
			break
		}
		kids := children()
		if len(kids) == 0 {
			// waitid says there are children; the per-thread lists may
			// miss one mid-fork. Read every process's parent instead.
			kids = childrenByScan(os.Getpid())
		}
		kids = s.unowned(kids)
		for _, pid := range kids {
			if _, state, ok := procStat(pid); ok && state != 'Z' {
				killTree(pid)
				killed[pid] = true
			}
		}
		s.reapMu.Unlock()
		if len(kids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			log.Error("processes survive SIGKILL", "pids", kids)
			break
		}
		time.Sleep(pause) // a bounded back-off while the kernel tears them down
		pause = min(2*pause, 10*time.Millisecond)
	}
	s.stats.strays.Add(uint64(len(killed)))
	if len(killed) > 0 {
		log.Warn("killed stray processes", "count", len(killed))
	}
	return len(killed)
}

// unowned drops from pids the children someone waits for. The caller holds
// reapMu.
func (s *Supervisor) unowned(pids []int) []int {
	out := pids[:0]
	for _, pid := range pids {
		if _, owned := s.waiters[pid]; !owned {
			out = append(out, pid)
		}
	}
	return out
}
