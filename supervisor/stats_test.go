package supervisor

import "testing"

func TestStats(t *testing.T) {
	h := start(t, nil)
	if st := h.sup.Stats(); st != (Stats{}) {
		t.Errorf("Stats() at start = %+v; want zeros", st)
	}
	// The sleep lets the orphans' parents exit and the orphans start: the
	// CLI's exit kills its whole group.
	res := h.exec(t, "orphans 3\nsleep 200ms\nescape\nescape\nsay ok")
	if res.Strays < 2 {
		t.Fatalf("Strays = %d; want at least 2", res.Strays)
	}
	st := h.sup.Stats()
	if st.StraysKilled != uint64(res.Strays) {
		t.Errorf("StraysKilled = %d; want %d, the command's Strays", st.StraysKilled, res.Strays)
	}
	// 3 orphans, their 3 parents and the 2 escaped: all came to vmd.
	waitFor(t, func() bool { return h.sup.Stats().ZombiesReaped >= 8 })
	got := make(chan *Result, 1)
	go func() { res, _ := h.sup.Exec(Request{Prompt: "sleep 300ms"}); got <- res }()
	waitFor(t, func() bool { return h.sup.Stats().Busy })
	<-got
	if h.sup.Stats().Busy {
		t.Error("Stats().Busy after the command; want false")
	}
}
