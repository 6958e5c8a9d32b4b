package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/hashicorp/go-hclog"
)

const (
	initLine   = `{"type":"system","subtype":"init","session_id":"s-1","mcp_servers":[{"name":"playwright","status":"connected"},{"name":"db","status":"failed"}]}`
	textLine   = `{"type":"assistant","message":{"content":[{"type":"text","text":"Looking."},{"type":"tool_use","name":"mcp__playwright__browser_navigate","input":{}}]},"session_id":"s-1"}`
	toolLine   = `{"type":"user","message":{"role":"user","content":[{"type":"tool_result","content":[{"type":"image","source":{"data":"aGk="}}]}]},"session_id":"s-1"}`
	secondLine = `{"type":"assistant","message":{"content":[{"type":"text","text":"Done: 4."}]},"session_id":"s-1"}`
	resultLine = `{"type":"result","subtype":"success","is_error":false,"result":"Done: 4.","session_id":"s-1","total_cost_usd":0.5,"num_turns":2,"usage":{"input_tokens":3}}`
)

// read feeds output to a transcript a byte at a time, so that every line
// crosses reads.
func read(t *testing.T, max int, out string) (*transcript, []Event) {
	t.Helper()
	tr, evs := feed(max, iotest.OneByteReader(strings.NewReader(out)))
	return tr, *evs
}

// feed reads r into a transcript as a turn does, and returns it with the
// events it made.
func feed(max int, r io.Reader) (*transcript, *[]Event) {
	var evs []Event
	tr := newTranscript(max, hclog.NewNullLogger())
	json := func(b []byte, cut bool) {
		if _, ev, _ := tr.parse(b, cut); ev != nil {
			evs = append(evs, *ev)
		}
	}
	newLines(max, hclog.NewNullLogger(), json, tr.keepRaw, func() {}).fill(r)
	return tr, &evs
}

func TestTranscript(t *testing.T) {
	t.Parallel()
	out := strings.Join([]string{initLine, textLine, "not json at all", "{broken", toolLine, secondLine, resultLine}, "\n") + "\n"
	tr, evs := read(t, 1<<20, out)
	text, cut := tr.answer(false)
	if text != "Done: 4." || cut {
		t.Errorf("answer = %q %v; want the result", text, cut)
	}
	r := tr.report
	if r == nil || r.SessionID != "s-1" || r.IsError || *r.CostUSD != 0.5 || r.NumTurns != 2 || string(r.Usage) != `{"input_tokens":3}` {
		t.Errorf("report = %+v", r)
	}
	if fmt.Sprint(tr.warnings) != `[MCP server "db" failed to start; its tools are not available]` {
		t.Errorf("warnings = %q", tr.warnings)
	}
	if string(tr.raw) != "not json at all\n{broken\n" || tr.badLines != 1 {
		t.Errorf("other output = %q (%d bad JSON lines); want both lines kept", tr.raw, tr.badLines)
	}
	want := []Event{{Kind: EventMessage, Text: "Looking.", Tools: []string{"mcp__playwright__browser_navigate"}},
		{Kind: EventMessage, Text: "Done: 4."}}
	if fmt.Sprint(evs) != fmt.Sprint(want) {
		t.Errorf("events = %v; want %v", evs, want)
	}
}

// Stopped before its result, the answer is the assistant's text so far;
// with no stream-json at all, the output as it is.
func TestTranscriptPartial(t *testing.T) {
	t.Parallel()
	tr, _ := read(t, 1<<20, initLine+"\n"+textLine+"\n"+secondLine+"\n")
	if text, _ := tr.answer(false); text != "Looking.\n\nDone: 4." {
		t.Errorf("partial answer = %q", text)
	}
	tr, _ = read(t, 1<<20, "plain answer\nsecond line")
	if text, _ := tr.answer(false); text != "plain answer\nsecond line" {
		t.Errorf("plain answer = %q", text)
	}
	tr, _ = read(t, 5, "plain answer")
	if text, cut := tr.answer(false); text != "plain" || !cut {
		t.Errorf("cut plain answer = %q %v", text, cut)
	}
}

// A JSON line longer than the limit is read with its long strings cut,
// not kept whole in memory, and what follows is read.
func TestTranscriptLongLine(t *testing.T) {
	t.Parallel()
	long := `{"type":"user","message":"` + strings.Repeat("x", 3<<20) + `"}`
	tr, _ := read(t, 10, long+"\n"+resultLine+"\n")
	if text, cut := tr.answer(false); text != "Done: 4." || cut || len(tr.raw) != 0 {
		t.Errorf("answer after a long line = %q %v, other output %d bytes", text, cut, len(tr.raw))
	}
}

// A result line past the limit is read with its answer cut: the turn has
// its verdict and its session, and the answer is marked truncated.
func TestTranscriptLongResult(t *testing.T) {
	t.Parallel()
	long := `{"type":"result","is_error":false,"result":"` + strings.Repeat("x", 3<<20) + `","session_id":"s-1","total_cost_usd":0.5}`
	tr, _ := read(t, 10, textLine+"\n"+long+"\n")
	if text, cut := tr.answer(false); text != strings.Repeat("x", 10) || !cut || tr.report == nil || tr.sessionID != "s-1" {
		t.Errorf("answer of a long result = %q, truncated %v, report %v, session %q; want 10 x, truncated, the report and s-1",
			text, cut, tr.report, tr.sessionID)
	}
}

