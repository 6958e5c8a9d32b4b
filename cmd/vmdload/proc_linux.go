package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// What the runner reads from /proc about vmd and the processes below it.
// This kernel may lack /proc/<pid>/task/<tid>/children (CONFIG_PROC_CHILDREN),
// so the process tree comes from one pass over every /proc/<pid>/stat.

// proc is one line of the process table.
type proc struct {
	pid, ppid int
	state     byte   // R, S, D, Z, ...
	comm      string // the kernel's name for it, at most 15 bytes
}

// processes reads the process table. Processes that exit while it is read
// are left out.
func processes() ([]proc, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	ps := make([]proc, 0, len(entries))
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readStat(pid); ok {
			ps = append(ps, p)
		}
	}
	return ps, nil
}

// readStat parses /proc/<pid>/stat. The name may hold spaces and
// parentheses, so fields are counted from the last ')'.
func readStat(pid int) (proc, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, false
	}
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return proc{}, false
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return proc{}, false
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return proc{}, false
	}
	return proc{pid: pid, ppid: ppid, state: f[0][0], comm: string(b[open+1 : end])}, true
}

// descendants returns every process below root in ps, children first.
func descendants(ps []proc, root int) []proc {
	kids := map[int][]proc{}
	for _, p := range ps {
		kids[p.ppid] = append(kids[p.ppid], p)
	}
	var out []proc
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, k := range kids[pid] {
			out = append(out, k)
			queue = append(queue, k.pid)
		}
	}
	return out
}

// treeCount is what is below vmd at one moment.
type treeCount struct {
	Descendants int // every process below vmd, zombies included
	Zombies     int // children of vmd in state Z
}

func countTree(ps []proc, root int) treeCount {
	var c treeCount
	for _, p := range descendants(ps, root) {
		c.Descendants++
		if p.ppid == root && p.state == 'Z' {
			c.Zombies++
		}
	}
	return c
}

// runningExe returns the pids of live processes (zombies aside) whose
// executable is exe: a fake CLI anywhere on the machine, inside vmd's tree or
// escaped from it. The name in stat is checked first so that only a few
// exe links are read; other engineers' copies of fakeclaude run from other
// paths and are not counted.
func runningExe(ps []proc, exe string) []int {
	base := exe[strings.LastIndexByte(exe, '/')+1:]
	if len(base) > 15 {
		base = base[:15]
	}
	var pids []int
	for _, p := range ps {
		if p.comm != base || p.state == 'Z' {
			continue
		}
		if link, err := os.Readlink("/proc/" + strconv.Itoa(p.pid) + "/exe"); err == nil && strings.TrimSuffix(link, " (deleted)") == exe {
			pids = append(pids, p.pid)
		}
	}
	return pids
}

// alive reports whether pid names a live (not zombie) process running exe.
// A pid that has been reused by something else does not count.
func alive(pid int, exe string) bool {
	p, ok := readStat(pid)
	if !ok || p.state == 'Z' {
		return false
	}
	link, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return err == nil && strings.TrimSuffix(link, " (deleted)") == exe
}

// usage is what a process holds.
type usage struct {
	RSSKiB  int `json:"rssKiB"`
	FDs     int `json:"fds"`
	Threads int `json:"threads"`
	// Goroutines comes from vmd's /metrics (go_goroutines); -1 when vmd
	// does not serve it.
	Goroutines int `json:"goroutines"`
}

// readUsage reads VmRSS and Threads from /proc/<pid>/status and counts
// /proc/<pid>/fd. Goroutines are left for the caller.
func readUsage(pid int) (usage, error) {
	u := usage{Goroutines: -1}
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return u, err
	}
	defer f.Close()
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, _ := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(value)
		if len(fields) == 0 {
			continue
		}
		switch name {
		case "VmRSS":
			u.RSSKiB, err = strconv.Atoi(fields[0])
			found++
		case "Threads":
			u.Threads, err = strconv.Atoi(fields[0])
			found++
		}
		if err != nil {
			return u, fmt.Errorf("/proc/%d/status: %s: %w", pid, name, err)
		}
	}
	if found != 2 {
		return u, fmt.Errorf("/proc/%d/status: no VmRSS or Threads", pid)
	}
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return u, err
	}
	u.FDs = len(fds)
	return u, nil
}
