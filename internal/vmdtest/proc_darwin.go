package vmdtest

import "golang.org/x/sys/unix"

// szomb is a zombie's p_stat in macOS's <sys/proc.h>.
const szomb = 5

// statOf is a process's Stat from the kernel's kinfo_proc.
func statOf(p *unix.KinfoProc) Stat {
	st := Stat{Pid: int(p.Proc.P_pid), PPid: int(p.Eproc.Ppid), State: 'S'}
	if p.Proc.P_stat == szomb {
		st.State = 'Z'
	}
	return st
}

// ReadStat reads a process's pid, parent and state; false if it is gone.
func ReadStat(pid int) (Stat, bool) {
	p, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || p.Proc.P_pid != int32(pid) {
		return Stat{}, false
	}
	return statOf(p), true
}

// Children lists pid's direct children, zombies included.
func Children(pid int) []Stat {
	all, err := unix.SysctlKinfoProcSlice("kern.proc.all")
	if err != nil {
		return nil
	}
	var out []Stat
	for i := range all {
		if st := statOf(&all[i]); st.PPid == pid {
			out = append(out, st)
		}
	}
	return out
}

// Marker would be the VMD_PROCESS marker in a process's environment;
// macOS does not show another process's environment, so it is "".
func Marker(int) string { return "" }
