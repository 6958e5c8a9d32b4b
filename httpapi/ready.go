package httpapi

import (
	"errors"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/vmd-dev/vmd/agent"
)

// check is one readiness check's result.
type check struct {
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
	// Version is the CLI's, for the claude check.
	Version string `json:"version,omitempty"`
	// Path is the MCP servers file, for the mcp_config check.
	Path string `json:"path,omitempty"`
}

// readyBody answers a ready vmd; notReadyBody one that is not.
type readyBody struct {
	Ready  bool             `json:"ready"`
	Checks map[string]check `json:"checks"`
}

type notReadyBody struct {
	Error   string           `json:"error"`
	Message string           `json:"message"`
	Failing []string         `json:"failing"`
	Checks  map[string]check `json:"checks"`
}

// ready checks what a command needs, where /health only says vmd answers:
// the CLI starts (its version, found once), the images directory takes
// files, the MCP servers file parses, the command store takes writes, the
// disks have room, vmd is not shutting down.
func (a *API) ready(ctx *fasthttp.RequestCtx) {
	checks := map[string]check{}
	var failing []string
	add := func(name string, c check) {
		checks[name] = c
		if !c.OK {
			failing = append(failing, name)
		}
	}
	add("claude", a.checkCLI(ctx))
	add("images_dir", a.checkImages())
	add("mcp_config", a.checkMCP())
	add("store", a.checkStore())
	add("disk", a.checkDisk())
	if a.isDraining() {
		add("draining", check{Message: "vmd is shutting down"})
	} else {
		add("draining", check{OK: true})
	}
	if len(failing) == 0 {
		writeJSON(ctx, fasthttp.StatusOK, readyBody{Ready: true, Checks: checks})
		return
	}
	a.reqLog(ctx).Info("not ready", "failing", strings.Join(failing, ","))
	writeJSON(ctx, fasthttp.StatusServiceUnavailable, notReadyBody{Error: "not_ready",
		Message: "vmd is not ready: " + strings.Join(failing, ", "), Failing: failing, Checks: checks})
}

func (a *API) checkCLI(ctx *fasthttp.RequestCtx) check {
	if a.ag == nil {
		return check{Message: "no agent"}
	}
	v, err := a.ag.Version(ctx)
	switch {
	case errors.Is(err, agent.ErrDraining):
		return check{Message: "not checked: vmd is shutting down"}
	case err != nil:
		return check{Message: err.Error()}
	}
	return check{OK: true, Version: v}
}

func (a *API) checkImages() check {
	if a.img == nil {
		return check{Message: "no images directory"}
	}
	if err := a.img.CheckWritable(); err != nil {
		return check{Message: err.Error()}
	}
	return check{OK: true}
}

func (a *API) checkMCP() check {
	if err := agent.CheckMCPConfig(a.opts.MCPConfig); err != nil {
		return check{Message: err.Error(), Path: a.opts.MCPConfig}
	}
	if a.opts.MCPConfig == "" {
		return check{OK: true, Message: "none"}
	}
	return check{OK: true, Path: a.opts.MCPConfig}
}

// checkStore fails while the store is not healthy (a write or its probe
// failed, its file was deleted or replaced): commands still answer, but
// their records will not survive.
func (a *API) checkStore() check {
	if a.st == nil {
		return check{OK: true, Message: "none"}
	}
	if err := a.st.Health(); err != nil {
		return check{Message: err.Error(), Path: a.st.Path()}
	}
	return check{OK: true, Path: a.st.Path()}
}
