//go:build !linux

package main

// followGoRun does nothing outside Linux, which alone has a parent-death
// signal: stop vmd itself, not only `go run`, there.
func followGoRun() {}
