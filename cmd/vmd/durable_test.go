package main

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	_ "modernc.org/sqlite" // to read the store file beside vmd
)

// Durable commands (issue 10) across vmd's own life: killed, drained,
// restarted on the same state_dir, with a corrupt store, with webhooks.

// storedRecord is GET /commands/{id}, decoded.
type storedRecord struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Status   int    `json:"status"`
	Response struct {
		Error string `json:"error"`
		Text  string `json:"text"`
	} `json:"response"`
	Webhook *struct {
		State      string `json:"state"`
		Attempts   int    `json:"attempts"`
		LastStatus int    `json:"lastStatus"`
	} `json:"webhook"`
}

func getRecord(t *testing.T, url, id string) storedRecord {
	t.Helper()
	status, _, body := request(t, "GET", url+"/commands/"+id, "")
	var r storedRecord
	if status != 200 || json.Unmarshal([]byte(body), &r) != nil {
		t.Fatalf("GET /commands/%s = %d %s; want the record", id, status, body)
	}
	return r
}

// submit posts a command to /commands and returns its id.
func submit(t *testing.T, url, text string, header ...string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"text": text})
	status, _, body := request(t, "POST", url+"/commands", string(b), header...)
	var r storedRecord
	if status != 202 || json.Unmarshal([]byte(body), &r) != nil {
		t.Fatalf("POST /commands = %d %s; want 202 with the record", status, body)
	}
	return r.ID
}

// vmd SIGKILLed mid-command and started again on the same state_dir: the
// record is interrupted with the text said so far, no CLI is left alive,
// and the key answers that record.
func TestKilledThenRestarted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := append(baseEnv(t), "STATE_DIR="+dir)
	p := startVMD(t, env)
	id := submit(t, p.url, "say partial\nsleep 1h", "Idempotency-Key", "wamid.kill")
	waitFor(t, "the partial text stored", func() bool { return storedText(t, dir, id, "partial") })
	cli := p.running(t)
	p.signal(syscall.SIGKILL)
	p.WaitExit(t)
	waitFor(t, "the CLI to die with vmd", func() bool { return syscall.Kill(cli, 0) == syscall.ESRCH })

	q := startVMD(t, env)
	r := getRecord(t, q.url, id)
	if r.State != "interrupted" || r.Status != 503 || r.Response.Error != "interrupted" || !strings.Contains(r.Response.Text, "partial") {
		t.Errorf("record after the restart = %+v; want interrupted, 503, with the partial text", r)
	}
	b, _ := json.Marshal(map[string]string{"text": "say partial\nsleep 1h"})
	status, h, body := request(t, "POST", q.url+"/command", string(b), "Idempotency-Key", "wamid.kill")
	if status != 503 || h.Get("Idempotent-Replayed") != "true" || !strings.Contains(body, `"error":"interrupted"`) {
		t.Errorf("the key after the restart = %d %v %s; want the interrupted answer, replayed", status, h, body)
	}
	if !q.logged("commands left running by a stopped vmd are now interrupted") {
		t.Error("no log line for the interrupted command")
	}
}

// storedText reports whether the command's events in the store file hold
// text: what vmd has written, read by SQLite itself beside it (WAL lets a
// reader in while vmd writes).
func storedText(t *testing.T, dir, id, text string) bool {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "vmd.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	err = db.QueryRow("SELECT count(*) FROM events WHERE command_id = ? AND instr(data, ?) > 0", id, text).Scan(&n)
	return err == nil && n > 0
}

// SIGTERM while a command runs: its record says drained.
func TestDrainedRecord(t *testing.T) {
	t.Parallel()
	env := append(baseEnv(t), "STATE_DIR="+t.TempDir(), "DRAIN_TIMEOUT_MS=200")
	p := startVMD(t, env)
	id := submit(t, p.url, "say partial\nsleep 1h")
	p.running(t)
	p.signal(syscall.SIGTERM)
	if code := p.WaitExit(t); code != 0 {
		t.Errorf("exit code = %d; want 0", code)
	}
	q := startVMD(t, env)
	if r := getRecord(t, q.url, id); r.State != "drained" || r.Status != 503 || r.Response.Error != "shutting_down" {
		t.Errorf("record = %+v; want drained, 503 shutting_down", r)
	}
}

