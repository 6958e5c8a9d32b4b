//go:build !linux

package supervisor

import "errors"

// IO is Linux only (it reads /proc/<pid>/io); elsewhere the stall watchdog
// goes by the CLI's events alone.
func (p *Process) IO() (uint64, error) { return 0, errors.ErrUnsupported }

// RSS is Linux only; elsewhere it is 0.
func (p *Process) RSS() uint64 { return 0 }
