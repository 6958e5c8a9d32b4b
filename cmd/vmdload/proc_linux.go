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

// below counts the processes below pid: live ones and zombies.
func below(pid int) (live, zombies int) { return vmdtest.Tree(pid) }

// belowList names the processes below pid: pid, parent, state, program.
func belowList(pid int) string {
	var out []string
	for _, st := range vmdtest.Descendants(pid) {
		exe, _ := os.Readlink("/proc/" + strconv.Itoa(st.Pid) + "/exe")
		out = append(out, fmt.Sprintf("%d(ppid %d, %c, %s)", st.Pid, st.PPid, st.State, filepath.Base(exe)))
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