// A store file that is not a database: exit 1, naming the file.
func TestCorruptStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "vmd.db"), []byte(strings.Repeat("not a database ", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(vmdBin)
	cmd.Env = append(baseEnv(t), "STATE_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), filepath.Join(dir, "vmd.db")) {
		t.Errorf("vmd on a corrupt store = %d %v:\n%s\nwant exit 1 naming the file", code, err, out)
	}
}

// A second vmd on a state_dir one already uses exits 1 at once, naming
// the directory and the first's pid, and leaves the first alone: its
// running command is not ended interrupted, its git configuration is not
// rewritten, and it goes on serving.
func TestSecondVMDOnStateDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startVMD(t, append(baseEnv(t), "STATE_DIR="+dir))
	id := submit(t, p.url, "say running\nsleep 1h")
	waitFor(t, "the command's text stored", func() bool { return storedText(t, dir, id, "running") })
	gitconfig := filepath.Join(dir, "git", "gitconfig")
	before, err := os.ReadFile(gitconfig)
	if err != nil {
		t.Fatal(err)
	}

	// Bounded: a vmd that does start would serve until killed.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, vmdBin)
	cmd.Env = append(baseEnv(t), "STATE_DIR="+dir, "VMD_GIT_AUTHOR_NAME=Second vmd")
	out, _ := cmd.CombinedOutput()
	want := fmt.Sprintf("state_dir %s is in use by another vmd (pid %d): stop it, or give this one another state_dir (STATE_DIR)", dir, p.pid)
	var line struct {
		Message string `json:"@message"`
		Error   string `json:"error"`
	}
	for l := range strings.SplitSeq(string(out), "\n") {
		if json.Unmarshal([]byte(l), &line) == nil && line.Message == "cannot start" {
			break
		}
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(line.Error, want) {
		t.Errorf("second vmd on %s = exit %d, %q:\n%s\nwant exit 1, \"cannot start\" saying %q", dir, code, line, out, want)
	}

	if r := getRecord(t, p.url, id); r.State != "running" {
		t.Errorf("the first's command after the second vmd = %+v; want it still running", r)
	}
	if after, _ := os.ReadFile(gitconfig); string(after) != string(before) {
		t.Errorf("the first's gitconfig after the second vmd =\n%s\nwant it as it was:\n%s", after, before)
	}
	if status, _, body := request(t, "DELETE", p.url+"/commands/"+id, ""); status != 200 || !strings.Contains(body, `"state":"cancelled"`) {
		t.Errorf("DELETE the first's command = %d %s; want it cancelled by the first", status, body)
	}
	if r := post(p.url, "say still here"); r.status != 200 {
		t.Errorf("a command on the first after the second vmd = %d %v %v; want 200", r.status, r.body, r.err)
	}
}

var hookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// receiver is a webhook receiver that answers down (503) until up, and
// checks each signature with the Standard Webhooks library.
type receiver struct {
	srv *httptest.Server
	wh  *standardwebhooks.Webhook

	mu        sync.Mutex
	up        bool
	attempts  int
	delivered []string
	bad       []error
}

func newReceiver(t *testing.T) *receiver {
	wh, err := standardwebhooks.NewWebhook(hookSecret)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{wh: wh}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts++
		if err := r.wh.Verify(body, req.Header); err != nil {
			r.bad = append(r.bad, err)
		}
		if !r.up {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		r.delivered = append(r.delivered, string(body))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setUp() { r.mu.Lock(); r.up = true; r.mu.Unlock() }

func (r *receiver) state() (attempts int, delivered []string, bad []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts, append([]string(nil), r.delivered...), append([]error(nil), r.bad...)
}

// A receiver down for the first attempt, then up: delivered once, signed
// as Standard Webhooks says, and the record shows it. Then a delivery
// pending when vmd stops is delivered after its restart.
func TestWebhook(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	env := append(baseEnv(t), "STATE_DIR="+t.TempDir(), "WEBHOOK_URL="+rcv.srv.URL, "WEBHOOK_SECRET="+hookSecret)
	p := startVMD(t, env)
	first := post(p.url, "say hooked")
	if first.status != 200 {
		t.Fatalf("command = %d %v", first.status, first.body)
	}
	waitFor(t, "a first attempt", func() bool { n, _, _ := rcv.state(); return n >= 1 })
	rcv.setUp()
	waitFor(t, "the delivery", func() bool { _, d, _ := rcv.state(); return len(d) == 1 })
	_, delivered, bad := rcv.state()
	var payload struct {
		Type string       `json:"type"`
		Data storedRecord `json:"data"`
	}
	if err := json.Unmarshal([]byte(delivered[0]), &payload); err != nil || payload.Type != "command.completed" ||
		payload.Data.State != "succeeded" || !strings.Contains(payload.Data.Response.Text, "hooked") || len(bad) > 0 {
		t.Errorf("delivered %s (bad signatures %v); want command.completed with the record", delivered[0], bad)
	}
	waitFor(t, "the record to show the delivery", func() bool {
		r := getRecord(t, p.url, payload.Data.ID)
		return r.Webhook != nil && r.Webhook.State == "delivered" && r.Webhook.Attempts >= 2 && r.Webhook.LastStatus == 200
	})
	// The sender counts an attempt just after it records it.
	waitFor(t, "/metrics to count the delivery", func() bool {
		status, _, metrics := request(t, "GET", p.url+"/metrics", "")
		return status == 200 && strings.Contains(metrics, `vmd_webhook_deliveries_total{outcome="delivered"} 1`)
	})

	// Pending across a restart: the receiver down while vmd stops.
	rcv.mu.Lock()
	rcv.up = false
	rcv.mu.Unlock()
	n0, _, _ := rcv.state()
	second := post(p.url, "say again")
	waitFor(t, "an attempt of the second", func() bool { n, _, _ := rcv.state(); return n > n0 })
	p.signal(syscall.SIGTERM)
	p.WaitExit(t)
	rcv.setUp()
	if second.status != 200 {
		t.Fatalf("second command = %d %v", second.status, second.body)
	}
	startVMD(t, env)
	waitFor(t, "the second delivered after the restart", func() bool { _, d, _ := rcv.state(); return len(d) == 2 })
	if _, d, _ := rcv.state(); !strings.Contains(d[1], "again") {
		t.Errorf("second delivery = %s; want the second command", d[1])
	}
}
