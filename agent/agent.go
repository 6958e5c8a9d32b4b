// Package agent knows the Claude Code CLI: its command line and
// environment, its stream-json output, its streaming input (one process
// serving many turns) and how a turn ends. It starts CLI processes through
// the supervisor (Spawn), runs one turn at a time on each (Process.Turn),
// stops a turn the way the CLI allows (an interrupt, then a kill), watches
// a turn for stalls, tells the images store when to look for a turn's
// images, and sums each turn up as a Result with its outcome. It also asks
// the CLI its version. Everything vmd knows about the CLI's words and
// flags lives here; which process serves which message is the caller's.
package agent

import (
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/images"
	"github.com/vmd-dev/vmd/supervisor"
)

const (
	// stderrTail is how much of the end of stderr is kept.
	stderrTail = 64 << 10
	// defaultInterruptGrace is how long an interrupted turn may take to end
	// before its process is killed; defaultCloseGrace how long a process
	// may take to exit once its input is closed.
	defaultInterruptGrace = 3 * time.Second
	defaultCloseGrace     = 5 * time.Second
)

// ErrStopped is returned by Spawn, and by Version with no version known,
// once vmd is stopping.
var ErrStopped = supervisor.ErrStopped

// Options are how the CLI is run.
type Options struct {
	// Bin is the CLI, a path or a name looked up on PATH at each spawn.
	Bin string
	// Args follow Bin on the command line (see Args). A warm process gets
	// streamInput added.
	Args []string
	// Env is the CLI's environment (see Env).
	Env []string
	// Dir is the CLI's working directory; empty is vmd's own.
	Dir string
	// MaxOutput is how much of a turn's answer, and of other output, is
	// kept.
	MaxOutput int
	// StallTimeout is how long a turn's CLI may show no sign of life, no
	// tool call open, before it is killed as stalled (see stall.go); zero
	// or less never.
	StallTimeout time.Duration
	// MaxCostUSD, if above zero, is passed as --max-budget-usd: the most a
	// process may spend, across all its turns (the CLI counts it so; see
	// Process.Spent). A turn that reaches it ends with a result of subtype
	// BudgetExhausted, and the process refuses every turn after.
	MaxCostUSD float64
	// InterruptGrace is how long a turn stopped with the CLI's interrupt
	// may take to end before its process is killed; CloseGrace how long a
	// process may take to exit once its input is closed. Zero is 3 s and
	// 5 s.
	InterruptGrace, CloseGrace time.Duration
	// VersionTimeout bounds one version probe (5 s); VersionRetry is how
	// long a failed probe's answer stands (5 s). Zero is the default.
	VersionTimeout, VersionRetry time.Duration
}

// Agent starts CLI processes through a supervisor.
type Agent struct {
	sup  *supervisor.Supervisor
	img  *images.Store
	log  hclog.Logger
	opts Options
	ver  versionProbe // see version.go
}

// New makes an agent. img may be nil: no images are recorded.
func New(sup *supervisor.Supervisor, img *images.Store, log hclog.Logger, opts Options) *Agent {
	if opts.InterruptGrace <= 0 {
		opts.InterruptGrace = defaultInterruptGrace
	}
	if opts.CloseGrace <= 0 {
		opts.CloseGrace = defaultCloseGrace
	}
	return &Agent{sup: sup, img: img, log: log, opts: opts}
}

// SpawnRequest is a CLI process to start.
type SpawnRequest struct {
	// Resume, if set, continues that session (--resume).
	Resume string
	// Warm starts a process that serves turn after turn, each message a
	// line of its streaming input, until Close. Otherwise the process
	// serves one turn, its prompt the whole of its input, and exits.
	Warm bool
	// Ahead marks a process started before any message for it (a spare):
	// its first turn counts as warm.
	Ahead bool
	// Log is the process's logger; nil is the agent's.
	Log hclog.Logger
}

