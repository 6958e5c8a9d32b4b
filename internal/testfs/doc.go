// Package testfs makes file system states for tests that root cannot get
// past with permission bits alone, and writes programs for tests to run
// without the "text file busy" a fork beside the write causes. The states
// are Linux ones; elsewhere the tests that need them skip, saying why.
package testfs
