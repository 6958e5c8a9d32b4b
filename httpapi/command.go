package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/store"
)

// CommandRequest is a /command body.
type CommandRequest struct {
	// Text is the prompt.
	Text string
	// SessionID continues that session; empty starts a new one.
	SessionID string
	// Timeout is the caller's bound (the commands service caps it); zero
	// is the default.
	Timeout time.Duration
	// CancelOnDisconnect cancels the command when its client goes away;
	// by default it runs to its end, its record keeping the answer.
	CancelOnDisconnect bool
	// Queue waits for the running command to end rather than answer 409
	// ("whenBusy": "queue").
	Queue bool
}

// sessionIDPattern is the CLI's session id: a UUID.
var sessionIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

const (
	msgText      = "Request body must include a non-empty 'text' field"
	msgSessionID = "'sessionId' must be the session id (a UUID) of an earlier answer"
	msgTimeout   = "'timeoutMs' must be a positive whole number of milliseconds"
	msgCancel    = "'cancelOnDisconnect' must be true or false"
	msgWhenBusy  = "'whenBusy' must be \"reject\" or \"queue\""
)

// maxTimeout is the largest timeout a request can say: far past any cap.
const maxTimeout = time.Duration(math.MaxInt64)

// ParseCommand reads a /command body: a JSON object whose "text" member is
// a string that is not blank, with an optional "sessionId" (a UUID), an
// optional "timeoutMs" (a positive whole number, however large: the
// commands service caps it), an optional "cancelOnDisconnect" (a boolean)
// and an optional "whenBusy" ("reject", the default, or "queue"). Other
// members are ignored. A bad body gets the reason.
func ParseCommand(body []byte) (CommandRequest, error) {
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
	if raw, ok := members["cancelOnDisconnect"]; ok && string(raw) != "null" {
		if json.Unmarshal(raw, &req.CancelOnDisconnect) != nil {
			return req, errors.New(msgCancel)
		}
	}
	if raw, ok := members["whenBusy"]; ok && string(raw) != "null" {
		var when string
		if json.Unmarshal(raw, &when) != nil || when != "reject" && when != "queue" {
			return req, errors.New(msgWhenBusy)
		}
		req.Queue = when == "queue"
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
// stream or not, refusals (400, 409, 422, 503, 507) are plain JSON answers
// written here, before anything else. With an Idempotency-Key, a retry
// gets the same command: it waits for it (or follows its events) while it
// runs, and once it has ended gets its stored answer again.
func (a *API) command(ctx *fasthttp.RequestCtx) {
	req, sub, ok := a.takeSubmit(ctx)
	if !ok {
		return
	}
	stream := wantsStream(ctx)
	after, err := ParseLastEventID(ctx.Request.Header.Peek(headerLastEventID))
	if err != nil && stream {
		a.badRequest(ctx, err)
		return
	}
	if sub.Ended != nil {
		a.replay(ctx, *sub.Ended, stream, after)
		return
	}
	if stream {
		a.stream(ctx, streamOf(sub.Command, after, req.CancelOnDisconnect && !sub.Attached), a.reqLog(ctx))
		return
	}
	if req.CancelOnDisconnect && !sub.Attached {
		a.watched(ctx, sub.Command, a.reqLog(ctx))
		return
	}
	status, body := sub.Command.Answer()
	writeBody(ctx, status, body)
}

// takeSubmit reads a submit (POST /command or /commands) and hands it to
// the commands service; ok is false once a refusal has been answered.
func (a *API) takeSubmit(ctx *fasthttp.RequestCtx) (CommandRequest, commands.Submission, bool) {
	log := a.reqLog(ctx)
	req, err := ParseCommand(ctx.PostBody())
	var idem submission
	if err == nil {
		idem, err = readSubmission(ctx)
	}
	if err != nil {
		a.badRequest(ctx, err)
		return req, commands.Submission{}, false
	}
	log.Info("command received", "prompt_length", len(req.Text), "session_id", req.SessionID,
		"timeout", req.Timeout, "stream", wantsStream(ctx), "idempotency_key", idem.key, "queue", req.Queue)
	sub, err := a.cmds.Submit(storeCtx, commands.Request{Prompt: req.Text, SessionID: req.SessionID, Timeout: req.Timeout,
		Queue: req.Queue, Key: idem.key, BodyHash: idem.hash, Log: log})
	if err != nil {
		a.refuse(ctx, err)
		return req, sub, false
	}
	if sub.Ended != nil || sub.Attached {
		a.cmds.Replayed()
		ctx.Response.Header.Set(HeaderReplayed, "true")
	}
	return req, sub, true
}

// badRequest answers 400 with the reason.
func (a *API) badRequest(ctx *fasthttp.RequestCtx, err error) {
	a.cmds.Refused(commands.RefusedBadRequest)
	writeJSON(ctx, fasthttp.StatusBadRequest, errorBody{Error: "bad_request", Message: err.Error()})
}

// replay answers a submit whose key's command has ended: its stored
// answer, or its stored events and then that answer as the result event.
func (a *API) replay(ctx *fasthttp.RequestCtx, rec store.Record, stream bool, after int64) {
	if rec.Status == 0 { // left running by a vmd whose end could not be stored, not yet recovered
		writeJSON(ctx, fasthttp.StatusServiceUnavailable, errorBody{Error: "store_unavailable",
			Message: "The command holding this Idempotency-Key has no stored end yet; try again later"})
		return
	}
	if !stream {
		writeBody(ctx, rec.Status, rec.Body)
		return
	}
	a.stream(ctx, a.endedOf(rec, after), a.reqLog(ctx))
}

// writeBody answers with a body made already (a stored answer).
func writeBody(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

var (
	errShuttingDown = errorBody{Error: "shutting_down", Message: "vmd is shutting down"}
	errBusy         = errorBody{Error: "busy", Message: "A command is already in progress"}
)

// Retry-After of the refusals that pass: the queue drains as commands end,
// the store's health is probed every few seconds.
const (
	retryQueueFull = 10 * time.Second
	retryStore     = 5 * time.Second
)

// refuse answers a command that was not taken (the commands service
// counted it).
func (a *API) refuse(ctx *fasthttp.RequestCtx, err error) {
	var storage *commands.StorageError
	var spend *commands.SpendError
	switch {
	case errors.Is(err, commands.ErrBusy):
		writeJSON(ctx, fasthttp.StatusConflict, errBusy)
	case errors.Is(err, commands.ErrKeyReused):
		writeJSON(ctx, fasthttp.StatusUnprocessableEntity, errorBody{Error: "idempotency_key_reused",
			Message: "This Idempotency-Key was used with another request body; use a new key for a new request"})
	case errors.Is(err, commands.ErrDraining):
		writeJSON(ctx, fasthttp.StatusServiceUnavailable, errShuttingDown)
	case errors.Is(err, commands.ErrQueueFull):
		retryAfter(ctx, retryQueueFull)
		writeJSON(ctx, fasthttp.StatusTooManyRequests, errorBody{Error: "queue_full",
			Message: "Too many commands are waiting already; try again later"})
	case errors.Is(err, commands.ErrStoreUnavailable):
		retryAfter(ctx, retryStore)
		writeJSON(ctx, fasthttp.StatusServiceUnavailable, errorBody{Error: "store_unavailable",
			Message: "The command store cannot look up or record this Idempotency-Key, so the command was not run (it would risk running twice); try again later"})
	case errors.As(err, &spend):
		retryAfter(ctx, spend.RetryAfter)
		writeJSON(ctx, fasthttp.StatusTooManyRequests, errorBody{Error: "spend_limit_reached", Message: spend.Error()})
	case errors.As(err, &storage):
		writeJSON(ctx, fasthttp.StatusInsufficientStorage, errorBody{Error: "insufficient_storage", Message: storage.Err.Error()})
	default:
		writeJSON(ctx, fasthttp.StatusInternalServerError, errorBody{Error: "internal_error", Message: err.Error()})
	}
}

// retryAfter says when to try again, in whole seconds, at least one.
func retryAfter(ctx *fasthttp.RequestCtx, d time.Duration) {
	ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, strconv.Itoa(max(int(math.Ceil(d.Seconds())), 1)))
}
