package vmdtest

import (
	"os"
	"strconv"
	"strings"
)

// ReadStat reads a process's stat; false if it is gone. The command name
// may hold spaces and parentheses, so the fields are counted from the
// last ')'.
func ReadStat(pid int) (Stat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return Stat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return Stat{}, false
	}
	ppid, err := strconv.Atoi(f[1])
	return Stat{Pid: pid, PPid: ppid, State: f[0][0]}, err == nil
}

// Children lists the processes whose parent is pid, zombies included.
func Children(pid int) []Stat {
	entries, _ := os.ReadDir("/proc")
	var out []Stat
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := ReadStat(n); ok && st.PPid == pid {
			out = append(out, st)
		}
	}
	return out
}

// Marker is the VMD_PROCESS marker in a process's environment: which
// process vmd started it under. "" when there is none or it cannot be
// read (a zombie, another user's process).
func Marker(pid int) string {
	env, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	for kv := range strings.SplitSeq(string(env), "\x00") {
		if v, ok := strings.CutPrefix(kv, "VMD_PROCESS="); ok {
			return v
		}
	}
	return ""
}
