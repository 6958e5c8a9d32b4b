//go:build linux

package main

import (
	"slices"
	"strconv"
	"time"
)

// Duration is a time.Duration written to JSON as milliseconds.
type Duration time.Duration

// MarshalJSON writes d as a number of milliseconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(d)/float64(time.Millisecond), 'f', 3, 64), nil
}

func (d Duration) String() string { return fmtDur(time.Duration(d)) }

// fmtDur prints a duration with three significant figures or so.
func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
	case d >= time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
	default:
		return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 1, 64) + "µs"
	}
}

// Latency summarises a set of round trips.
type Latency struct {
	Count int      `json:"count"`
	P50   Duration `json:"p50Ms"`
	P99   Duration `json:"p99Ms"`
	Max   Duration `json:"maxMs"`
}

// summarize computes the percentiles of ds (nearest rank).
func summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return Latency{Count: len(s), P50: Duration(rank(s, 0.50)), P99: Duration(rank(s, 0.99)), Max: Duration(s[len(s)-1])}
}

// rank is the nearest-rank percentile of sorted s.
func rank(s []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
