//go:build !linux

package main

import (
	"errors"
	"os/exec"

	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// Outside Linux there is no /proc: the runner checks answers, logs and
// HTTP, and says that the process and memory figures were not read.

const procOK = false

var errNoProc = errors.New("no /proc on this system")

func dieWithRunner(*exec.Cmd) {}

func leftovers(int, []int, bool) []vmdtest.Stat { return nil }

func running(string) []int { return nil }

func descriptors(int) string { return "" }

func describe([]vmdtest.Stat) string { return "" }

func alive(int, string) bool { return false }

func usageOf(int) (vmdtest.Usage, error) { return vmdtest.Usage{}, errNoProc }

func linked(string, string) (bool, error) { return false, errNoProc }
