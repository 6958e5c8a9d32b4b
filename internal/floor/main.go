// Command floor is the least a command wrapper can do, for benchmarks only:
// fasthttp, a fork/exec of the program named by FLOOR_BIN with the prompt on
// its stdin, and a JSON answer. vmd's benchmarks run it side by side with
// vmd, so that vmd's overhead is measured against it rather than against
// nothing. It has no timeout, no slot, no reaping of orphans, no logging:
// never run it for real.
package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"

	"github.com/valyala/fasthttp"
)

func main() {
	ln, err := net.Listen("tcp", os.Getenv("FLOOR_ADDR"))
	if err != nil {
		panic(err)
	}
	bin := os.Getenv("FLOOR_BIN")
	err = fasthttp.Serve(ln, func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		if string(ctx.Path()) == "/health" {
			ctx.SetBodyString(`{"status":"ok"}`)
			return
		}
		var req struct{ Text string }
		if json.Unmarshal(ctx.PostBody(), &req) != nil {
			ctx.SetStatusCode(fasthttp.StatusBadRequest)
			return
		}
		cmd := exec.Command(bin)
		cmd.Stdin = bytes.NewReader([]byte(req.Text))
		out, err := cmd.Output()
		code := cmd.ProcessState.ExitCode()
		if err != nil {
			ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		}
		body, _ := json.Marshal(map[string]any{"text": string(out), "exitCode": code})
		ctx.SetBody(body)
	})
	if err != nil {
		panic(err)
	}
}
