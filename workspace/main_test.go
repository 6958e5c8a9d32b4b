package workspace_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The git server runs goroutines and git processes: none may outlive a test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
