package poll

import "testing"

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, "the third call", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("cond called %d times; want 3, the first time it held", n)
	}
}

func TestWithin(t *testing.T) {
	tests := []struct {
		name string
		ch   func() <-chan int
		want int
	}{
		{"delivered", func() <-chan int { ch := make(chan int, 1); ch <- 7; return ch }, 7},
		{"closed", func() <-chan int { ch := make(chan int); close(ch); return ch }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Within(t, "the value", tt.ch()); got != tt.want {
				t.Errorf("Within = %d; want %d", got, tt.want)
			}
		})
	}
}