// Cut, a result of short lines, whose escapes shrink as it is read, is
// still marked truncated: it is not the whole answer.
func TestTranscriptLongResultOfLines(t *testing.T) {
	t.Parallel()
	long := `{"type":"result","is_error":false,"result":"` + strings.Repeat(`ab\n`, 1<<20) + `","session_id":"s-1"}`
	tr, _ := read(t, 1<<16, long+"\n")
	if text, cut := tr.answer(false); !cut || len(text) > 1<<16 || !strings.HasPrefix(text, "ab\nab\n") {
		t.Errorf("answer of a long result of lines = %d bytes, truncated %v; want at most 64 KiB, truncated", len(text), cut)
	}
}

// A result line too long even with its strings cut (a million of them)
// still ends the turn, as an error that says so.
func TestTranscriptResultTooLong(t *testing.T) {
	t.Parallel()
	long := `{"type":"result","is_error":false,"items":[` + strings.Repeat(`"x",`, 1<<20) + `"x"]}`
	tr, _ := read(t, 10, textLine+"\n"+long+"\n")
	if tr.report == nil || !tr.report.IsError || !strings.Contains(tr.report.Text, "too long") {
		t.Errorf("report of a result too long to read = %+v; want an error saying so", tr.report)
	}
}

// Messages told live are cut to what the text keeps.
func TestTranscriptBoundsEvents(t *testing.T) {
	t.Parallel()
	tr, evs := read(t, 12, textLine+"\n"+secondLine+"\n")
	told := ""
	for _, e := range evs {
		told += e.Text
	}
	if text, cut := tr.answer(false); text != "Looking.\n\nDo" || !cut || told != "Looking.Do" {
		t.Errorf("answer %q (cut %v), told %q; want both within 12 bytes", text, cut, told)
	}
}

func TestTranscriptErrorResult(t *testing.T) {
	t.Parallel()
	tr, _ := read(t, 1<<20, `{"type":"result","subtype":"error_during_execution","is_error":true,"errors":["No conversation found with session ID: x"]}`)
	if r := tr.report; r == nil || !r.IsError || r.Text != "No conversation found with session ID: x" {
		t.Errorf("report = %+v; want the error from errors", r)
	}
	tr, _ = read(t, 1<<20, `{"type":"result","subtype":"error_max_turns","is_error":true}`)
	if r := tr.report; r == nil || r.Text != "claude reported an error: error_max_turns" {
		t.Errorf("report = %+v; want the subtype named", r)
	}
}

func FuzzTranscript(f *testing.F) {
	for _, s := range []string{initLine + "\n" + textLine, resultLine, "plain", "{", "{\n}\n", `{"type":"assistant","message":5}`,
		`{"type":"result","result":null,"errors":"x"}`, "\xff\xfe{\"type\":1}"} {
		f.Add([]byte(s), 16)
	}
	f.Fuzz(func(t *testing.T, out []byte, max int) {
		max = max&0xffff + 1
		tr, evsp := feed(max, strings.NewReader(string(out)))
		evs := *evsp
		text, cut := tr.answer(false)
		if len(text) > max || len(tr.raw) > max || len(tr.text) > max {
			t.Errorf("kept %d/%d/%d bytes; the limit is %d", len(text), len(tr.raw), len(tr.text), max)
		}
		// However the output is split into reads, it reads the same.
		tr1, evs1p := feed(max, iotest.OneByteReader(strings.NewReader(string(out))))
		evs1 := *evs1p
		text1, cut1 := tr1.answer(false)
		if text1 != text || cut1 != cut || fmt.Sprint(evs1) != fmt.Sprint(evs) || !reflect.DeepEqual(tr1.report, tr.report) {
			t.Errorf("a byte at a time: %q %v %v; at once: %q %v %v", text1, cut1, evs1, text, cut, evs)
		}
	})
}

// trim cuts every string of a line to its first max bytes, between
// characters, and the line stays JSON that reads as the original cut.
func TestTrim(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"plain ascii text",
		`quotes " and \ backslashes \\" here`,
		"héllo wörld ✓ 日本語 🙂🙂",
		"control \n\t\u0001 chars and </script> & <",
		"\U0001F600 an emoji first",
	} {
		line, _ := json.Marshal(map[string]string{"a": s, "b": "tail"})
		// Escaped as ASCII too, as some encoders write it.
		ascii := strings.NewReplacer("é", `\u00e9`, "🙂", `\ud83d\ude42`).Replace(string(line))
		for _, in := range []string{string(line), ascii} {
			for max := 0; max <= len(in); max++ {
				tr := trim{max: max}
				// In two parts, cut anywhere: a cut in the middle of an
				// escape or a rune is still no cut inside one.
				mid := len(in) / 3
				out := tr.add(tr.add(nil, []byte(in[:mid])), []byte(in[mid:]))
				var got map[string]string
				if err := json.Unmarshal(out, &got); err != nil {
					t.Fatalf("trim(%s, %d) = %s: %v", in, max, out, err)
				}
				if got["b"] != "tail"[:min(max, 4)] {
					t.Errorf("trim(%s, %d): b = %q; want %q", in, max, got["b"], "tail"[:min(max, 4)])
				}
				a := strings.TrimSuffix(got["a"], "\uFFFD") // half a surrogate pair
				if !strings.HasPrefix(s, a) {
					t.Errorf("trim(%s, %d): a = %q; want a prefix of %q", in, max, got["a"], s)
				}
			}
		}
	}
}
