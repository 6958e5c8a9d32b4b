//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// stormDeadline is how long a storm client waits for its answer before it
// counts as a hang. The slowest answer is the idle round's winner, 0.5 s.
const stormDeadline = 15 * time.Second

// StormReport is phase 2: many POSTs at once, one command slot.
type StormReport struct {
	Clients int          `json:"clients"`
	Rounds  []StormRound `json:"rounds"`
	// Busy is how long the 409s took, over every round.
	Busy Latency `json:"busy409"`
}

// StormRound is one round: Slot is "idle" (all race for the free slot) or
// "busy" (a command holds it throughout).
type StormRound struct {
	Slot     string         `json:"slot"`
	Statuses map[string]int `json:"statuses"`
	// Errors counts clients that got no HTTP answer: a refused or broken
	// connection, or nothing within stormDeadline.
	Errors int `json:"errors"`
}

func (r *runner) storms(ctx context.Context, v *vmdProc) *StormReport {
	rep := &StormReport{Clients: r.cfg.StormClients}
	var busy []time.Duration
	for round := 0; round < 2*r.cfg.StormRounds && ctx.Err() == nil; round++ {
		slot := "idle"
		if round%2 == 1 {
			slot = "busy"
		}
		sr, lats := r.stormRound(ctx, v, round, slot)
		rep.Rounds = append(rep.Rounds, sr)
		busy = append(busy, lats...)
	}
	rep.Busy = summarize(busy)
	return rep
}

// stormResult is what one storm client got.
type stormResult struct {
	status  int
	body    answer
	latency time.Duration
	err     error
}

// stormRound sends StormClients POSTs at once, each on a connection of its
// own dialled beforehand, so that they reach vmd within a few milliseconds.
// Idle: exactly one gets the slot and its command's answer (200), every
// other a 409. Busy: a command started before holds the slot; every client
// gets a 409 and the holder its 200.
func (r *runner) stormRound(ctx context.Context, v *vmdProc, round int, slot string) (StormRound, []time.Duration) {
	sr := StormRound{Slot: slot, Statuses: map[string]int{}}
	addr := strings.TrimPrefix(v.base, "http://")
	script := fmt.Sprintf("sleep 500ms\nsay storm-%d", round)
	var holder chan *answer
	if slot == "busy" {
		script = fmt.Sprintf("say intruder-%d", round)
		mark := v.mark()
		holder = make(chan *answer, 1)
		go func() {
			a, err := v.post(ctx, fmt.Sprintf("sleep 1s\nsay holder-%d", round), faultTimeout+10*time.Second)
			if err != nil {
				r.rep.fail("storm %d (busy): the holding command: %v", round, err)
			}
			holder <- a
		}()
		if _, ok := v.findLog(mark, 10*time.Second, "spawn"); !ok {
			r.rep.fail("storm %d (busy): the holding command did not start in 10s", round)
		}
	}

	conns := make([]net.Conn, r.cfg.StormClients)
	results := make([]stormResult, r.cfg.StormClients)
	for i := range conns {
		var err error
		if conns[i], err = net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
			results[i].err = fmt.Errorf("dial: %w", err)
		}
	}
	body, _ := json.Marshal(map[string]string{"text": script})
	req := fmt.Sprintf("POST /command HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		addr, len(body), body)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range conns {
		if c == nil {
			continue
		}
		wg.Go(func() {
			defer c.Close()
			<-release
			results[i] = stormOnce(c, req)
		})
	}
	close(release)
	wg.Wait()

	var lats []time.Duration
	winners := 0
	for i, res := range results {
		if res.err != nil {
			sr.Errors++
			r.rep.fail("storm %d (%s): client %d got no answer: %v", round, slot, i, res.err)
			continue
		}
		sr.Statuses[fmt.Sprint(res.status)]++
		switch {
		case res.status == http.StatusConflict:
			lats = append(lats, res.latency)
			if res.body.Error != "busy" || res.body.Message != "A command is already in progress" {
				r.rep.fail("storm %d (%s): client %d: 409 %q %q; want busy", round, slot, i, res.body.Error, res.body.Message)
			}
		case slot == "idle" && res.status == http.StatusOK:
			winners++
			if res.body.Text != fmt.Sprintf("storm-%d\n", round) {
				r.rep.fail("storm %d (idle): the winner's text %q; want %q", round, res.body.Text, fmt.Sprintf("storm-%d\n", round))
			}
		default:
			r.rep.fail("storm %d (%s): client %d got %d %s", round, slot, i, res.status, res.body.raw)
		}
	}
	if slot == "idle" && winners != 1 {
		r.rep.fail("storm %d (idle): %d clients ran their command; want exactly 1", round, winners)
	}
	if holder != nil {
		if a := <-holder; a != nil && (a.status != 200 || a.Text != fmt.Sprintf("holder-%d\n", round)) {
			r.rep.fail("storm %d (busy): the holding command got %s; want 200 holder-%d", round, a, round)
		}
	}
	if ps, err := processes(); err == nil {
		if t := countTree(ps, v.pid); t.Descendants > 0 {
			r.rep.fail("storm %d (%s): %d processes below vmd after the round", round, slot, t.Descendants)
		}
	}
	return sr, lats
}

// stormOnce sends one prepared request on c and reads the answer.
func stormOnce(c net.Conn, req string) stormResult {
	start := time.Now()
	c.SetDeadline(start.Add(stormDeadline))
	if _, err := io.WriteString(c, req); err != nil {
		return stormResult{err: fmt.Errorf("write: %w", err)}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return stormResult{err: fmt.Errorf("read: %w", err)}
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	res := stormResult{status: resp.StatusCode, latency: time.Since(start), err: err}
	res.body.raw = raw
	if err == nil {
		if jerr := json.Unmarshal(raw, &res.body); jerr != nil {
			res.err = fmt.Errorf("%d answer is not JSON: %q", resp.StatusCode, raw)
		}
	}
	return res
}
