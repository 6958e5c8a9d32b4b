package vmdtest

import (
	"strconv"
	"strings"
)

// Stat is what a test reads of a process: on Linux from /proc/<pid>/stat,
// on macOS from sysctl kern.proc.
type Stat struct {
	Pid, PPid int
	// State is the state letter: 'Z' for a zombie.
	State byte
}

// Descendants lists every process below pid, zombies included.
func Descendants(pid int) []Stat {
	var out []Stat
	for _, c := range Children(pid) {
		out = append(append(out, c), Descendants(c.Pid)...)
	}
	return out
}

// Tree counts the processes below pid: live ones and zombies.
func Tree(pid int) (live, zombies int) {
	for _, st := range Descendants(pid) {
		if st.State == 'Z' {
			zombies++
		} else {
			live++
		}
	}
	return live, zombies
}

// Gone reports whether no process has the pid any more, zombie or not.
func Gone(pid int) bool {
	_, ok := ReadStat(pid)
	return !ok
}

// Leftovers lists the processes below root (a vmd) that none of agents (the
// pids of the agents it lists) owns: what a command left behind. An agent
// owns its descendants and the processes carrying its marker, its orphans
// that root adopted. While an agent is closing, any process of root's
// (its marker) may be that agent's, whose own environment may be gone
// already, and so may a zombie right below root: its sweep is not over.
func Leftovers(root int, agents []int, closing bool) []Stat {
	owner := map[int]bool{}
	markers := map[string]bool{}
	for _, pid := range agents {
		owner[pid] = true
		if m := Marker(pid); m != "" {
			markers[m] = true
		}
	}
	procs := Descendants(root)
	parent := map[int]int{}
	for _, st := range procs {
		parent[st.Pid] = st.PPid
	}
	roots := strconv.Itoa(root) + "."
	var out []Stat
	for _, st := range procs {
		owned := false
		for p := st.Pid; p != root && p != 0 && !owned; p = parent[p] {
			owned = owner[p]
		}
		m := Marker(st.Pid)
		owned = owned || markers[m] ||
			closing && (strings.HasPrefix(m, roots) || st.State == 'Z' && st.PPid == root)
		if !owned {
			out = append(out, st)
		}
	}
	return out
}
