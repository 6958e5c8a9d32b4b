package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// storeFullKeys is how many keyed commands must be refused while the
// store's disk is full; storeFullTries bounds the commands sent for that
// (the write-ahead log may have room for a few records first).
const (
	storeFullKeys  = 5
	storeFullTries = 200
)

// faultStoreFull runs a vmd whose command store sits on a 1 MiB disk
// that fills while a keyed command runs. The command's answer is given,
// and its key answers it again (from memory if its end could not be
// stored); keyed commands sent meanwhile are refused 503
// store_unavailable, never run, or run if the store took their record;
// once there is room each refused key, retried as a relay does, runs; and
// a vmd started again on the state_dir answers every key from the store.
// The verdict: no command ran twice, no answer was lost.
func faultStoreFull(t testing.TB, e *faultEnv) {
	disk := newFaultDisk(t, filepath.Join(e.r.work, "store"), "1m")
	if disk.mountErr != nil {
		t.Fatalf("needs a tmpfs: %v", disk.mountErr)
	}
	dir := t.TempDir()
	spec := vmdSpec{name: "store", fake: e.r.fake, images: filepath.Join(dir, "images"), tmp: filepath.Join(dir, "tmp"),
		timeout: faultTimeout, env: []string{"STATE_DIR=" + filepath.Join(disk.root, "state")}}
	s := startVMD(t, e.r.cfg, spec)
	filler := filepath.Join(disk.root, "filler")

	base := fmt.Sprintf("vmdload-storefull-%d", e.r.cfg.Seed)
	first := "say before-full\nsleep 300ms\nsay after-full"
	got := (&faultEnv{r: e.r, s: s}).during(t, first, "Idempotency-Key", base)
	s.asked(t, first, 1)
	if err := fill(filler); err != nil {
		t.Fatalf("filling the store's disk: %v", err)
	}
	answers := map[string]*answer{} // by key: the answer each key got first
	scripts := map[string]string{base: first}
	a := vmdtest.Within(t, "the answer with the store's disk full", got)
	if a == nil {
		return
	}
	lost := 0
	if a.status != 200 || a.Text != "before-full\nafter-full\n" {
		lost++
		t.Errorf("the command whose end came with the disk full: %s; want 200 with its whole text", a)
	}
	answers[base] = a
	if again := s.mustPost(t, first, 200, "Idempotency-Key", base); string(again.raw) != string(a.raw) {
		lost++
		t.Errorf("its key with the disk full: %s; want the same answer", again)
	}

	var refused []string
	for i := 0; i < storeFullTries && len(refused) < storeFullKeys; i++ {
		key, script := fmt.Sprintf("%s-%d", base, i), fmt.Sprintf("say full-%d", i)
		scripts[key] = script
		a, err := s.post(script, "Idempotency-Key", key)
		switch {
		case err != nil:
			t.Fatalf("key %d with the disk full: %v", i, err)
		case a.status == 503 && a.Error == "store_unavailable" && a.header.Get("Retry-After") != "":
			refused = append(refused, key)
			if n := s.runs(script); n != 0 {
				t.Errorf("key %d was refused, yet the CLI ran it %d times", i, n)
			}
		case a.status == 200 && a.Text == fmt.Sprintf("full-%d\n", i):
			answers[key] = a // the store took its record
		default:
			t.Errorf("key %d with the disk full: %s; want 503 store_unavailable with Retry-After, or 200", i, a)
		}
	}
	if len(refused) < storeFullKeys {
		t.Errorf("%d keyed commands refused over %d sent with the store's disk full; want %d", len(refused), storeFullTries, storeFullKeys)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for _, key := range refused {
		vmdtest.Eventually(t, key+" to run once the store has room", func() bool {
			a, _ := s.post(scripts[key], "Idempotency-Key", key)
			if a != nil && a.status != 503 {
				answers[key] = a
			}
			return answers[key] != nil
		})
		if a := answers[key]; a.status != 200 || a.Text != scripts[key][len("say "):]+"\n" {
			lost++
			t.Errorf("%s once the store has room: %s; want 200", key, a)
		}
	}
	e.r.rep.Stops = append(e.r.rep.Stops, s.stop(t, e.r.fake))

	// Every end is in the store: a vmd started again answers every key
	// from there, and runs none of them.
	again := startVMD(t, e.r.cfg, spec)
	dup := 0
	for key, script := range scripts {
		if answers[key] == nil {
			continue
		}
		a := again.mustPost(t, script, 200, "Idempotency-Key", key)
		if string(a.raw) != string(answers[key].raw) || a.header.Get("Idempotent-Replayed") != "true" {
			lost++
			t.Errorf("%s after a restart: %s, replayed %q; want its first answer from the store", key, a, a.header.Get("Idempotent-Replayed"))
		}
		dup += max(s.runs(script)+again.runs(script)-1, 0)
	}
	if dup > 0 {
		t.Errorf("%d duplicate CLI runs", dup)
	}
	e.r.rep.Stops = append(e.r.rep.Stops, again.stop(t, e.r.fake))
	e.r.rep.note("store disk full mid-command: %d keys answered, %d of them refused 503 while full and run once there was room; %d duplicate runs, %d answers lost",
		len(answers), len(refused), dup, lost)
}
