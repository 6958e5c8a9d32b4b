package httpapi

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"

	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/store"
)

// A command asked for with Accept: text/event-stream is answered as
// Server-Sent Events: start, message and image events as they happen, each
// with its id (the command's seq), then one result event whose data is the
// body the plain call would have had. A client that reconnects with
// Last-Event-ID gets the events after that one, then the live ones, each
// once. A client that reads too slowly gets a dropped event where events
// were left out (the commands service bounds what waits for it).
// The stream runs on the connection taken over from fasthttp, which lets
// vmd see at once when the client goes away: the command runs on, unless
// the request asked for "cancelOnDisconnect".

// wantsStream reports whether the client asked for an event stream.
func wantsStream(ctx *fasthttp.RequestCtx) bool {
	return bytes.Contains(ctx.Request.Header.Peek(fasthttp.HeaderAccept), []byte("text/event-stream"))
}

// streamSource is what a stream sends: a running command's events from a
// subscription, or an ended command's stored events and answer.
type streamSource struct {
	cmd    *commands.Command // nil for an ended command
	sub    *commands.Subscription
	cancel bool // cancel cmd when the client goes away

	past   pastEvents // an ended command's stored events,
	after  int64      // those after this seq,
	status int        // and its answer
	body   []byte
}

// pastEvents pulls an ended command's stored events a page at a time: the
// page after seq after, and the seq the next page comes after (after
// itself once there are no more), as commands.Service.EventPage does.
type pastEvents func(after int64) (evs []commands.Event, last int64, err error)

// streamOf follows a running command from the events after seq after.
func streamOf(cmd *commands.Command, after int64, cancelOnLeave bool) streamSource {
	return streamSource{cmd: cmd, sub: cmd.SubscribeAfter(after), cancel: cancelOnLeave}
}

// endedOf sends an ended command's stored events after seq after, read a
// page at a time as the stream is written, then its answer.
func (a *API) endedOf(rec store.Record, after int64) streamSource {
	id := rec.ID
	past := func(after int64) ([]commands.Event, int64, error) {
		return a.cmds.EventPage(storeCtx, id, after)
	}
	return streamSource{past: past, after: after, status: rec.Status, body: rec.Body}
}

// stream hands the connection over to serveStream once the handler returns.
// The command has been taken already: refusals were plain answers.
func (a *API) stream(ctx *fasthttp.RequestCtx, src streamSource, log hclog.Logger) {
	headers := keptHeaders(ctx)
	a.streamStarted()
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		defer a.streamEnded()
		a.serveStream(c, src, headers, log)
	})
}

func (a *API) serveStream(c net.Conn, src streamSource, headers [][2]string, log hclog.Logger) {
	w := &rawWriter{c: c, bw: bufio.NewWriter(c)}
	readerDone, stopWatching := watchGone(c)
	defer stopWatching()

	w.streamHeaders(headers)
	if src.past != nil && !writePast(w, src, log) {
		return
	}
	if src.cmd != nil {
		if !a.follow(w, src, readerDone, log) {
			return
		}
		src.status, src.body = src.cmd.Answer()
	}
	w.result(src.status, src.body)
}

// writePast writes an ended command's stored events, a page at a time, so
// that a stream holds one page and never all of them; false once the
// client has gone. A page that cannot be read ends the events, not the
// stream: the answer, which the result event carries, matters more than
// the progress left out.
func writePast(w *rawWriter, src streamSource, log hclog.Logger) bool {
	for after := src.after; ; {
		evs, last, err := src.past(after)
		if err != nil {
			log.Error("cannot read the stored events; sending the result without the rest", "after", after, "error", err)
			return true
		}
		if last == after {
			return true
		}
		for _, ev := range evs {
			w.event(ev)
		}
		if w.err != nil {
			return false
		}
		after = last
	}
}

// follow sends a running command's events until it ends or the client
// goes away; false when the client has gone (the command runs on unless
// the request asked otherwise).
func (a *API) follow(w *rawWriter, src streamSource, gone <-chan struct{}, log hclog.Logger) bool {
	keepAlive := time.NewTicker(a.opts.KeepAlive)
	defer keepAlive.Stop()
	leave := func(why string) bool {
		if src.cancel {
			log.Warn("client went away; cancelling its command as it asked", "why", why)
			src.cmd.Cancel()
			<-src.cmd.Done()
		} else {
			log.Info("client went away; its command runs on", "why", why)
		}
		return false
	}
	for {
		select {
		case <-src.sub.Ready():
		case <-keepAlive.C:
			w.comment("keepalive")
		case <-gone:
			return leave("connection closed")
		case <-src.cmd.Answered():
			for _, ev := range src.sub.Take() {
				w.event(ev)
			}
			return w.err == nil || leave(w.err.Error())
		}
		for _, ev := range src.sub.Take() {
			w.event(ev)
		}
		if w.err != nil {
			return leave(w.err.Error())
		}
	}
}

// keptHeaders are the response's headers so far (the request id, ...) for
// an answer written on the connection taken over from fasthttp.
func keptHeaders(ctx *fasthttp.RequestCtx) [][2]string {
	var headers [][2]string
	for k, v := range ctx.Response.Header.All() {
		switch string(k) {
		case fasthttp.HeaderContentType, fasthttp.HeaderContentLength, fasthttp.HeaderConnection,
			fasthttp.HeaderServer, fasthttp.HeaderDate, fasthttp.HeaderTransferEncoding:
		default:
			headers = append(headers, [2]string{string(k), string(v)})
		}
	}
	return headers
}

