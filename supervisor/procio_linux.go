package supervisor

import (
	"bytes"
	"errors"
	"os"
	"strconv"
)

// TreeIO sums the bytes that the process pid, its descendants and every
// other member of process group pid (a command runs as its group's leader;
// what it double-forked stays in the group) have read and written through
// read and write calls of any kind, sockets and pipes included: rchar plus
// wchar of /proc/<pid>/io.
//
// The stall watchdog reads the CLI alone (ProcIO): measured with the real
// CLI stalled while Playwright MCP kept Chromium open, the tree moved about
// 800 bytes a second, in bursts, and the CLI alone about 50 (it reads
// /proc/self/statm every second). TreeIO is for a question about the whole
// command, such as whether anything of it is still working.
//
// read_bytes and write_bytes, the same file's other counters, would not
// do: they count only what reaches the block layer, so a tree busy talking
// to the network or through pipes reads as idle.
//
// Reading another process's io needs ptrace-read permission: the same user
// (or root) is enough, which vmd always is for its commands. A process
// that exits takes its counters away, unless its parent in the tree reaps
// it (the kernel adds a reaped child's counters to its parent's), so the
// total may go down: any change is activity. procs is how many processes
// were counted; the error is only for a tree with none left.
func TreeIO(pid int) (total uint64, procs int, err error) {
	for _, p := range treeMembers(pid) {
		if n, ok := procIO(p); ok {
			total += n
			procs++
		}
	}
	if procs == 0 {
		return 0, 0, errors.New("tree io: no process of tree " + strconv.Itoa(pid) + " left to read")
	}
	return total, procs, nil
}

// treeMembers is pid, its descendants and the members of process group pid,
// found by one pass over /proc/*/stat.
func treeMembers(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return []int{pid}
	}
	kids := map[int][]int{}
	in := map[int]bool{pid: true}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, pgrp, ok := statIDs(p); ok {
			kids[ppid] = append(kids[ppid], p)
			if pgrp == pid {
				in[p] = true
			}
		}
	}
	members := make([]int, 0, len(in))
	for p := range in {
		members = append(members, p)
	}
	// Descendants of every member: a group member's children may have
	// left the group (setsid, setpgid) but not the tree.
	for i := 0; i < len(members); i++ {
		for _, c := range kids[members[i]] {
			if !in[c] {
				in[c] = true
				members = append(members, c)
			}
		}
	}
	return members
}

// statIDs reads a process's parent and process group from
// /proc/<pid>/stat, counting fields from the last ')' since the command
// name may hold spaces and parentheses.
func statIDs(pid int) (ppid, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:]) // state ppid pgrp ...
	if len(f) < 3 {
		return 0, 0, false
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgrp, err2 := strconv.Atoi(string(f[2]))
	return ppid, pgrp, err1 == nil && err2 == nil
}

// ProcIO is rchar + wchar of one process (all its threads), as TreeIO
// counts them.
func ProcIO(pid int) (uint64, error) {
	n, ok := procIO(pid)
	if !ok {
		return 0, errors.New("proc io: cannot read /proc/" + strconv.Itoa(pid) + "/io")
	}
	return n, nil
}

// procIO is rchar + wchar of /proc/<pid>/io, for the whole thread group.
func procIO(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return 0, false
	}
	var sum uint64
	var found int
	for line := range bytes.Lines(b) {
		name, value, ok := bytes.Cut(bytes.TrimSpace(line), []byte(": "))
		if !ok || (string(name) != "rchar" && string(name) != "wchar") {
			continue
		}
		n, err := strconv.ParseUint(string(value), 10, 64)
		if err != nil {
			return 0, false
		}
		sum += n
		found++
	}
	return sum, found == 2
}