// Process is one CLI process. It runs one turn at a time; a warm one goes
// on to the next when a turn ends, a cold one exits after its only turn.
type Process struct {
	a      *Agent
	proc   *supervisor.Process // nil when it could not start
	warm   bool
	ahead  bool
	resume string
	log    hclog.Logger
	start  time.Time
	lines  *lines // what stdout says: see transcript.go
	stderr tail
	done   chan struct{} // closed once the process is done and its turn ended
	exit   supervisor.Exit
	err    error // why it could not start

	mu      sync.Mutex // guards the fields below
	session string     // the session, once the CLI named it
	turn    *Turn      // the turn running, if any
	turns   int        // turns begun
	closing bool       // Close or Kill was called, or it exited: no more turns
	total   *float64   // the session's cost so far, as its last result said
	spent   float64    // what its turns cost: what --max-budget-usd counts

	inMu    sync.Mutex // guards in, inClose, inWake: the input not written yet
	in      [][]byte
	inClose bool
	inWake  chan struct{}
}

// Spawn starts a CLI process. A process that cannot start is returned all
// the same, done at once: its one turn ends StartFailed, saying why. Spawn
// fails only with ErrStopped, once vmd is stopping.
func (a *Agent) Spawn(req SpawnRequest) (*Process, error) {
	log := req.Log
	if log == nil {
		log = a.log
	}
	p := &Process{a: a, warm: req.Warm, ahead: req.Ahead, resume: req.Resume, session: req.Resume, log: log,
		start: time.Now(), stderr: tail{max: stderrTail}, done: make(chan struct{}), inWake: make(chan struct{}, 1)}
	p.lines = newLines(a.opts.MaxOutput, log, p.jsonLine, p.rawOut, p.read)
	bin, err := resolveBin(a.opts.Bin)
	if err == nil {
		p.proc, err = a.sup.Start(supervisor.Spec{Path: bin, Args: a.argv(req), Env: a.opts.Env, Dir: a.opts.Dir,
			TempDir: true, Stdout: p.lines.fill, Stderr: p.stderr.fill, Log: log})
	}
	if errors.Is(err, supervisor.ErrStopped) {
		return nil, ErrStopped
	}
	if err != nil {
		p.err = err
		log.Error("spawn failed", "error", err)
		close(p.done)
		return p, nil
	}
	p.log = log.With("pid", p.proc.Pid())
	go p.write()
	go p.watch()
	return p, nil
}

// input queues b for the process's stdin, and its end after it when
// closeAfter: one writer writes it all in order, so that an interrupt
// never overtakes the message it interrupts, and nobody waits on a CLI
// slow to read.
func (p *Process) input(b []byte, closeAfter bool) {
	p.inMu.Lock()
	if b != nil {
		p.in = append(p.in, b)
	}
	p.inClose = p.inClose || closeAfter
	p.inMu.Unlock()
	select {
	case p.inWake <- struct{}{}:
	default:
	}
}

// write writes the queued input until it is closed or the process is done.
func (p *Process) write() {
	stdin := p.proc.Stdin()
	defer stdin.Close()
	for {
		select {
		case <-p.inWake:
		case <-p.proc.Done():
			return
		}
		p.inMu.Lock()
		batch, closing := p.in, p.inClose
		p.in = nil
		p.inMu.Unlock()
		for _, b := range batch {
			if _, err := stdin.Write(b); err != nil {
				// It exited, or closed its input: its exit ends the turn.
				p.log.Debug("claude's input is closed", "error", err)
				return
			}
		}
		if closing {
			return
		}
	}
}

// jsonLine hands a line of stdout that looks like JSON to the turn
// running. One that comes between turns belongs to none and is dropped.
func (p *Process) jsonLine(b []byte, cut bool) {
	if t := p.current(); t != nil {
		t.line(b, cut)
		return
	}
	if b != nil {
		p.log.Debug("claude output between turns; dropped", "line", string(b[:min(len(b), 200)]))
	}
}

