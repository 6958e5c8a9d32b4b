// Package testfs makes file system states for tests that root cannot get
// past with permission bits alone. The states are Linux ones; elsewhere the
// tests that need them skip, saying why.
package testfs
