package supervisor

import (
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// reaper is the process's one reaper, shared by its supervisors: one loop
// makes every wait4, so that no exit status is lost to another waiter, and
// hands each to the process that was waiting for it, by pid.
//
// Every fork, wait and kill runs under reaper.mu, which is what makes
// them safe together:
//
//   - A pid is registered in waiters while the lock is still held after the
//     fork, so the loop can never collect a child before anyone waits for it
//     (the race os/exec's Wait has with a wait4(-1) reaper).
//   - A child is only signalled while it has not been reaped. Until then its
//     pid, and its process group id if it leads one, cannot be reused by an
//     unrelated process, so a kill can never hit a stranger.
//
// The loop runs while there is a process to wait for or a supervisor that
// reaps every child (Config.Reap), and stops otherwise, its forking thread
// with it: a test process keeps no goroutine of it between tests.
var reaper = &reaperState{waiters: map[int]chan exitStatus{}, live: map[string]bool{}, all: map[*vm.Counter]bool{}}

type reaperState struct {
	mu      sync.Mutex
	waiters map[int]chan exitStatus // the processes waited for, by pid
	live    map[string]bool         // the markers of processes not done yet
	all     map[*vm.Counter]bool    // running supervisors with Config.Reap: their orphan counts
	sigchld chan os.Signal          // nil while the loop is stopped
	fork    forker
}

type exitStatus struct {
	status syscall.WaitStatus
	usage  *syscall.Rusage
}

// start forks spec on the forking thread and registers the child, under
// the lock, before the loop can see it exit.
func (r *reaperState) start(spec Spec, env []string, pipes stdio, p *Process) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runLocked()
	argv := append([]string{spec.Path}, spec.Args...)
	var pid int
	var err error
	r.fork.do(func() { pid, err = spawn(spec.Path, argv, env, spec.Dir, pipes) })
	if err != nil {
		r.wakeLocked() // the loop may have nothing left to wait for
		return 0, err
	}
	r.waiters[pid] = p.exitc
	r.live[p.marker] = true
	return pid, nil
}

// done forgets a process's marker once its sweep is over.
func (r *reaperState) done(marker string) {
	r.mu.Lock()
	delete(r.live, marker)
	r.mu.Unlock()
}

// reapAll counts a supervisor that reaps every child in or out, by the
// counter of the orphans it reaps.
func (r *reaperState) reapAll(orphans *vm.Counter, in bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if in {
		r.all[orphans] = true
	} else {
		delete(r.all, orphans)
	}
	r.runLocked()
	r.wakeLocked()
}

// runLocked starts the loop unless it runs. It listens for SIGCHLD before
// any fork it serves, and looks once at once for what exited before.
func (r *reaperState) runLocked() {
	if r.sigchld != nil {
		return
	}
	r.sigchld = make(chan os.Signal, 1)
	signal.Notify(r.sigchld, syscall.SIGCHLD)
	r.fork = startForker()
	go r.loop(r.sigchld, r.fork)
	r.wakeLocked()
}

func (r *reaperState) wakeLocked() {
	select {
	case r.sigchld <- syscall.SIGCHLD:
	default:
	}
}

func (r *reaperState) loop(sigchld chan os.Signal, fork forker) {
	for range sigchld {
		r.mu.Lock()
		r.reapLocked()
		if len(r.waiters) == 0 && len(r.all) == 0 {
			signal.Stop(sigchld)
			close(fork)
			r.sigchld, r.fork = nil, nil
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
	}
}

// reapLocked collects every child waited for that has exited and, while a
// supervisor reaps every child, every other child too.
func (r *reaperState) reapLocked() {
	for pid, ch := range r.waiters {
		if exited(pid) {
			r.collectLocked(pid, ch)
		}
	}
	for len(r.all) > 0 {
		pid, _ := peekExited()
		if pid == 0 {
			return
		}
		if ch, ours := r.waiters[pid]; ours { // exited since the pass above
			r.collectLocked(pid, ch)
			continue
		}
		if _, _, ok := reapPid(pid); !ok {
			return
		}
		for c := range r.all {
			c.Inc()
		}
	}
}

// collectLocked reaps a child waited for that has exited and delivers its
// status. What is left of its group is killed first, while its zombie
// still holds the group id; once it is reaped the id could name someone
// else's group.
func (r *reaperState) collectLocked(pid int, ch chan exitStatus) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	status, usage, ok := reapPid(pid)
	if !ok {
		return
	}
	delete(r.waiters, pid)
	ch <- exitStatus{status: status, usage: usage}
}