// rawOut hands stdout that is not stream-json to the turn running.
func (p *Process) rawOut(b []byte) {
	if t := p.current(); t != nil {
		t.raw(b)
	}
}

// read tells the turn running that the CLI printed something: a sign of
// life for its stall watch.
func (p *Process) read() {
	if t := p.current(); t != nil {
		t.watch.event(time.Now())
	}
}

func (p *Process) current() *Turn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.turn
}

// watch ends the process's turn, if one runs, once the process is done.
func (p *Process) watch() {
	p.exit = p.proc.Wait()
	p.mu.Lock()
	t := p.turn
	p.closing = true
	p.mu.Unlock()
	if t != nil {
		t.exited(p.exit)
	}
	close(p.done)
}

// argv is the command line of a process: Args, streaming input for a warm
// one, and --resume to continue a session.
func (a *Agent) argv(req SpawnRequest) []string {
	args := slices.Clone(a.opts.Args)
	if req.Warm {
		args = append(args, streamInput...)
	}
	if a.opts.MaxCostUSD > 0 {
		args = append(args, "--max-budget-usd", strconv.FormatFloat(a.opts.MaxCostUSD, 'f', -1, 64))
	}
	if req.Resume != "" {
		args = append(args, "--resume", req.Resume)
	}
	return args
}

// Pid is the process's id; 0 if it could not start.
func (p *Process) Pid() int {
	if p.proc == nil {
		return 0
	}
	return p.proc.Pid()
}

// Warm reports whether the process serves turn after turn.
func (p *Process) Warm() bool { return p.warm }

// Session is the session the process holds: the one it resumed, or the
// one its CLI named; "" before it has named one.
func (p *Process) Session() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.session
}

// Idle reports whether the process can take a turn now: alive, not
// closing, and no turn running.
func (p *Process) Idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.closing && p.turn == nil && p.err == nil && (p.warm || p.turns == 0)
}

// Busy reports whether a turn runs on the process.
func (p *Process) Busy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.turn != nil
}

// Started is when the process was spawned.
func (p *Process) Started() time.Time { return p.start }

// RSS is the resident memory of the process's whole tree (the CLI, its MCP
// servers, their browser), in bytes.
func (p *Process) RSS() uint64 {
	if p.proc == nil {
		return 0
	}
	return p.proc.RSS()
}

// spend counts a turn's cost against the process, reading it from the
// session's total when the CLI did not say it (tr.report.CostUSD is then
// that total).
func (p *Process) spend(tr *transcript) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := tr.report
	if r.CostUSD != nil && tr.total != nil && r.CostUSD == tr.total && p.total != nil {
		turn := max(*tr.total-*p.total, 0)
		r.CostUSD = &turn
	}
	if tr.total != nil {
		p.total = tr.total
	}
	if r.CostUSD != nil {
		p.spent += *r.CostUSD
	}
}

// Spent is what the process's turns have cost so far, as --max-budget-usd
// counts it.
func (p *Process) Spent() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.spent
}

// Close ends the process the way the CLI expects: its input closed, it
// exits once its turn (if any) is over; one that has not exited within
// the close grace is killed with its group. It does not wait: see Done.
func (p *Process) Close() {
	p.mu.Lock()
	if p.closing || p.proc == nil {
		p.mu.Unlock()
		return
	}
	p.closing = true
	p.mu.Unlock()
	p.input(nil, true)
	go func() {
		t := time.NewTimer(p.a.opts.CloseGrace)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
			p.log.Warn("claude did not exit after its input was closed; killing it", "grace", p.a.opts.CloseGrace)
			p.proc.Kill()
		}
	}()
}

// Kill kills the process and its group at once.
func (p *Process) Kill() {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	if p.proc != nil {
		p.proc.Kill()
	}
}

// Done is closed once the process has exited, everything it started is
// gone, and its last turn has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exit is how the process ended, once Done.
func (p *Process) Exit() supervisor.Exit { return p.exit }
