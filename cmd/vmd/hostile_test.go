package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// statusKiB reads a "Name: N kB" line of /proc/<pid>/status.
func statusKiB(t *testing.T, pid int, name string) int {
	t.Helper()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + name + `:\s+(\d+) kB`).FindSubmatch(status)
	if m == nil {
		t.Fatalf("no %s in /proc/%d/status", name, pid)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// Issue 11 gap 2: 1,000 connections without the token each send a body of
// 512 KiB, all but its last byte, to /health, and hold on. vmd reads no body
// of a caller that has not authenticated (and /health takes none), so its
// memory stays where it was; it used to buffer every body (13 MB to 926 MB
// with 1 MiB each). The connections come from eight loopback addresses, as
// many clients would, under netguard's per-address cap.
func TestUnauthenticatedBodiesBounded(t *testing.T) {
	t.Parallel()
	const conns, body = 1000, 512 << 10
	p := startVMD(t, append(baseEnv(t), "API_TOKEN=secret-token-0123456789", "LOG_LEVEL=info"))
	port := strings.TrimPrefix(p.url, "http://127.0.0.1:")
	before := statusKiB(t, p.pid, "VmRSS")

	var held sync.WaitGroup
	release := make(chan struct{})
	sent := make(chan error, conns)
	sem := make(chan struct{}, 50) // connections being written at once
	for i := range conns {
		held.Go(func() {
			sem <- struct{}{}
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%8))}}
			c, err := d.Dial("tcp", "127.0.0.1:"+port)
			if err != nil {
				<-sem
				sent <- err
				return
			}
			defer c.Close()
			head := fmt.Sprintf("GET /health HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n", body)
			// vmd may answer and close before the body is all sent: a write
			// error is the fix working.
			_, _ = c.Write([]byte(head + strings.Repeat("x", body-1)))
			<-sem
			sent <- nil
			<-release
		})
	}
	for range conns {
		if err := <-sent; err != nil {
			t.Errorf("connecting: %v", err)
		}
	}
	// /health answers from yet another address meanwhile.
	resp, err := http.Get(p.url + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("GET /health during the flood: %v %v; want 200", resp, err)
	} else {
		resp.Body.Close()
	}
	peak := statusKiB(t, p.pid, "VmHWM")
	close(release)
	held.Wait()
	t.Logf("vmd's resident memory: %d KiB before, peak %d KiB with %d connections sending %d KiB each", before, peak, conns, body>>10)
	if grew := peak - before; grew > 64<<10 {
		t.Errorf("vmd's peak resident memory grew by %d KiB (from %d KiB); want under 64 MiB: it read bodies of callers without the token", grew, before)
	}
}

// Issue 11 gap 6: a chunked body past max_request_body, with the token,
// is answered 413 with the client's request id; without the token, 401.
// fasthttp resets a request whose chunked body it fails to read, headers
// and all: vmd answered 401 and lost the id.
func TestChunkedTooLarge(t *testing.T) {
	t.Parallel()
	const token = "secret-token-0123456789"
	p := startVMD(t, append(baseEnv(t), "API_TOKEN="+token, "MAX_REQUEST_BODY=4096"))
	addr := strings.TrimPrefix(p.url, "http://")
	for _, c := range []struct {
		auth   string
		status int
		code   string
	}{
		{"Authorization: Bearer " + token + "\r\n", 413, "payload_too_large"},
		{"", 401, "unauthorized"},
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		chunk := strings.Repeat("x", 3000)
		req := "POST /command HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n" + c.auth +
			"X-Request-Id: chunked-1\r\nTransfer-Encoding: chunked\r\n\r\n" +
			strings.Repeat(fmt.Sprintf("%x\r\n%s\r\n", len(chunk), chunk), 3) + "0\r\n\r\n"
		go func() { _, _ = conn.Write([]byte(req)) }() // vmd may close before it is all read
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 512)
		n, _ := resp.Body.Read(b)
		conn.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b[:n]), `"`+c.code+`"`) || resp.Header.Get("X-Request-Id") != "chunked-1" {
			t.Errorf("chunked body of 9000 bytes (%q) = %d %q, request id %q; want %d %s with request id chunked-1",
				c.auth, resp.StatusCode, b[:n], resp.Header.Get("X-Request-Id"), c.status, c.code)
		}
	}
}
