package httpapi_test

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// /ready's store check is the store's own probe: a store file deleted
// under vmd fails it, naming the file and saying what to do, though every
// write still succeeds.
func TestReadyStoreFileDeleted(t *testing.T) {
	t.Parallel()
	s := durable(t)
	if err := os.Remove(s.Store.Path()); err != nil {
		t.Fatal(err)
	}
	if r := s.do(t, "POST", "/command", `{"text":"say still answers"}`); r.status != 200 {
		t.Errorf("a command once the store file is deleted = %d %s; want its answer", r.status, r.body)
	}
	r := s.ready(t)
	c := r.Checks["store"]
	if r.status != 503 || !slices.Contains(r.Fail, "store") || c.OK || c.Path != s.Store.Path() ||
		!strings.Contains(c.Message, s.Store.Path()+" was deleted while vmd ran") || !strings.Contains(c.Message, "restart vmd") {
		t.Errorf("GET /ready once the store file is deleted = %d %+v; want 503 failing store, saying it was deleted and to restart vmd", r.status, r)
	}
}
