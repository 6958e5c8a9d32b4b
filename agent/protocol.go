package agent

import (
	"encoding/json"
	"strconv"
	"sync/atomic"
)

// The CLI's streaming input, the mode the Claude Agent SDKs drive it in:
// started with streamInput beside --output-format stream-json, one process
// serves many turns. Each user message is one JSON line on its stdin, and
// each turn ends with a result line on its stdout. A control request line
// interrupts the turn running: the CLI answers with a control_response,
// then ends the turn with an error result, and takes the next message. A
// message written while a turn runs may be folded into that turn, so vmd
// writes one only once the last turn's result is out. stdin's end makes
// the CLI exit; a line it cannot parse kills it.

// streamInput are the arguments that make a CLI take its messages as
// stream-json lines.
var streamInput = []string{"--input-format", "stream-json"}

// userLine is a user message as a line of streaming input.
func userLine(prompt string) []byte {
	b, _ := json.Marshal(struct {
		Type    string `json:"type"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
	}{Type: "user", Message: struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}{Role: "user", Content: prompt}})
	return append(b, '\n')
}

var requestIDs atomic.Uint64

// interruptLine is the control request that stops the running turn.
func interruptLine() []byte {
	id := "vmd-" + strconv.FormatUint(requestIDs.Add(1), 10)
	return []byte(`{"type":"control_request","request_id":"` + id + `","request":{"subtype":"interrupt"}}` + "\n")
}
