package httpapi

import (
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/vmd-dev/vmd/internal/ready"
)

// readyBody answers a ready vmd; notReadyBody one that is not.
type readyBody struct {
	Ready  bool                    `json:"ready"`
	Checks map[string]ready.Status `json:"checks"`
}

type notReadyBody struct {
	Error   string                  `json:"error"`
	Message string                  `json:"message"`
	Failing []string                `json:"failing"`
	Checks  map[string]ready.Status `json:"checks"`
}

// ready answers whether vmd is healthy and able to take work, where
// /health only says it answers: every registered check passes (the CLI
// starts, the images directory takes files, the MCP servers file parses,
// the store takes writes, the disks have room, vmd is not stopping, the
// spend limit is not reached). A command running does not make vmd
// unready: busy is /status's to say.
func (a *API) ready(ctx *fasthttp.RequestCtx) {
	checks := map[string]ready.Status{}
	var failing []string
	for _, r := range a.d.Prober.Run(storeCtx) {
		checks[r.Name] = r.Status
		if !r.OK {
			failing = append(failing, r.Name)
		}
	}
	if len(failing) == 0 {
		writeJSON(ctx, fasthttp.StatusOK, readyBody{Ready: true, Checks: checks})
		return
	}
	a.reqLog(ctx).Info("not ready", "failing", strings.Join(failing, ","))
	writeJSON(ctx, fasthttp.StatusServiceUnavailable, notReadyBody{Error: "not_ready",
		Message: "vmd is not ready: " + strings.Join(failing, ", "), Failing: failing, Checks: checks})
}
