package main

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// What the runner reads of processes, from /proc through the harness.

// procOK says the figures below are real ones.
const procOK = true

// dieWithRunner makes vmd (and the CLI with it) die if the runner does.
func dieWithRunner(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// leftovers lists the processes below pid that none of agents owns.
func leftovers(pid int, agents []int, closing bool) []vmdtest.Stat {
	return vmdtest.Leftovers(pid, agents, closing)
}

// describe names processes: pid, parent, state, program.
func describe(procs []vmdtest.Stat) string {
	var out []string
	for _, st := range procs {
		exe, _ := os.Readlink("/proc/" + strconv.Itoa(st.Pid) + "/exe")
		out = append(out, fmt.Sprintf("%d(ppid %d, %c, %s)", st.Pid, st.PPid, st.State, filepath.Base(exe)))
	}
	return strings.Join(out, " ")
}

// descriptors names what pid's descriptors point at.
func descriptors(pid int) string {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	fds, _ := os.ReadDir(dir)
	var out []string
	for _, fd := range fds {
		target, _ := os.Readlink(filepath.Join(dir, fd.Name()))
		out = append(out, fd.Name()+"->"+target)
	}
	return strings.Join(out, " ")
}

// running lists live processes running exe anywhere on the machine.
func running(exe string) []int { return vmdtest.Running(exe) }

// alive reports whether pid still runs exe.
func alive(pid int, exe string) bool { return vmdtest.RunningExe(pid, exe) }

// usageOf reads what pid holds.
func usageOf(pid int) (vmdtest.Usage, error) { return vmdtest.ReadUsage(pid) }

// linked reports whether the binary's symbol table holds a function whose
// name starts with prefix: the linker keeps only code reachable from
// main, so a package's function there means vmd uses it. It is how the
// runner tells a vmd with a feature from one without, explicitly.
func linked(bin, prefix string) (bool, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return false, err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return false, err
	}
	for _, s := range syms {
		if strings.HasPrefix(s.Name, prefix) {
			return true, nil
		}
	}
	return false, nil
}
