package supervisor

import (
	"bytes"
	"errors"
	"os"
	"strconv"
)

// RSS is the resident memory of the process's whole tree, in bytes: the
// process, its descendants, the members of its group, and the orphans that
// carry its marker (a browser whose parent died), each counted once. Pages
// shared between them count in each (RSS, not PSS): an upper bound.
func (p *Process) RSS() uint64 {
	var total uint64
	for _, m := range treeMembers(p.pid, p.marker) {
		total += rssOf(m)
	}
	return total
}

// rssOf is VmRSS of /proc/<pid>/status, in bytes; 0 for a process gone.
func rssOf(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			kb, err := strconv.ParseUint(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// treeMembers is pid, its descendants, the members of process group pid
// and the orphans carrying marker, with their descendants, found by one
// pass over /proc/*/stat.
func treeMembers(pid int, marker string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return []int{pid}
	}
	kids := map[int][]int{}
	in := map[int]bool{pid: true}
	self := os.Getpid()
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
			if ppid == self && p != pid {
				if m, ok := markerOf(p); ok && m == marker {
					in[p] = true
				}
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

// IO is rchar + wchar of the process itself (all its threads, not its
// children): the bytes it has read and written through read and write
// calls of any kind, sockets and pipes included. read_bytes and
// write_bytes, the same file's other counters, would not do: they count
// only what reaches the block layer, so a process busy talking to the
// network or through pipes reads as idle. Reading another process's io
// needs ptrace-read permission: the same user (or root), which vmd always
// is for its processes.
func (p *Process) IO() (uint64, error) { return procIOErr(p.pid) }

func procIOErr(pid int) (uint64, error) {
	n, ok := procIO(pid)
	if !ok {
		return 0, errors.New("cannot read /proc/" + strconv.Itoa(pid) + "/io")
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
