package httpapi

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

func TestGuardCheck(t *testing.T) {
	t.Parallel()
	const (
		post  = "POST"
		get   = "GET"
		json  = "application/json"
		plain = "text/plain"
	)
	noToken := newGuard(false, nil, nil)
	token := newGuard(true, nil, nil)
	listed := newGuard(false, []string{" VMD ", "api.example.com:8443", "fd00::1", ""}, []string{"https://Relay.example.com/"})
	anything := newGuard(false, []string{"*"}, []string{"*"})
	tests := []struct {
		name        string
		g           *guard
		method      string
		host        string
		origin      string
		contentType string
		bodyLen     int
		want        int
		code        string
	}{
		{"loopback name", noToken, post, "localhost:3001", "", json, 10, 0, ""},
		{"loopback name, no port", noToken, get, "LocalHost", "", "", 0, 0, ""},
		{"127.0.0.1", noToken, get, "127.0.0.1:3001", "", "", 0, 0, ""},
		{"127/8", noToken, get, "127.1.2.3", "", "", 0, 0, ""},
		{"::1", noToken, get, "[::1]:3001", "", "", 0, 0, ""},
		{"::1 no port", noToken, get, "[::1]", "", "", 0, 0, ""},
		{"rebound name", noToken, post, "evil.example:3001", "", json, 10, 403, codeForbiddenHost},
		{"no host", noToken, get, "", "", "", 0, 403, codeForbiddenHost},
		{"private address", noToken, get, "192.168.1.2:3001", "", "", 0, 403, codeForbiddenHost},
		{"all interfaces", noToken, get, "0.0.0.0:3001", "", "", 0, 403, codeForbiddenHost},
		{"localhost subdomain", noToken, get, "localhost.evil.example", "", "", 0, 403, codeForbiddenHost},
		{"trailing dot", noToken, get, "localhost.", "", "", 0, 403, codeForbiddenHost},
		{"octal", noToken, get, "0177.0.0.1", "", "", 0, 403, codeForbiddenHost},
		{"one number", noToken, get, "2130706433", "", "", 0, 403, codeForbiddenHost},
		{"unbracketed ::1", noToken, get, "::1", "", "", 0, 403, codeForbiddenHost},
		{"bracketed v4", noToken, get, "[127.0.0.1]", "", "", 0, 403, codeForbiddenHost},
		{"userinfo", noToken, get, "evil@127.0.0.1", "", "", 0, 403, codeForbiddenHost},
		{"bad port", noToken, get, "127.0.0.1:80x", "", "", 0, 403, codeForbiddenHost},
		{"two ports", noToken, get, "127.0.0.1:80:81", "", "", 0, 403, codeForbiddenHost},
		{"zone", noToken, get, "[::1%25lo]", "", "", 0, 403, codeForbiddenHost},
		{"token: any host", token, post, "evil.example", "", json, 10, 0, ""},
		{"listed name, any port", listed, get, "vmd:3001", "", "", 0, 0, ""},
		{"listed name, case", listed, get, "VMD", "", "", 0, 0, ""},
		{"listed name and port", listed, get, "api.example.com:8443", "", "", 0, 0, ""},
		{"listed name, other port", listed, get, "api.example.com:443", "", "", 0, 403, codeForbiddenHost},
		{"listed v6", listed, get, "[FD00::1]:3001", "", "", 0, 0, ""},
		{"loopback still, with a list", listed, get, "localhost", "", "", 0, 0, ""},
		{"any host", anything, get, "whatever", "", "", 0, 0, ""},
		{"foreign origin", noToken, post, "localhost", "https://evil.example", json, 10, 403, codeForbiddenOrigin},
		{"foreign origin, token", token, get, "x", "https://evil.example", "", 0, 403, codeForbiddenOrigin},
		{"null origin", token, get, "x", "null", "", 0, 403, codeForbiddenOrigin},
		{"listed origin", listed, post, "vmd", "https://relay.example.com", json, 10, 0, ""},
		{"listed origin, other port", listed, post, "vmd", "https://relay.example.com:444", json, 10, 403, codeForbiddenOrigin},
		{"any origin", anything, post, "x", "https://a.example", json, 10, 0, ""},
		{"host before origin", noToken, post, "evil", "https://evil", plain, 10, 403, codeForbiddenHost},
		{"text/plain", noToken, post, "localhost", "", plain, 10, 415, codeUnsupportedType},
		{"form", token, post, "x", "", "application/x-www-form-urlencoded", 10, 415, codeUnsupportedType},
		{"no type", token, post, "x", "", "", 10, 415, codeUnsupportedType},
		{"chunked, no type", token, post, "x", "", "", -1, 415, codeUnsupportedType},
		{"json utf-8", token, post, "x", "", "application/json; charset=UTF-8", 10, 0, ""},
		{"json utf-8 quoted", token, post, "x", "", `application/json;charset="utf-8"`, 10, 0, ""},
		{"json case", token, post, "x", "", "Application/JSON", 10, 0, ""},
		{"json latin1", token, post, "x", "", "application/json; charset=latin1", 10, 415, codeUnsupportedType},
		{"json other param", token, post, "x", "", "application/json; boundary=x", 10, 415, codeUnsupportedType},
		{"json-ish", token, post, "x", "", "application/jsonp", 10, 415, codeUnsupportedType},
		{"json seq", token, post, "x", "", "application/json-seq", 10, 415, codeUnsupportedType},
		{"post, no body: the handler's 400", token, post, "x", "", plain, 0, 0, ""},
		{"get with a type", token, get, "x", "", plain, 0, 0, ""},
		{"delete", token, "DELETE", "x", "", "", 0, 0, ""},
		{"put text", token, "PUT", "x", "", plain, 3, 415, codeUnsupportedType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code, msg := tt.g.check([]byte(tt.method), []byte(tt.host), []byte(tt.origin), []byte(tt.contentType), tt.bodyLen)
			if status != tt.want || code != tt.code {
				t.Errorf("check(%s, host %q, origin %q, type %q, %d) = %d %s; want %d %s",
					tt.method, tt.host, tt.origin, tt.contentType, tt.bodyLen, status, code, tt.want, tt.code)
			}
			if (status == 0) != (msg == "") {
				t.Errorf("status %d with message %q", status, msg)
			}
		})
	}
}

// FuzzLoopbackHost checks the Host parser against the standard library's
// reading of the same header: whatever it calls loopback, net/http's own
// splitting calls a loopback name or address, and it never panics.
func FuzzLoopbackHost(f *testing.F) {
	for _, s := range []string{"localhost", "localhost:3001", "127.0.0.1", "127.0.0.1:80", "[::1]", "[::1]:3001",
		"::1", "[::ffff:127.0.0.1]", "0177.0.0.1", "evil", "[::1", "[::1]x", "127.0.0.1:", ":80", "[]", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		if !loopbackHost([]byte(host)) {
			return
		}
		name, port, err := net.SplitHostPort(host)
		if err != nil {
			if !strings.Contains(err.Error(), "missing port") {
				t.Fatalf("loopbackHost(%q) = true; SplitHostPort: %v", host, err)
			}
			name, port = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), ""
		}
		if port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 0 || strings.ContainsAny(port, "+-") {
				t.Fatalf("loopbackHost(%q) = true with port %q", host, port)
			}
		}
		if strings.EqualFold(name, "localhost") {
			return
		}
		if ip := net.ParseIP(name); ip == nil || !ip.IsLoopback() {
			t.Fatalf("loopbackHost(%q) = true; net.ParseIP(%q) = %v, not loopback", host, name, ip)
		}
	})
}
