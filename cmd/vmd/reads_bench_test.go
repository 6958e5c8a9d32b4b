package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/outcome"
	"github.com/vmd-dev/vmd/store"
)

// The store BenchmarkReadMemory reads: records whose answers are as large
// as max_output lets them be, and one command with about as many events.
const (
	readRecords    = 120
	readAnswer     = 1_000_000 // bytes of each record's answer
	readEvents     = 4500      // events of the followed command,
	readEventText  = 200       // of this much text each: ~0.9 MB
	readListers    = 4
	readFollowers  = 250
	readListLimit  = 1000
	readSettleTime = time.Second // how long the followers are held
)

// BenchmarkReadMemory measures what reading the store costs vmd's memory.
// It fills a store with 120 records of 1 MB answers and a command with
// about 0.9 MB of events, then, on a vmd of its own for each load, reports
// its resident memory idle (idle-rss-KiB) and its peak above that
// (peak-KiB: VmHWM less idle) under:
//
//   - list: 4 clients paging GET /commands?limit=1000 at once until next
//     is null;
//   - follow: 250 clients following the command's events
//     (GET /commands/{id}/events) that read nothing, held for a second.
//
// Run it with:
//
//	go test -run '^$' -bench ReadMemory -benchtime 1x ./cmd/vmd/
func BenchmarkReadMemory(b *testing.B) {
	dir := b.TempDir()
	followed := fillReads(b, dir)
	cfg := filepath.Join(b.TempDir(), "vm.hcl")
	if err := os.WriteFile(cfg, []byte("host = \"127.0.0.1\"\nport = 0\nlog_format = \"json\"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "ANTHROPIC_API_KEY=k", "HOME=" + b.TempDir(), "CLAUDE_BIN=" + fake,
		"IMAGES_DIR=" + filepath.Join(b.TempDir(), "images"), "TMPDIR=" + b.TempDir(), "STATE_DIR=" + dir}
	loads := []struct {
		name string
		run  func(b *testing.B, url string)
	}{
		{"list", func(b *testing.B, url string) { listAll(b, url) }},
		{"follow", func(b *testing.B, url string) { follow(b, url, followed) }},
	}
	for _, load := range loads {
		b.Run(load.name, func(b *testing.B) {
			var idle, peak int
			for b.Loop() {
				p := startVMD(b, env, vmdBin, "-config", cfg)
				for range 10 {
					healthy(strings.TrimPrefix(p.url, "http://127.0.0.1:"))
				}
				rss := residentKiB(b, p.pid)
				idle = max(idle, rss)
				resetPeak(b, p.pid)
				load.run(b, p.url)
				peak = max(peak, peakKiB(b, p.pid)-rss)
				p.signal(syscall.SIGTERM)
				if code := p.WaitExit(b); code != 0 {
					b.Fatalf("vmd exit = %d after the %s load", code, load.name)
				}
			}
			b.ReportMetric(float64(idle), "idle-rss-KiB")
			b.ReportMetric(float64(peak), "peak-KiB")
		})
	}
}

// fillReads stores the benchmark's records in dir and returns the id of
// the command with many events.
func fillReads(b *testing.B, dir string) string {
	ctx := context.Background()
	st, err := store.Open(ctx, dir, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	answer, _ := json.Marshal(map[string]any{"text": strings.Repeat("x", readAnswer), "images": []string{}, "exitCode": 0})
	for range readRecords {
		rec, _, err := st.Create(ctx, store.NewRecord{PromptLen: 10})
		if err == nil {
			err = st.Finish(ctx, rec.ID, store.End{State: store.State(outcome.Succeeded), Status: 200, Body: answer})
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	rec, _, err := st.Create(ctx, store.NewRecord{PromptLen: 10})
	if err != nil {
		b.Fatal(err)
	}
	data, _ := json.Marshal(map[string]string{"text": strings.Repeat("y", readEventText)})
	evs := make([]store.Event, readEvents)
	for i := range evs {
		evs[i] = store.Event{Seq: int64(i + 1), Type: "message", Data: data}
	}
	if _, err := st.AppendEvents(ctx, rec.ID, evs...); err != nil {
		b.Fatal(err)
	}
	err = st.Finish(ctx, rec.ID, store.End{State: store.State(outcome.Succeeded), Status: 200, Body: []byte(`{"text":"done"}`)})
	if err != nil {
		b.Fatal(err)
	}
	return rec.ID
}

// listAll pages through GET /commands with readListers clients at once,
// each until next is null, and checks each saw every record.
func listAll(b *testing.B, url string) {
	var wg sync.WaitGroup
	errs := make(chan error, readListers)
	for range readListers {
		wg.Go(func() {
			n, before := 0, ""
			for {
				resp, err := http.Get(url + "/commands?limit=" + strconv.Itoa(readListLimit) + before)
				if err != nil {
					errs <- err
					return
				}
				var page struct {
					Commands []json.RawMessage `json:"commands"`
					Next     *string           `json:"next"`
				}
				err = json.NewDecoder(resp.Body).Decode(&page)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					errs <- fmt.Errorf("GET /commands = %d, %v", resp.StatusCode, err)
					return
				}
				n += len(page.Commands)
				if page.Next == nil {
					break
				}
				before = "&before=" + *page.Next
			}
			if n != readRecords+1 {
				errs <- fmt.Errorf("paged through %d records; want %d", n, readRecords+1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
}

// follow opens readFollowers event streams of the command id that read
// nothing past the response's head, with a small receive window, and
// holds them for readSettleTime. On loopback the kernel still takes most
// of each stream into vmd's send buffers (up to tcp_wmem's maximum, 4 MiB,
// while tcp_mem allows), so what this measures is mostly what vmd holds
// while it reads and writes the streams at once; on a small machine, whose
// tcp_mem is small, the writes wait and each stream keeps what it holds.
func follow(b *testing.B, url, id string) {
	addr := strings.TrimPrefix(url, "http://")
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conns := make([]net.Conn, 0, readFollowers)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range readFollowers {
		c, err := dialer.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /commands/%s/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n", id)
	}
	// Every stream has begun (its head is out) before the hold.
	for _, c := range conns {
		line, err := bufio.NewReaderSize(c, 16).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
			b.Fatalf("events stream: %q, %v", line, err)
		}
	}
	time.Sleep(readSettleTime) // a load held for a time, not a synchronisation
}

// resetPeak sets the process's VmHWM back to its VmRSS (clear_refs 5,
// Linux 4.0 and later).
func resetPeak(b *testing.B, pid int) {
	if err := os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("reset the peak RSS of vmd: %v", err)
	}
}

// peakKiB reads the process's VmHWM.
func peakKiB(b *testing.B, pid int) int {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^VmHWM:\s+(\d+) kB`).FindSubmatch(status)
	if m == nil {
		b.Fatal("no VmHWM")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
