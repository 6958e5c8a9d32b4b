package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"

	"github.com/vmd-dev/vmd/commands"
)

// CommandRequest is a /command body.
type CommandRequest struct {
	// Text is the prompt.
	Text string
	// SessionID continues that session; empty starts a new one.
	SessionID string
	// Timeout is the caller's bound, already capped; zero is the default.
	Timeout time.Duration
}

// sessionIDPattern is the CLI's session id: a UUID.
var sessionIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

const (
	msgText      = "Request body must include a non-empty 'text' field"
	msgSessionID = "'sessionId' must be the session id (a UUID) of an earlier answer"
	msgTimeout   = "'timeoutMs' must be a positive whole number of milliseconds"
)

// ParseCommand reads a /command body: a JSON object whose "text" member is
// a string that is not blank, with an optional "sessionId" (a UUID) and an
// optional "timeoutMs" (a positive whole number; above maxTimeout it is
// maxTimeout, however large). Other members are ignored. A bad body gets the reason.
func ParseCommand(body []byte, maxTimeout time.Duration) (CommandRequest, error) {
	var req CommandRequest
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil || members == nil {
		return req, errors.New(msgText)
	}
	raw, ok := members["text"]
	if !ok || len(raw) == 0 || raw[0] != '"' {
		return req, errors.New(msgText)
	}
	if err := json.Unmarshal(raw, &req.Text); err != nil || strings.TrimSpace(req.Text) == "" {
		return req, errors.New(msgText)
	}
	if raw, ok := members["sessionId"]; ok && string(raw) != "null" {
		if json.Unmarshal(raw, &req.SessionID) != nil || !sessionIDPattern.MatchString(req.SessionID) {
			return req, errors.New(msgSessionID)
		}
	}
	if raw, ok := members["timeoutMs"]; ok && string(raw) != "null" {
		if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') { // "5" is not a number
			return req, errors.New(msgTimeout)
		}
		var ms json.Number
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if dec.Decode(&ms) != nil {
			return req, errors.New(msgTimeout)
		}
		n, err := ms.Int64()
		switch {
		case err != nil && wholeNumber(ms.String()):
			n = math.MaxInt64 // past int64, yet a whole number: capped like any large one
		case err != nil || n < 1:
			return req, errors.New(msgTimeout)
		}
		req.Timeout = maxTimeout
		if n < maxTimeout.Milliseconds() {
			req.Timeout = time.Duration(n) * time.Millisecond
		}
	}
	return req, nil
}

// wholeNumber reports whether a JSON number is written as a positive
// whole number: digits only, not starting with 0 (JSON allows no leading
// zero but in "0" itself).
func wholeNumber(n string) bool {
	if n == "" || n[0] == '0' {
		return false
	}
	for _, c := range []byte(n) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// command runs POST /command. Whether the client asked for an event
// stream or not, refusals (400, 409, 503) are plain JSON answers written
// here, before anything else.
func (a *API) command(ctx *fasthttp.RequestCtx) {
	log := a.reqLog(ctx)
	if a.isDraining() {
		a.refuse(ctx, commands.ErrDraining)
		return
	}
	req, err := ParseCommand(ctx.PostBody(), a.opts.CommandTimeout)
	if err != nil {
		a.metrics.commandRefused(outcomeBadRequest)
		writeJSON(ctx, fasthttp.StatusBadRequest, errorBody{Error: "bad_request", Message: err.Error()})
		return
	}
	stream := wantsStream(ctx)
	log.Info("command received", "prompt_length", len(req.Text), "session_id", req.SessionID,
		"timeout", req.Timeout, "stream", stream)
	cmd, err := a.cmds.Start(commands.Request{Prompt: req.Text, SessionID: req.SessionID, Timeout: req.Timeout, Log: log})
	if err != nil {
		a.refuse(ctx, err)
		return
	}
	if stream {
		a.stream(ctx, cmd, log)
		return
	}
	status, body := a.finish(cmd.Wait(), log)
	writeJSON(ctx, status, body)
}

var (
	errShuttingDown = errorBody{Error: "shutting_down", Message: "vmd is shutting down"}
	errBusy         = errorBody{Error: "busy", Message: "A command is already in progress"}
)

// refuse answers a command that was not taken.
func (a *API) refuse(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, commands.ErrBusy):
		a.metrics.commandRefused(outcomeBusy)
		writeJSON(ctx, fasthttp.StatusConflict, errBusy)
	case errors.Is(err, commands.ErrDraining):
		a.metrics.commandRefused(outcomeShuttingDown)
		writeJSON(ctx, fasthttp.StatusServiceUnavailable, errShuttingDown)
	default:
		a.metrics.commandRefused(outcomeInternal)
		writeJSON(ctx, fasthttp.StatusInternalServerError, errorBody{Error: "internal_error", Message: err.Error()})
	}
}

// finish maps a finished command to its answer and counts it.
func (a *API) finish(rec commands.Record, log hclog.Logger) (int, commandBody) {
	res := rec.Result
	row := answers[res.Outcome]
	a.metrics.commandRan(row.metric, res.Duration)
	if r := res.Report; r != nil {
		a.metrics.observeReport(r)
	}
	if row.status >= fasthttp.StatusInternalServerError {
		log.Debug("command answered", "status", row.status, "error", row.code)
	}
	return row.status, row.body(rec)
}
