package vmdtest

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ReadUsage reads VmRSS and Threads from /proc/<pid>/status and counts
// /proc/<pid>/fd.
func ReadUsage(pid int) (Usage, error) {
	var u Usage
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
	u.FDs = len(fds)
	return u, err
}

// Running lists the live processes (zombies aside) whose executable is
// exe, anywhere on the machine: a program a test started, inside the tree
// it watches or escaped from it. Copies of the same program run from other
// paths are not counted.
func Running(exe string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err == nil && RunningExe(pid, exe) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// RunningExe reports whether pid is a live (not zombie) process running
// exe; a pid reused by another program does not count.
func RunningExe(pid int, exe string) bool {
	st, ok := ReadStat(pid)
	if !ok || st.State == 'Z' {
		return false
	}
	link, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return err == nil && strings.TrimSuffix(link, " (deleted)") == exe
}