// watched answers a plain request that asked for "cancelOnDisconnect" on
// the connection taken over from fasthttp, as a stream is, so that vmd
// sees its client go away: then the command is cancelled.
func (a *API) watched(ctx *fasthttp.RequestCtx, cmd *commands.Command, log hclog.Logger) {
	headers := keptHeaders(ctx)
	a.streamStarted()
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		defer a.streamEnded()
		gone, stopWatching := watchGone(c)
		defer stopWatching()
		select {
		case <-gone:
			log.Warn("client went away; cancelling its command as it asked")
			cmd.Cancel()
			<-cmd.Done()
		case <-cmd.Answered():
			status, body := cmd.Answer()
			w := &rawWriter{c: c, bw: bufio.NewWriter(c)}
			w.head(status, headers, "Content-Type", "application/json", "Content-Length", strconv.Itoa(len(body)))
			w.bw.Write(body)
			w.flush()
		}
	})
}

// The events' data.
type (
	startEvent struct {
		Pid       int     `json:"pid"`
		SessionID *string `json:"sessionId"`
	}
	messageEvent struct {
		Text  string   `json:"text"`
		Tools []string `json:"tools"`
	}
	imageEvent struct {
		Name string `json:"name"`
		URL  string `json:"url"`
	}
	droppedEvent struct {
		Events int `json:"events"`
	}
)

// rawWriter writes an HTTP response straight to a connection. Its first
// error sticks: later writes do nothing.
type rawWriter struct {
	c   net.Conn
	bw  *bufio.Writer
	err error
}

func statusText(status int) string {
	if status == commands.StatusCancelled {
		return "Client Closed Request"
	}
	return fasthttp.StatusMessage(status)
}

func (w *rawWriter) head(status int, headers [][2]string, extra ...string) {
	fmt.Fprintf(w.bw, "HTTP/1.1 %d %s\r\n", status, statusText(status))
	for i := 0; i+1 < len(extra); i += 2 {
		fmt.Fprintf(w.bw, "%s: %s\r\n", extra[i], extra[i+1])
	}
	for _, h := range headers {
		fmt.Fprintf(w.bw, "%s: %s\r\n", h[0], h[1])
	}
	w.bw.WriteString("Connection: close\r\n\r\n")
}

func (w *rawWriter) streamHeaders(headers [][2]string) {
	w.head(fasthttp.StatusOK, headers, "Content-Type", "text/event-stream; charset=utf-8",
		"Cache-Control", "no-cache", "X-Accel-Buffering", "no")
	w.flush()
}

func (w *rawWriter) comment(text string) {
	w.bw.WriteString(": " + text + "\n\n")
	w.flush()
}

func (w *rawWriter) event(ev commands.Event) {
	if ev.Seq > 0 {
		w.bw.WriteString("id: " + strconv.FormatInt(ev.Seq, 10) + "\n")
	}
	switch ev.Kind {
	case commands.EventStart:
		w.send("start", startEvent{Pid: ev.Pid, SessionID: optional(ev.SessionID)})
	case commands.EventMessage:
		tools := ev.Tools
		if tools == nil {
			tools = []string{}
		}
		w.send("message", messageEvent{Text: ev.Text, Tools: tools})
	case commands.EventImage:
		w.send("image", imageEvent{Name: ev.Image, URL: commands.ImageURL(ev.Image)})
	case commands.EventDropped:
		// The client read too slowly: events past a bound were left out.
		// The result still has the whole answer.
		w.send("dropped", droppedEvent{Events: ev.Dropped})
	}
}

// result is the last event: its data is the plain answer's body; the
// status field (which EventSource ignores) carries the plain answer's
// status, which the body's "error" also tells.
func (w *rawWriter) result(status int, body []byte) {
	w.bw.WriteString("event: result\nstatus: " + strconv.Itoa(status) + "\ndata: ")
	w.bw.Write(bytes.TrimRight(body, "\n"))
	w.bw.WriteString("\n\n")
	w.flush()
}

func (w *rawWriter) send(name string, v any) {
	w.bw.WriteString("event: " + name + "\n")
	w.data(v)
}

// data writes one data line: JSON has no raw newlines to split it.
func (w *rawWriter) data(v any) {
	b, _ := commands.Marshal(v)
	w.bw.WriteString("data: ")
	w.bw.Write(bytes.TrimRight(b, "\n"))
	w.bw.WriteString("\n\n")
	w.flush()
}

func (w *rawWriter) flush() {
	if w.err != nil {
		return
	}
	_ = w.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if w.err = w.bw.Flush(); w.err != nil {
		w.bw = bufio.NewWriter(io.Discard) // what can no longer be sent
	}
}

// streamStarted and streamEnded count the streams on hijacked connections,
// which fasthttp's shutdown no longer waits for; streamsDone is closed once
// there are none.
func (a *API) streamStarted() {
	a.streamMu.Lock()
	a.nstreams++
	a.streamMu.Unlock()
}

func (a *API) streamEnded() {
	a.streamMu.Lock()
	defer a.streamMu.Unlock()
	a.nstreams--
	if a.nstreams == 0 && a.noStreams != nil {
		close(a.noStreams)
		a.noStreams = nil
	}
}

func (a *API) streamsDone() <-chan struct{} {
	a.streamMu.Lock()
	defer a.streamMu.Unlock()
	ch := make(chan struct{})
	if a.nstreams == 0 {
		close(ch)
	} else {
		a.noStreams = ch
	}
	return ch
}

// watchGone reads a hijacked connection whose client only reads from now
// on: gone is closed when the client's end closes or resets, the sign it
// has left (a half-close counts as leaving, as for net/http's
// CloseNotify). stop ends the watching and waits for it.
func watchGone(c net.Conn) (gone <-chan struct{}, stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	return done, func() {
		_ = c.SetReadDeadline(time.Now())
		<-done
	}
}
