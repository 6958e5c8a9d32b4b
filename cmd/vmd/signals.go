package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/oklog/run"

	"github.com/vmd-dev/vmd/commands"
)

// stopSignals start the drain: SIGTERM (Docker), SIGINT (Fly.io, Ctrl-C)
// and SIGHUP (the terminal went away), unless vmd was started with SIGHUP
// ignored (nohup), which Notify would undo. Go's own handling of any of them
// would end vmd at once, leaving the command running and its request
// unanswered, even as PID 1.
func stopSignals() []os.Signal {
	sigs := []os.Signal{syscall.SIGTERM, syscall.SIGINT}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

// signalListener holds the stop signals from the moment vmd starts.
//
// This stands in for run.SignalHandler, which only starts listening once the
// group runs, and stops at the first signal. Listening from the start closes
// the window in which a SIGTERM would kill vmd with the default action
// (outside PID 1) and leave its command running; listening on lets a second
// signal cut the drain short.
type signalListener chan os.Signal

func listenForSignals() signalListener {
	c := make(signalListener, 2)
	signal.Notify(c, stopSignals()...)
	return c
}

// actor returns on the first signal with a run.SignalError (errors.Is
// run.ErrSignal), and stops the command in flight at once on a second one,
// until the commands service is done.
func (c signalListener) actor(cmds *commands.Service) (func() error, func(error)) {
	quit := make(chan struct{})
	return func() error {
			select {
			case sig := <-c:
				go func() {
					select {
					case <-c:
						cmds.Hurry()
					case <-cmds.Done():
					}
				}()
				return run.SignalError{Signal: sig}
			case <-quit:
				return nil
			}
		}, func(error) {
			close(quit)
		}
}
