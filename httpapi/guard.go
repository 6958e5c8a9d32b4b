package httpapi

import (
	"bytes"
	"mime"
	"net/netip"
	"strings"

	"github.com/valyala/fasthttp"
)

// guard refuses the requests a web page could make a browser send to vmd:
// without a token, a Host that is not a loopback name or address
// or listed in allowed_hosts (DNS rebinding points a page's own name at
// 127.0.0.1, so its requests carry that name); with or without a token, an
// Origin not listed in allowed_origins (the relay is not a browser, and a
// browser always sends Origin on a cross-site POST); and a body that is not
// JSON (a cross-site "simple request" may only be text/plain, form or
// multipart, so requiring application/json forces a CORS preflight, which
// vmd never answers).
//
// The zero value is not useful: build it with newGuard.
type guard struct {
	checkHost bool
	anyHost   bool
	hosts     map[string]bool // lower case, "name" or "name:port"
	anyOrigin bool
	origins   map[string]bool // lower case, no trailing slash
}

// newGuard builds the checks. tokenSet turns the Host check off: a request
// that must carry the token is no use to a page that cannot read it.
// allowedHosts are names or addresses, matched case-insensitively, with
// any port unless the entry names one ("vmd", "vmd.internal:3001",
// "[fd00::1]", "fd00::1"); allowedOrigins are origins as browsers send them
// ("https://app.example.com"). "*" in either list allows any.
func newGuard(tokenSet bool, allowedHosts, allowedOrigins []string) *guard {
	g := &guard{checkHost: !tokenSet, hosts: map[string]bool{}, origins: map[string]bool{}}
	for _, h := range allowedHosts {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case h == "*":
			g.anyHost = true
		case strings.Contains(h, ":") && !strings.HasPrefix(h, "["):
			if addr, err := netip.ParseAddr(h); err == nil {
				h = "[" + addr.String() + "]" // an IPv6 address, as a Host carries it
			}
			g.hosts[h] = true
		case h != "":
			g.hosts[h] = true
		}
	}
	for _, o := range allowedOrigins {
		o = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o)), "/")
		switch {
		case o == "*":
			g.anyOrigin = true
		case o != "":
			g.origins[o] = true
		}
	}
	return g
}

// Codes of the refusals, the "error" of the JSON body.
const (
	codeForbiddenHost   = "forbidden_host"
	codeForbiddenOrigin = "forbidden_origin"
	codeUnsupportedType = "unsupported_media_type"
)

// check returns the status, error code and message that refuse a request,
// or status 0 to let it through. host, origin and contentType are the
// headers as sent (empty when absent); bodyLen is the body's length, or
// negative when not known yet (fasthttp's ContentLength for a chunked
// body): anything but 0 is a body. A POST without any body is let through,
// for the handler to answer its usual 400. It reads nothing of the request
// but these, so the middleware may call it as soon as the headers are in,
// before any body is read.
func (g *guard) check(method, host, origin, contentType []byte, bodyLen int) (status int, code, message string) {
	if g.checkHost && !g.anyHost && !loopbackHost(host) && !g.listedHost(host) {
		return fasthttp.StatusForbidden, codeForbiddenHost,
			"Without an API token vmd answers only requests addressed to a loopback name or address: " +
				"list this Host in allowed_hosts (ALLOWED_HOSTS), or set API_TOKEN"
	}
	if len(origin) > 0 && !g.anyOrigin && !g.origins[strings.ToLower(string(origin))] {
		return fasthttp.StatusForbidden, codeForbiddenOrigin,
			"Requests from a web page are refused: list its Origin in allowed_origins (ALLOWED_ORIGINS) to allow them"
	}
	if bodyLen != 0 && hasBody(method) && !jsonType(contentType) {
		return fasthttp.StatusUnsupportedMediaType, codeUnsupportedType,
			"The body must be JSON, sent with Content-Type: application/json"
	}
	return 0, "", ""
}

// hasBody reports whether a method's body is read, and so must be JSON.
func hasBody(method []byte) bool {
	switch string(method) {
	case fasthttp.MethodPost, fasthttp.MethodPut, fasthttp.MethodPatch:
		return true
	}
	return false
}

// jsonType reports whether a Content-Type is application/json, with no
// parameter but an optional charset=utf-8 (JSON is UTF-8, RFC 8259).
func jsonType(contentType []byte) bool {
	media, params, err := mime.ParseMediaType(string(contentType))
	if err != nil || media != "application/json" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

// listedHost reports whether host is in allowed_hosts: its name alone, or
// its name and port as sent.
func (g *guard) listedHost(host []byte) bool {
	name, bracketed, ok := splitHost(host)
	if !ok {
		return false
	}
	name = strings.ToLower(name)
	if bracketed {
		name = "[" + name + "]"
	}
	return g.hosts[name] || g.hosts[strings.ToLower(string(host))]
}

// loopbackHost reports whether a Host header names this machine's loopback:
// "localhost", an address in 127.0.0.0/8 or ::1 (bracketed), each with or
// without a port. Anything unusual (a zone, a trailing dot, an address
// written in octal or as one number, an unbracketed IPv6 address) is not.
func loopbackHost(host []byte) bool {
	name, bracketed, ok := splitHost(host)
	if !ok {
		return false
	}
	if !bracketed && strings.EqualFold(name, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(name)
	if err != nil || addr.Zone() != "" || addr.Is6() != bracketed {
		return false
	}
	return addr.Unmap().IsLoopback()
}

// splitHost splits a Host header (RFC 9110 7.2: uri-host [ ":" port ]) into
// the name or address, without the brackets of an IPv6 literal, and says
// whether it was bracketed. The port, if any, must be digits only.
func splitHost(host []byte) (name string, bracketed, ok bool) {
	rest := host
	if len(rest) > 0 && rest[0] == '[' {
		end := bytes.IndexByte(rest, ']')
		if end < 0 {
			return "", false, false
		}
		name, rest, bracketed = string(rest[1:end]), rest[end+1:], true
	} else {
		end := bytes.IndexByte(rest, ':')
		if end < 0 {
			end = len(rest)
		}
		name, rest = string(rest[:end]), rest[end:]
	}
	if len(rest) > 0 {
		if rest[0] != ':' || len(rest) > 6 {
			return "", false, false
		}
		for _, c := range rest[1:] {
			if c < '0' || c > '9' {
				return "", false, false
			}
		}
	}
	return name, bracketed, name != "" && validName(name, bracketed)
}

// validName keeps out of a host name what no name or address holds: space,
// control characters, and the delimiters of a URL.
func validName(name string, bracketed bool) bool {
	for _, c := range []byte(name) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`/\?#@[]"<>`, c) >= 0 || (c == ':' && !bracketed) {
			return false
		}
	}
	return true
}
