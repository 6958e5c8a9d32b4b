package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"unicode/utf16"
)

// event is what a line of stdin asks: a turn (msg), or a control request.
type event struct {
	msg       *message
	requestID string
	subtype   string
}

// message is a user line.
type message struct {
	text string          // what the user typed: the turn's script
	raw  json.RawMessage // the message as sent, for --replay-user-messages
	uuid string          // the line's own uuid, if it has one
}

// readInput reads stdin's lines in a goroutine of its own and hands over
// what they ask, in order; it closes the channel at stdin's end. As the
// CLI does, it skips blank lines and lines of a type it does not know, and
// ends the process at once, mid-turn too, on a line it cannot read.
func readInput(r io.Reader) <-chan event {
	ch := make(chan event, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			ev, err := parseLine(sc.Text())
			if err != nil {
				fail(err.Error())
			}
			if ev != nil {
				ch <- *ev
			}
		}
	}()
	return ch
}

// typeRE finds the type the CLI names in its error for a line that is not
// JSON.
var typeRE = regexp.MustCompile(`"type"\s*:\s*"([^"]*)"`)

// parseLine reads one line: an event, nil for a line to skip, or the
// error the CLI would stop on, in its words.
func parseLine(line string) (*event, error) {
	if strings.TrimSpace(line) == "" {
		return nil, nil
	}
	if !json.Valid([]byte(line)) {
		typ := "unknown"
		if m := typeRE.FindStringSubmatch(line); m != nil {
			typ = m[1]
		}
		// JavaScript counts UTF-16 code units.
		n := len(utf16.Encode([]rune(line)))
		return nil, fmt.Errorf("Error parsing streaming input line (type=%s, %d chars): SyntaxError", typ, n)
	}
	var v struct {
		Type      string `json:"type"`
		UUID      string `json:"uuid"`
		RequestID string `json:"request_id"`
		Request   struct {
			Subtype string `json:"subtype"`
		} `json:"request"`
		Message json.RawMessage `json:"message"`
	}
	// A value of another shape (a string, a number) is no event: skipped.
	json.Unmarshal([]byte(line), &v)
	switch v.Type {
	case "user":
		var m struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		}
		json.Unmarshal(v.Message, &m)
		if m.Role != "user" {
			role := m.Role
			if role == "" {
				role = "undefined"
			}
			return nil, fmt.Errorf("Error: Expected message role 'user', got '%s'", role)
		}
		return &event{msg: &message{text: text(m.Content), raw: v.Message, uuid: v.UUID}}, nil
	case "control_request":
		return &event{requestID: v.RequestID, subtype: v.Request.Subtype}, nil
	}
	return nil, nil
}

// text returns what a message's content says: the string, or its text
// blocks one after another.
func text(content json.RawMessage) string {
	var s string
	if json.Unmarshal(content, &s) == nil {
		return s
	}
	var blocks []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	json.Unmarshal(content, &blocks)
	var parts []string
	for _, b := range blocks {
		if b.Type == "text" {
			parts = append(parts, b.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// fail ends the process as the CLI ends on bad input or arguments: the
// reason on stderr, status 1. It holds stdout, so that no line is cut.
func fail(msg string) {
	outMu.Lock()
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(1)
}

// step is one thing a turn does: a line of its script, or the echo of a
// prompt that is no script.
type step struct {
	verb, arg string
	echo      bool
}

// steps returns what prompt makes a turn do.
func steps(prompt string) []step {
	if !isScript(prompt) {
		return []step{{arg: prompt, echo: true}}
	}
	var s []step
	sc := bufio.NewScanner(strings.NewReader(prompt))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		verb, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		s = append(s, step{verb: verb, arg: arg})
	}
	return s
}
