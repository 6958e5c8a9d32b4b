//go:build !unix

package store

import "io"

// lockDir takes no lock: flock(2) is a Unix call, and vmd itself builds
// for Linux and macOS only. This keeps the store package building
// elsewhere, where nothing keeps two processes off one state_dir.
func lockDir(dir string) (io.Closer, error) { return nil, nil }
