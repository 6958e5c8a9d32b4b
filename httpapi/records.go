package httpapi

import (
	"errors"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/store"
)

// The /commands routes: a command as a record that outlives its request.
// POST /commands submits and answers at once (202); GET /commands/{id} is
// its record, GET /commands/{id}/events its events (resumable), DELETE
// /commands/{id} cancels it, GET /commands lists records, newest first.

// commandRoute routes /commands/{id} and /commands/{id}/events.
func (a *API) commandRoute(ctx *fasthttp.RequestCtx, path string) {
	id, rest, err := ParseCommandPath(path)
	if err != nil {
		writeJSON(ctx, fasthttp.StatusNotFound, errNoCommand)
		return
	}
	switch {
	case rest == "events":
		if a.allow(ctx, "GET", fasthttp.MethodGet) {
			a.events(ctx, id)
		}
	case a.allow(ctx, "GET, HEAD, DELETE", fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodDelete):
		if ctx.IsDelete() {
			a.cancelCommand(ctx, id)
		} else {
			a.record(ctx, id)
		}
	}
}

var errNoCommand = errorBody{Error: "command_not_found", Message: "No command with this id (it may have been pruned)"}

// submit runs POST /commands: the command's record at once, 202, with its
// location. A retry with the same Idempotency-Key gets the same command's
// record as it is now, marked Idempotent-Replayed.
func (a *API) submit(ctx *fasthttp.RequestCtx) {
	_, sub, ok := a.takeSubmit(ctx)
	if !ok {
		return
	}
	var v commands.View
	if sub.Ended != nil {
		v = commands.ViewOf(*sub.Ended)
	} else {
		v = sub.Command.View()
	}
	ctx.Response.Header.Set(fasthttp.HeaderLocation, "/commands/"+v.ID)
	writeJSON(ctx, fasthttp.StatusAccepted, v)
}

// record answers GET /commands/{id}.
func (a *API) record(ctx *fasthttp.RequestCtx, id string) {
	rec, ok := a.lookup(ctx, id)
	if ok {
		writeJSON(ctx, fasthttp.StatusOK, commands.ViewOf(rec))
	}
}

// lookup finds a record, answering 404 or 500 when it cannot.
func (a *API) lookup(ctx *fasthttp.RequestCtx, id string) (store.Record, bool) {
	rec, err := a.cmds.Get(storeCtx, id)
	switch {
	case errors.Is(err, commands.ErrNotFound):
		writeJSON(ctx, fasthttp.StatusNotFound, errNoCommand)
		return rec, false
	case err != nil:
		a.storeFailed(ctx, err)
		return rec, false
	}
	return rec, true
}

func (a *API) storeFailed(ctx *fasthttp.RequestCtx, err error) {
	a.reqLog(ctx).Error("cannot read the command store", "error", err)
	writeJSON(ctx, fasthttp.StatusInternalServerError, errorBody{Error: "internal_error", Message: "Cannot read the command store"})
}

// cancelCommand answers DELETE /commands/{id}: a running command is
// stopped, a queued one ends without running, and its final record is
// answered once it has ended; an ended one is answered as it is.
func (a *API) cancelCommand(ctx *fasthttp.RequestCtx, id string) {
	if c, ok := a.cmds.Live(id); ok {
		if c.Cancel() {
			a.reqLog(ctx).Info("command cancelled", "command_id", id)
		}
	}
	a.record(ctx, id)
}

// events answers GET /commands/{id}/events: the command's events after
// Last-Event-ID, then, while it runs, the live ones, then its result.
func (a *API) events(ctx *fasthttp.RequestCtx, id string) {
	after, err := ParseLastEventID(ctx.Request.Header.Peek(headerLastEventID))
	if err != nil {
		writeJSON(ctx, fasthttp.StatusBadRequest, errorBody{Error: "bad_request", Message: err.Error()})
		return
	}
	if c, ok := a.cmds.Live(id); ok {
		a.stream(ctx, streamOf(c, after, false), a.reqLog(ctx))
		return
	}
	if rec, ok := a.lookup(ctx, id); ok {
		a.stream(ctx, a.endedOf(rec, after), a.reqLog(ctx))
	}
}

// listBody answers GET /commands.
type listBody struct {
	Commands []commands.View `json:"commands"`
	Next     *string         `json:"next"`
}

// list answers GET /commands?limit=N&before=<id>: up to limit records
// (1..1000, default 50), newest first, older than before.
func (a *API) list(ctx *fasthttp.RequestCtx) {
	args := ctx.QueryArgs()
	limit := 50
	if v := args.Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > store.MaxList {
			writeJSON(ctx, fasthttp.StatusBadRequest, errorBody{Error: "bad_request",
				Message: "'limit' must be a whole number from 1 to " + strconv.Itoa(store.MaxList)})
			return
		}
		limit = n
	}
	before := string(args.Peek("before"))
	if before != "" {
		if _, err := store.ParseID(before); err != nil {
			writeJSON(ctx, fasthttp.StatusBadRequest, errorBody{Error: "bad_request", Message: "'before' must be a command id"})
			return
		}
	}
	recs, next, err := a.cmds.List(storeCtx, limit, before)
	if err != nil {
		a.storeFailed(ctx, err)
		return
	}
	body := listBody{Commands: make([]commands.View, 0, len(recs)), Next: optional(next)}
	for _, r := range recs {
		body.Commands = append(body.Commands, commands.ViewOf(r))
	}
	writeJSON(ctx, fasthttp.StatusOK, body)
}
