package fakeapi

import (
	"encoding/json"
	"strings"
)

// What the CLI sent: the prompt, the tool results, read from a request.

// prompt returns the last prompt the user typed in the conversation and
// the tool results sent back since.
func prompt(msgs []Message) (string, []Block) {
	var results []Block
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role != "user" {
			continue
		}
		blocks := msgs[i].Blocks()
		if p := typed(blocks); p != "" {
			return p, results
		}
		for _, b := range blocks {
			if b.Type == "tool_result" {
				results = append(results, b)
			}
		}
	}
	return "", results
}

// prompts returns every prompt the user typed in the conversation, in order.
func prompts(msgs []Message) []string {
	var ps []string
	for _, m := range msgs {
		if m.Role != "user" {
			continue
		}
		if p := typed(m.Blocks()); p != "" {
			ps = append(ps, p)
		}
	}
	return ps
}

// typed returns what the user typed in a user message's blocks: its text
// without the system reminders the CLI adds, or "". After an interrupt the
// CLI sends the interrupted prompt, its marker ("[Request interrupted by
// user]") and the next prompt as one message: what was typed after the
// last marker is the prompt, as a model reads it.
func typed(blocks []Block) string {
	var parts []string
	for _, b := range blocks {
		t := strings.TrimSpace(b.Text)
		if b.Type != "text" || t == "" || strings.HasPrefix(t, "<system-reminder>") {
			continue
		}
		if i := strings.LastIndex(t, interruptMarker); i >= 0 {
			parts = parts[:0]
			_, t, _ = strings.Cut(t[i:], "\n") // what follows the marker's line
			if t = strings.TrimSpace(t); t == "" {
				continue
			}
		}
		parts = append(parts, t)
	}
	return strings.Join(parts, "\n")
}

// interruptMarker starts the text the CLI adds where a turn was
// interrupted.
const interruptMarker = "[Request interrupted by user"

// failed returns the text of the first tool result marked as an error, or
// "".
func failed(results []Block) string {
	for _, r := range results {
		if r.IsError {
			return r.ResultText()
		}
	}
	return ""
}

// ResultText returns the text of a tool_result block: its content if a
// string, else its text blocks joined (images and the rest left out).
func (b Block) ResultText() string {
	var s string
	if json.Unmarshal(b.Content, &s) == nil {
		return s
	}
	var bs []Block
	json.Unmarshal(b.Content, &bs)
	var parts []string
	for _, c := range bs {
		if c.Type == "text" {
			parts = append(parts, c.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// ToolResults returns the tool_result blocks of the conversation, in order.
func (r *MessagesRequest) ToolResults() []Block {
	var results []Block
	for _, m := range r.Messages {
		if m.Role != "user" {
			continue
		}
		for _, b := range m.Blocks() {
			if b.Type == "tool_result" {
				results = append(results, b)
			}
		}
	}
	return results
}
