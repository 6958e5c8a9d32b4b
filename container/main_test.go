//go:build podman

package container

import (
	"testing"

	"github.com/vmd-dev/vmd/internal/testbin"
	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// fakeClaude is the fake CLI (internal/fakeclaude), built static so that it
// runs in the image; mounted in, it drives vmd without the API.
var fakeClaude string

func TestMain(m *testing.M) {
	vmdtest.Main(m, []string{testbin.FakeClaude}, []*string{&fakeClaude})
}
