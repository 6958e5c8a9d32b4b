package config

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// update rewrites vm.hcl, .env.example's settings and docs/configuration.md's
// settings table from the table:
//
//	go test ./config -run TestRepoFiles -update
var update = flag.Bool("update", false, "rewrite ../vm.hcl and the settings part of ../.env.example from the table")

const (
	vmHCL      = "../vm.hcl"
	envExample = "../.env.example"
	// The part of .env.example between these lines is generated; the rest
	// (the key, the compose-only variables) is written by hand.
	envBegin = "# --- vmd's settings (defaults shown; generated from config/settings.go) ---\n"
	envEnd   = "# --- end of vmd's settings ---\n"
)

const vmHCLHeader = `# vm.hcl: vmd's settings. Every setting is written here with its built-in
# default, so this file changes nothing until you edit it; without a file
# (no -config, no VM_CONFIG) vmd uses the same defaults.
#
# Each setting but claude_args can also be set from the environment, which
# wins over this file. Durations are strings: "90s", "5m", "168h"; so are
# sizes: "512MiB", "1GiB".
#
# Generated from the table in config/settings.go: edit the table, then
#   go test ./config -run TestRepoFiles -update
`

// wrap writes text as comment lines of at most 76 columns.
func wrap(text string) string {
	var b, line strings.Builder
	for _, word := range strings.Fields(text) {
		if line.Len() > 0 && line.Len()+1+len(word) > 74 {
			b.WriteString("# " + line.String() + "\n")
			line.Reset()
		}
		if line.Len() > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(word)
	}
	if line.Len() > 0 {
		b.WriteString("# " + line.String() + "\n")
	}
	return b.String()
}

// envNote is how a setting's variable is named in its doc.
func envNote(s setting) string {
	if s.env == "" {
		return "Not read from the environment."
	}
	note := "Env: " + s.env
	if u := s.field.unit(); u != "" {
		note += " (" + u + ")"
	}
	return note + "."
}

// renderVMHCL is vm.hcl as the table says it: every setting, its doc and
// its default.
func renderVMHCL() string {
	c := Default()
	var b strings.Builder
	b.WriteString(vmHCLHeader)
	for _, s := range settings {
		fmt.Fprintf(&b, "\n%s%s = %s\n", wrap(s.doc+" "+envNote(s)), s.name, s.field.hclText(c))
	}
	return b.String()
}

// envLine matches a variable in .env.example, set or commented out.
var envLine = regexp.MustCompile(`(?m)^(?:# )?([A-Z][A-Z0-9_]*)=`)

// renderEnvSettings is the generated part of .env.example: every setting's
// variable that the hand-written part (rest) does not already list,
// commented out with its default.
func renderEnvSettings(rest string) string {
	listed := map[string]bool{}
	for _, m := range envLine.FindAllStringSubmatch(rest, -1) {
		listed[m[1]] = true
	}
	c := Default()
	var b strings.Builder
	b.WriteString(envBegin)
	for _, s := range settings {
		if s.env == "" || listed[s.env] {
			continue
		}
		doc := s.doc
		if u := s.field.unit(); u != "" {
			doc += " Value: " + u + "."
		}
		fmt.Fprintf(&b, "\n%s# %s=%s\n", wrap(doc), s.env, s.field.envText(c))
	}
	b.WriteString("\n" + envEnd)
	return b.String()
}

// splitEnvExample cuts .env.example around its generated part.
func splitEnvExample(t *testing.T, src string) (before, generated, after string) {
	t.Helper()
	i, j := strings.Index(src, envBegin), strings.Index(src, envEnd)
	if i < 0 || j < i {
		t.Fatalf(".env.example has no %q ... %q section", envBegin, envEnd)
	}
	return src[:i], src[i : j+len(envEnd)], src[j+len(envEnd):]
}

// The settings table in docs/configuration.md, when that file has these
// markers around it.
const (
	docsConfig = "../docs/configuration.md"
	docsBegin  = "<!-- settings table: generated from config/settings.go -->\n"
	docsEnd    = "<!-- end of settings table -->\n"
)