// kill sends SIGKILL to a child waited for, and to its group when it
// leads one, unless it has been reaped.
func (r *reaperState) kill(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.waiters[pid]; ok { // not reaped: pid and group are still ours
		killTree(pid)
	}
}

// forget stops waiting for a child that survives SIGKILL; the loop reaps
// it as an orphan should it ever die. It reports false when the child's
// status was delivered meanwhile.
func (r *reaperState) forget(pid int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.waiters[pid]; !ok {
		return false
	}
	delete(r.waiters, pid)
	r.wakeLocked()
	return true
}

// sweep kills what p left alive below vmd once it has exited: its group is
// dead already (collectLocked), but a process in a session of its own
// (Chromium, started so by Playwright) comes back to vmd as an orphan when
// its parent dies. Such orphans are told apart by the marker every process
// inherits from p's environment: p's own are killed, and so are those of
// processes that are done. With Config.Reap, orphans whose marker cannot be
// read (no marker, or a process vmd may not read) are killed too, as no
// live process can be shown to own them. It kills only direct children of
// vmd, which nobody else can reap, so no pid it signals can have been
// reused.
func (s *Supervisor) sweep(p *Process) int {
	defer reaper.done(p.marker)
	killed := map[int]bool{}
	deadline := time.Now().Add(sweepWait)
	pause := 50 * time.Microsecond
	for {
		reaper.mu.Lock()
		reaper.reapLocked()
		var alive []int
		if _, any := peekExited(); any {
			for _, pid := range children() {
				if _, waited := reaper.waiters[pid]; waited {
					continue
				}
				state, pgrp, ok := procStat(pid)
				if !ok || state == 'Z' {
					// A zombie of p's (of its group, or of a group the sweep
					// killed) is reaped before the sweep is over: by the loop
					// above when it reaps every child, else here, since no one
					// else will. A leader shows as a zombie before its other
					// threads are gone and cannot be reaped until they are
					// (its children come to vmd only then): it counts as
					// still dying.
					if ok && (pgrp == p.pid || killed[pgrp] || killed[pid]) {
						if len(reaper.all) > 0 {
							alive = append(alive, pid)
						} else if _, _, reaped := reapPid(pid); !reaped {
							alive = append(alive, pid)
						}
					}
					continue
				}
				// One killed already is dying, as is one of p's group (its
				// group id cannot name another group while a member lives):
				// their environment may be gone with their memory, so they
				// are not asked whose they are.
				if !killed[pid] && pgrp != p.pid && !s.left(p, pid) {
					continue
				}
				killTree(pid)
				killed[pid] = true
				alive = append(alive, pid)
			}
		}
		reaper.mu.Unlock()
		if len(alive) == 0 {
			break
		}
		if time.Now().After(deadline) {
			p.log.Error("processes survive SIGKILL", "pids", alive)
			break
		}
		time.Sleep(pause) // a bounded back-off while the kernel tears them down
		pause = min(2*pause, 10*time.Millisecond)
	}
	s.strays.Add(len(killed))
	if len(killed) > 0 {
		p.log.Warn("killed stray processes", "count", len(killed))
	}
	return len(killed)
}

// left reports whether the orphan pid is p's to kill; the caller holds
// reaper.mu.
func (s *Supervisor) left(p *Process, pid int) bool {
	m, ok := markerOf(pid)
	switch {
	case !ok || m == "":
		return s.cfg.Reap
	case m == p.marker:
		return true
	case reaper.live[m]:
		return false // a live process's: its own sweep will see to it
	}
	// A process that is done left it: one of this vmd's, or, reaping
	// every child, anyone's.
	return s.cfg.Reap || strings.HasPrefix(m, strconv.Itoa(os.Getpid())+".")
}
