package vmdtest

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