// renderMarkdown is the settings as a Markdown table, one row each.
func renderMarkdown() string {
	c := Default()
	var b strings.Builder
	b.WriteString(docsBegin + "| vm.hcl | environment | default | meaning |\n| --- | --- | --- | --- |\n")
	for _, s := range settings {
		env, def := "—", "`"+s.field.hclText(c)+"`"
		if s.env != "" {
			env = "`" + s.env + "`"
			if u := s.field.unit(); u != "" {
				env += " (" + u + ")"
			}
			if e := s.field.envText(c); e != "" && strconv.Quote(e) != s.field.hclText(c) && e != s.field.hclText(c) {
				def += " (`" + e + "`)"
			}
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.name, env, def, strings.NewReplacer("|", "\\|", "<", "&lt;").Replace(s.doc))
	}
	return b.String() + docsEnd
}

// checkDocs keeps docs/configuration.md's settings table in step with the
// table, once that file marks where its table is.
func checkDocs(t *testing.T) {
	src, err := os.ReadFile(docsConfig)
	i, j := strings.Index(string(src), docsBegin), strings.Index(string(src), docsEnd)
	if err != nil || i < 0 || j < i {
		t.Logf("%s has no %q ... %q section to keep in step (%v)", docsConfig, docsBegin, docsEnd, err)
		return
	}
	before, got, after := string(src[:i]), string(src[i:j+len(docsEnd)]), string(src[j+len(docsEnd):])
	if *update {
		if err := os.WriteFile(docsConfig, []byte(before+renderMarkdown()+after), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if got != renderMarkdown() {
		t.Errorf("%s's settings table is not what the table says; run: go test ./config -run TestRepoFiles -update\ngot:\n%s\nwant:\n%s", docsConfig, got, renderMarkdown())
	}
}

// TestRepoFiles: vm.hcl, .env.example and docs/configuration.md say what
// the table says.
func TestRepoFiles(t *testing.T) {
	checkDocs(t)
	env, err := os.ReadFile(envExample)
	if err != nil {
		t.Fatal(err)
	}
	before, generated, after := splitEnvExample(t, string(env))
	wantEnv := renderEnvSettings(before + after)
	if *update {
		if err := os.WriteFile(vmHCL, []byte(renderVMHCL()), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(envExample, []byte(before+wantEnv+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got, _ := os.ReadFile(vmHCL); string(got) != renderVMHCL() {
		t.Errorf("vm.hcl is not what the table says; run: go test ./config -run TestRepoFiles -update\ngot:\n%s\nwant:\n%s", got, renderVMHCL())
	}
	if generated != wantEnv {
		t.Errorf(".env.example's settings are not what the table says; run: go test ./config -run TestRepoFiles -update\ngot:\n%s\nwant:\n%s", generated, wantEnv)
	}
}

// The repository's vm.hcl documents every default: loading it changes
// nothing.
func TestRepoVMHCLIsTheDefaults(t *testing.T) {
	got, err := Load(vmHCL, env())
	if err != nil {
		t.Fatal(err)
	}
	want, err := Load("", env())
	if err != nil {
		t.Fatal(err)
	}
	if !same(got, want) {
		t.Errorf("Load(vm.hcl) = %+v; want the defaults %+v", got, want)
	}
}

// .env.example lists every variable vmd reads, each once, and sets
// CLAUDE_CODE_MAX_RETRIES so that a bad key fails fast (issue 9).
func TestEnvExampleListsEveryVariable(t *testing.T) {
	src, err := os.ReadFile(envExample)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, m := range envLine.FindAllStringSubmatch(string(src), -1) {
		count[m[1]]++
	}
	names := []string{"ANTHROPIC_API_KEY", FileEnv}
	for _, s := range settings {
		if s.env != "" {
			names = append(names, s.env) // not the deprecated names
		}
	}
	for _, name := range names {
		if count[name] != 1 {
			t.Errorf(".env.example lists %s %d times; want once", name, count[name])
		}
	}
	if !regexp.MustCompile(`(?m)^CLAUDE_CODE_MAX_RETRIES=[0-9]+$`).Match(src) {
		t.Error(".env.example does not set CLAUDE_CODE_MAX_RETRIES; want it set (not commented out) so a bad key fails fast")
	}
}
