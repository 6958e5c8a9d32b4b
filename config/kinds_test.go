package config

import (
	"github.com/hashicorp/hcl/v2"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1GiB", 1 << 30, true},
		{"512MiB", 512 << 20, true},
		{"3KiB", 3 << 10, true},
		{"2TiB", 2 << 40, true},
		{"0B", 0, true},
		{"100B", 100, true},
		{"1GB", 0, false}, // decimal units are not guessed at
		{"1.5GiB", 0, false},
		{"-1MiB", 0, false},
		{"GiB", 0, false},
		{"", 0, false},
		{"9999999999TiB", 0, false}, // overflows
	} {
		got, err := parseSize(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for _, tt := range []struct {
		in   int64
		want string
	}{{1 << 30, "1GiB"}, {1536 << 20, "1536MiB"}, {0, "0B"}, {1000, "1000B"}, {4 << 40, "4TiB"}} {
		if got := formatSize(tt.in); got != tt.want {
			t.Errorf("formatSize(%d) = %q; want %q", tt.in, got, tt.want)
		}
		if back, err := parseSize(formatSize(tt.in)); back != tt.in || err != nil {
			t.Errorf("parseSize(formatSize(%d)) = %d, %v; want it back", tt.in, back, err)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tt := range []struct {
		in   time.Duration
		want string
	}{
		{5 * time.Minute, "5m"}, {time.Hour, "1h"}, {168 * time.Hour, "168h"}, {8 * time.Second, "8s"},
		{20 * time.Second, "20s"}, {90 * time.Minute, "1h30m"}, {150 * time.Second, "2m30s"}, {0, "0s"},
		{1500 * time.Millisecond, "1.5s"}, {time.Hour + time.Second, "1h0m1s"},
	} {
		if got := formatDuration(tt.in); got != tt.want {
			t.Errorf("formatDuration(%v) = %q; want %q", tt.in, got, tt.want)
		}
		if back, err := time.ParseDuration(formatDuration(tt.in)); back != tt.in || err != nil {
			t.Errorf("time.ParseDuration(formatDuration(%v)) = %v, %v; want it back", tt.in, back, err)
		}
	}
}

// A value as vm.hcl and .env.example write it reads back as the same
// value, for every setting.
func TestHCLTextRoundTrips(t *testing.T) {
	want := Default()
	want.APIToken, want.WebhookSecret = "tok", secret32
	want.AllowedOrigins = []string{"https://a.example", "http://b.example:8080"}
	want.MinFreeDisk = 3 << 20
	want.StallTimeout = 90 * time.Second
	for _, s := range settings {
		c := Default()
		file := writeFile(t, s.name+" = "+s.field.hclText(want)+"\n")
		l := &loader{c: c, written: map[string]hcl.Range{}}
		if err := l.decodeFile(file); err != nil {
			t.Errorf("%s = %s: %v", s.name, s.field.hclText(want), err)
			continue
		}
		if got := s.field.hclText(c); got != s.field.hclText(want) {
			t.Errorf("%s = %s read back as %s", s.name, s.field.hclText(want), got)
		}
		if s.env == "" {
			continue
		}
		c = Default()
		if err := s.field.parse(c, s.field.envText(want)); err != nil || s.field.hclText(c) != s.field.hclText(want) {
			t.Errorf("%s=%s read back as %s, %v; want %s", s.env, s.field.envText(want), s.field.hclText(c), err, s.field.hclText(want))
		}
	}
}
