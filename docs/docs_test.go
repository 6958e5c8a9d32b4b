package docs_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// api.md is written to a few conventions this test reads:
//
//   - each route has a level-3 heading "### METHOD[, METHOD] /path", the
//     path as openapi.json writes it ("/images/{name}");
//   - its section, up to the next heading of level 3 or above, holds a
//     table whose rows start "| NNN |", one per status the route answers;
//   - a route named elsewhere in the text is a code span holding only
//     "METHOD /path" (`DELETE /command`, `GET /images/page.png`).
const (
	openAPIPath = "../httpapi/openapi.json"
	apiPath     = "api.md"
)

// otherDocs may name routes too (code spans only); none may be unknown.
var otherDocs = []string{"../README.md", "configuration.md", "operations.md", "testing.md", "performance.md"}

var (
	routeHeading = regexp.MustCompile(`^### ((?:[A-Z]+, )*[A-Z]+) (/\S*)$`)
	statusRow    = regexp.MustCompile(`^\|\s*([1-5][0-9][0-9])\s*\|`)
	routeSpan    = regexp.MustCompile("`(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (/[^` ]*)`")
)

var httpMethods = []string{"get", "head", "post", "put", "patch", "delete", "options", "trace"}

// spec is what openapi.json says: "METHOD /path" -> sorted status codes.
type spec map[string][]string

func parseSpec(b []byte) (spec, error) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	s := spec{}
	for path, item := range doc.Paths {
		for method, raw := range item {
			if !slices.Contains(httpMethods, method) {
				continue // "parameters", "summary", ...
			}
			var op struct {
				Responses map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				return nil, fmt.Errorf("openapi.json: %s %s: %w", method, path, err)
			}
			var codes []string
			for code := range op.Responses {
				codes = append(codes, code)
			}
			sort.Strings(codes)
			s[strings.ToUpper(method)+" "+path] = codes
		}
	}
	return s, nil
}

// errorCodes lists the values of "error" the document's schemas define.
func errorCodes(b []byte) ([]string, error) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties struct {
					Error struct {
						Const string `json:"const"`
					} `json:"error"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	var codes []string
	for _, schema := range doc.Components.Schemas {
		if c := schema.Properties.Error.Const; c != "" && !slices.Contains(codes, c) {
			codes = append(codes, c)
		}
	}
	sort.Strings(codes)
	return codes, nil
}

// documented reads api.md's route headings and their status rows.
func documented(md string) spec {
	d := spec{}
	var current []string // the operations of the section being read
	fenced := false      // inside a ``` block, where "# ..." is a comment
	for line := range strings.SplitSeq(md, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		if level := len(line) - len(strings.TrimLeft(line, "#")); level > 0 && level <= 3 {
			current = nil
			m := routeHeading.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			for method := range strings.SplitSeq(m[1], ", ") {
				op := method + " " + m[2]
				current = append(current, op)
				if d[op] == nil {
					d[op] = []string{}
				}
			}
			continue
		}
		if m := statusRow.FindStringSubmatch(line); m != nil {
			for _, op := range current {
				if !slices.Contains(d[op], m[1]) {
					d[op] = append(d[op], m[1])
				}
			}
		}
	}
	for op := range d {
		sort.Strings(d[op])
	}
	return d
}

// matches reports whether the path written in prose (/images/page.png)
// fits the template openapi.json writes (/images/{name}).
func matches(template, path string) bool {
	re := "^" + regexp.MustCompile(`\\\{[^/]*\\\}`).ReplaceAllString(regexp.QuoteMeta(template), `[^/]+`) + "$"
	return regexp.MustCompile(re).MatchString(path)
}

// unknownRoutes lists the code spans of text that name a route the spec
// does not have.
func unknownRoutes(s spec, text string) []string {
	var bad []string
	for _, m := range routeSpan.FindAllStringSubmatch(text, -1) {
		known := false
		for op := range s {
			method, template, _ := strings.Cut(op, " ")
			if method == m[1] && matches(template, m[2]) {
				known = true
				break
			}
		}
		if !known {
			bad = append(bad, m[0])
		}
	}
	return bad
}

// disagreements lists every way api.md and openapi.json differ, and the
// routes other documents name that openapi.json lacks.
func disagreements(openapi []byte, md string, others map[string]string) ([]string, error) {
	s, err := parseSpec(openapi)
	if err != nil {
		return nil, err
	}
	d := documented(md)
	var problems []string
	for op, codes := range s {
		got, ok := d[op]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s is in openapi.json but has no \"### %s\" section in api.md", op, op))
		case !slices.Equal(got, codes):
			problems = append(problems, fmt.Sprintf("%s: api.md documents statuses %v; openapi.json lists %v", op, got, codes))
		}
	}
	for op := range d {
		if _, ok := s[op]; !ok {
			problems = append(problems, fmt.Sprintf("api.md has a section for %s, which openapi.json lacks", op))
		}
	}
	codes, err := errorCodes(openapi)
	if err != nil {
		return nil, err
	}
	for _, code := range codes {
		if !strings.Contains(md, "`"+code+"`") && !strings.Contains(md, `"`+code+`"`) {
			problems = append(problems, fmt.Sprintf("api.md never names the error code %q openapi.json defines", code))
		}
	}
	for _, span := range unknownRoutes(s, md) {
		problems = append(problems, fmt.Sprintf("api.md names %s, which openapi.json lacks", span))
	}
	for name, text := range others {
		for _, span := range unknownRoutes(s, text) {
			problems = append(problems, fmt.Sprintf("%s names %s, which openapi.json lacks", name, span))
		}
	}
	sort.Strings(problems)
	return problems, nil
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAPIDocMatchesOpenAPI fails when docs/api.md and httpapi/openapi.json
// disagree on a route or a status, or when a document names a route the
// API does not have.
func TestAPIDocMatchesOpenAPI(t *testing.T) {
	openapi := []byte(read(t, openAPIPath))
	others := map[string]string{}
	for _, p := range otherDocs {
		others[p] = read(t, p)
	}
	problems, err := disagreements(openapi, read(t, apiPath), others)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	// A route heading the parser missed would pass unnoticed above only if
	// openapi.json were empty too: make sure something was compared.
	if s, _ := parseSpec(openapi); len(s) == 0 {
		t.Fatal("openapi.json lists no operations")
	}
}

