package container

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/vmd-dev/vmd/internal/testbin"
)

// fakeClaude is the fake CLI (internal/fakeclaude), built static so that it
// runs in the image; mounted in, it drives vmd without the API.
var fakeClaude string

func TestMain(m *testing.M) {
	if os.Getenv("VMD_TEST_IMAGE") == "" {
		goleak.VerifyTestMain(m) // every test skips (or fails): nothing to build
		return
	}
	testbin.Main(m, []string{testbin.FakeClaude}, []*string{&fakeClaude})
}
