//go:build !linux

// Command vmdload measures vmd under load and fault. It reads /proc to
// count processes and memory, so it runs on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "vmdload reads /proc: it runs on Linux only")
	os.Exit(1)
}