// TestAPIDocCheckCatchesDrift runs the same check on mutated copies: each
// mutation must be reported, so that the test above cannot pass by reading
// nothing.
func TestAPIDocCheckCatchesDrift(t *testing.T) {
	openapi := read(t, openAPIPath)
	md := read(t, apiPath)
	// edited is openapi.json after edit, on a fresh copy.
	edited := func(edit func(doc map[string]any)) string {
		t.Helper()
		var doc map[string]any
		if err := json.Unmarshal([]byte(openapi), &doc); err != nil {
			t.Fatal(err)
		}
		edit(doc)
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	withSpec := func(edit func(paths map[string]any)) string {
		return edited(func(doc map[string]any) { edit(doc["paths"].(map[string]any)) })
	}
	mustReplace := func(s, old, new string) string {
		t.Helper()
		if !strings.Contains(s, old) {
			t.Fatalf("api.md has no %q to mutate", old)
		}
		return strings.Replace(s, old, new, 1)
	}
	for _, tc := range []struct {
		name, openapi, md, other string
		want                     string // part of the problem reported
	}{{
		name:    "status row moved into a code block",
		openapi: openapi,
		md:      mustReplace(md, "| 409 | another command is running", "```\n| 409 | another command is running\n```"),
		want:    "POST /command: api.md documents statuses",
	}, {
		name: "route added to openapi.json",
		openapi: withSpec(func(p map[string]any) {
			p["/jobs/{id}"] = map[string]any{"get": map[string]any{"responses": map[string]any{"200": map[string]any{}}}}
		}),
		md:   md,
		want: "GET /jobs/{id} is in openapi.json but has no",
	}, {
		name: "status added to openapi.json",
		openapi: withSpec(func(p map[string]any) {
			p["/command"].(map[string]any)["post"].(map[string]any)["responses"].(map[string]any)["415"] = map[string]any{}
		}),
		md:   md,
		want: "POST /command: api.md documents statuses",
	}, {
		name:    "status row removed from api.md",
		openapi: openapi,
		md:      mustReplace(md, "| 409 | another command is running", "| another command is running"),
		want:    "POST /command: api.md documents statuses",
	}, {
		name: "error code added to openapi.json",
		openapi: edited(func(doc map[string]any) {
			doc["components"].(map[string]any)["schemas"].(map[string]any)["Wedged"] = map[string]any{
				"properties": map[string]any{"error": map[string]any{"const": "agent_wedged"}}}
		}),
		md:   md,
		want: `error code "agent_wedged"`,
	}, {
		name:    "route section in api.md only",
		openapi: openapi,
		md:      md + "\n### PUT /command\n\n| status | when |\n| --- | --- |\n| 200 | never |\n",
		want:    "api.md has a section for PUT /command",
	}, {
		name:    "route heading removed from api.md",
		openapi: openapi,
		md:      mustReplace(md, "### DELETE /command", "### Stopping a command"),
		want:    "DELETE /command is in openapi.json but has no",
	}, {
		name:    "unknown route named in api.md prose",
		openapi: openapi,
		md:      md + "\nSee `GET /jobs/abc`.\n",
		want:    "api.md names `GET /jobs/abc`",
	}, {
		name:    "unknown route named in another document",
		openapi: openapi,
		md:      md,
		other:   "Try `POST /health`.",
		want:    "other.md names `POST /health`",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			problems, err := disagreements([]byte(tc.openapi), tc.md, map[string]string{"other.md": tc.other})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				if strings.Contains(p, tc.want) {
					return
				}
			}
			t.Errorf("disagreements = %q; want one containing %q", problems, tc.want)
		})
	}
}

func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		template, path string
		want           bool
	}{
		{"/images/{name}", "/images/page.png", true},
		{"/images/{name}", "/images/", false},
		{"/images/{name}", "/images/a/b", false},
		{"/openapi.json", "/openapi.json", true},
		{"/openapi.json", "/openapiXjson", false},
		{"/command", "/commands", false},
	} {
		if got := matches(tc.template, tc.path); got != tc.want {
			t.Errorf("matches(%q, %q) = %v; want %v", tc.template, tc.path, got, tc.want)
		}
	}
}
