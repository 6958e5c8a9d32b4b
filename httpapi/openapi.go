package httpapi

import (
	_ "embed"

	"github.com/valyala/fasthttp"
)

// openAPI is the OpenAPI 3.1 document of this API, served at /openapi.json.
// openapi_test.go validates real answers of every route against it, so a
// change to an answer that the document does not follow fails the tests.
//
//go:embed openapi.json
var openAPI []byte

func (a *API) serveOpenAPI(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	ctx.SetBody(openAPI)
}
