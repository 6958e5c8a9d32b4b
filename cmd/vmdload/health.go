//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// healthDeadline is how long one /health may take before it counts as a
// failure (a hang).
const healthDeadline = 2 * time.Second

// HealthReport is phase 3: /health asked for without pause by several
// clients while commands run back to back.
type HealthReport struct {
	Commands       int            `json:"commands"`
	CommandLatency Latency        `json:"commandLatency"`
	Statuses       map[string]int `json:"statuses"`
	Clients        int            `json:"clients"`
	Health         Latency        `json:"health"`
	HealthFailures int            `json:"healthFailures"`
	Start          usage          `json:"start"`
	End            usage          `json:"end"`
	Log            map[string]int `json:"log"`
}

func (r *runner) health(ctx context.Context, v *vmdProc, images string) *HealthReport {
	rep := &HealthReport{Clients: r.cfg.HealthClients, Statuses: map[string]int{}}
	rep.Start = r.settledUsage(ctx, v)
	logMark := v.mark()

	hammer, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	lats := make([][]time.Duration, r.cfg.HealthClients)
	fails := make([]int, r.cfg.HealthClients)
	for c := range r.cfg.HealthClients {
		wg.Go(func() {
			// A connection of its own, kept alive, as a load balancer's
			// health checker would hold.
			tr := &http.Transport{MaxConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: healthDeadline}
			for hammer.Err() == nil {
				start := time.Now()
				err := healthOnce(client, v.base)
				if hammer.Err() != nil {
					return // cut short by the end of the phase
				}
				if err != nil {
					fails[c]++
					r.rep.fail("health: client %d: %v", c, err)
					continue
				}
				lats[c] = append(lats[c], time.Since(start))
			}
		})
	}

	d := newDeck(r.cfg.Seed + 1)
	var cmdLats []time.Duration
	for i := 0; i < r.cfg.HealthCommands && ctx.Err() == nil; i++ {
		k := d.next()
		o := r.command(ctx, v, k, i, r.cfg.Timeout, images)
		for _, p := range o.problems {
			r.rep.fail("health phase command #%d %s: %s", i, k.name, p)
		}
		if o.answer != nil {
			rep.Commands++
			rep.Statuses[fmt.Sprint(o.answer.status)]++
			cmdLats = append(cmdLats, o.answer.latency)
		}
	}
	stop()
	wg.Wait()

	var all []time.Duration
	for c := range lats {
		all = append(all, lats[c]...)
		rep.HealthFailures += fails[c]
	}
	rep.Health, rep.CommandLatency = summarize(all), summarize(cmdLats)
	if rep.Health.Count == 0 && ctx.Err() == nil {
		r.rep.fail("health: no /health answered while commands ran")
	}
	if ctx.Err() != nil {
		return rep
	}
	rep.End = r.flatUsage(ctx, v, "health", rep.Start, rssSlackKiB)
	rep.Log = r.checkLog(v, logMark, "health", rep.Statuses)
	return rep
}

// healthOnce asks for /health and checks the answer exactly.
func healthOnce(client *http.Client, base string) error {
	resp, err := client.Get(base + "/health")
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || string(body) != "{\"status\":\"ok\"}\n" {
		return fmt.Errorf("GET /health = %d %q; want 200 {\"status\":\"ok\"}", resp.StatusCode, body)
	}
	return nil
}
