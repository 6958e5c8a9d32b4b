//go:build linux

// Command vmdload proves vmd under load and faults. It starts the vmd
// binary as a real process on loopback with the fake CLI
// (internal/fakeclaude), runs commands of every kind back to back, storms
// the command slot, asks for /health under load, breaks vmd's surroundings
// (the CLI, the images directory, the disk) while it runs, and checks every
// answer, log line and /proc figure against the README's contract. It
// prints a report and exits 1 if any expectation failed, 2 if the run could
// not be carried out. It stops by itself.
//
//	go run ./cmd/vmdload                 # 10,000 commands, about 5 minutes
//	go run ./cmd/vmdload -n 500 -json    # CI's short form, as JSON
//
// Run as root, the faults also fill a 64 KiB tmpfs and remount directories
// read-only.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	cfg := DefaultConfig()
	flag.StringVar(&cfg.VMD, "vmd", "", "vmd `binary`; built from ./cmd/vmd when empty")
	flag.StringVar(&cfg.Fake, "fake", "", "fake CLI `binary`; built from ./internal/fakeclaude when empty")
	flag.IntVar(&cfg.Commands, "n", cfg.Commands, "commands in the mixed phase")
	flag.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "COMMAND_TIMEOUT_MS of the vmd the mixed and /health phases run on")
	flag.IntVar(&cfg.StormClients, "storm-clients", cfg.StormClients, "concurrent POSTs in each storm round")
	flag.IntVar(&cfg.StormRounds, "storm-rounds", cfg.StormRounds, "storm rounds with the slot idle, and as many with it busy")
	flag.IntVar(&cfg.HealthCommands, "health-commands", cfg.HealthCommands, "commands run while /health is asked for")
	flag.IntVar(&cfg.HealthClients, "health-clients", cfg.HealthClients, "clients asking for /health without pause")
	flag.IntVar(&cfg.OverflowFiles, "overflow-files", cfg.OverflowFiles, "files created in the images directory during one command")
	flag.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "orders the mix of commands")
	phases := flag.String("phases", "", "comma-separated subset of mixed,health,storms,faults (default all)")
	asJSON := flag.Bool("json", false, "print the report as JSON instead of tables")
	vmdLog := flag.String("vmd-log", "", "write every line vmd logs to this `file`")
	flag.Parse()
	if *phases != "" {
		cfg.Phases = strings.Split(*phases, ",")
	}
	cfg.Progress = os.Stderr
	if *vmdLog != "" {
		f, err := os.Create(*vmdLog)
		if err != nil {
			fmt.Fprintln(os.Stderr, "vmdload:", err)
			os.Exit(2)
		}
		defer f.Close()
		cfg.VMDLog = f
	}

	// Ctrl-C ends the run early, still unmounting and stopping vmd.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := Run(ctx, cfg)
	if rep != nil {
		if *asJSON {
			rep.WriteJSON(os.Stdout)
		} else {
			rep.WriteText(os.Stdout)
		}
	}
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "vmdload:", err)
		os.Exit(2)
	case rep.Failed():
		os.Exit(1)
	}
}
