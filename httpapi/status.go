package httpapi

import (
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/disk"
)

// statusBody is GET /status.
type statusBody struct {
	// State is "idle" or "busy": whether a turn runs.
	State    string       `json:"state"`
	Busy     bool         `json:"busy"`
	Draining bool         `json:"draining"`
	Command  *commandInfo `json:"command"`
	// Queued counts the commands waiting for the one running.
	Queued int `json:"queued"`
	// Agents are the CLI processes held warm, and the spare.
	Agents []commands.AgentStatus `json:"agents"`
	// Spend is what commands cost within the spend window, with the
	// limit; absent without spend_limit_usd.
	Spend   *spendStatus `json:"spend,omitempty"`
	Version string       `json:"version"`
	// ClaudeVersion is the CLI's once known (asked at start); null before.
	ClaudeVersion *string   `json:"claudeVersion"`
	StartedAt     time.Time `json:"startedAt"`
	UptimeMs      int64     `json:"uptimeMs"`
	// Commands counts the requests to POST /command so far, by outcome
	// (vmd_commands_total).
	Commands map[string]int64 `json:"commands"`
	// Disk is the free space of the filesystems the disk guard watches.
	Disk *disk.Status `json:"disk,omitempty"`
}

type spendStatus struct {
	SpentUSD float64 `json:"spentUsd"`
	LimitUSD float64 `json:"limitUsd"`
	WindowMs int64   `json:"windowMs"`
}

type commandInfo struct {
	Pid          int       `json:"pid"`
	StartedAt    time.Time `json:"startedAt"`
	ElapsedMs    int64     `json:"elapsedMs"`
	PromptLength int       `json:"promptLength"`
	SessionID    *string   `json:"sessionId"`
}

func (a *API) status(ctx *fasthttp.RequestCtx) {
	now := time.Now()
	body := statusBody{State: "idle", Draining: a.cmds.Draining(), Queued: a.cmds.Queued(), Agents: a.cmds.Agents(),
		Version: a.opts.Version, ClaudeVersion: optional(a.d.ClaudeVersion()), StartedAt: a.started.UTC(),
		UptimeMs: now.Sub(a.started).Milliseconds(), Commands: a.cmds.Counts()}
	if a.d.Disk != nil {
		body.Disk = a.d.Disk()
	}
	if spent, limit, window := a.cmds.Spend(); limit > 0 {
		body.Spend = &spendStatus{SpentUSD: spent, LimitUSD: limit, WindowMs: window.Milliseconds()}
	}
	if rec, ok := a.cmds.Current(); ok {
		body.State, body.Busy = "busy", true
		body.Command = &commandInfo{Pid: rec.Pid, StartedAt: rec.Created.UTC(),
			ElapsedMs: now.Sub(rec.Created).Milliseconds(), PromptLength: rec.PromptLength,
			SessionID: optional(rec.SessionID)}
	}
	writeJSON(ctx, fasthttp.StatusOK, body)
}

// cancelBody answers DELETE /command.
type cancelBody struct {
	Cancelled bool    `json:"cancelled"`
	Pid       int     `json:"pid"`
	SessionID *string `json:"sessionId"`
	ElapsedMs int64   `json:"elapsedMs"`
}

// cancel stops the running command and answers once it has ended; the
// command's own request answers 499. Queued commands go on.
func (a *API) cancel(ctx *fasthttp.RequestCtx) {
	rec, ok := a.cmds.Cancel()
	if !ok {
		writeJSON(ctx, fasthttp.StatusNotFound, errorBody{Error: "not_running", Message: "No command is running"})
		return
	}
	a.reqLog(ctx).Info("command cancelled", "pid", rec.Pid, "command_id", rec.ID)
	writeJSON(ctx, fasthttp.StatusOK, cancelBody{Cancelled: true, Pid: rec.Pid,
		SessionID: optional(rec.SessionID), ElapsedMs: time.Since(rec.Created).Milliseconds()})
}
