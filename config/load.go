package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// loader carries one Load through its steps.
type loader struct {
	c        *Config
	getenv   func(string) string
	written  map[string]hcl.Range // where vm.hcl sets each setting, by name
	failed   map[string]bool      // settings already reported, not to check again
	warnings []Warning
}

// fileSchema is vm.hcl's schema: every setting's name and deprecated name,
// no blocks. Anything else written in the file is an error.
func fileSchema() *hcl.BodySchema {
	schema := &hcl.BodySchema{}
	for _, s := range settings {
		schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: s.name})
		if s.old != nil {
			schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: s.old.name})
		}
	}
	return schema
}

// decodeFile applies vm.hcl over the defaults and notes where each setting
// it writes is. Every problem in the file is reported at once.
func (l *loader) decodeFile(path string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w (set -config or VM_CONFIG to an existing vm.hcl, or neither for the defaults)", err)
	}
	f, diags := hclparse.NewParser().ParseHCL(src, path)
	if diags.HasErrors() {
		return diagError(diags)
	}
	content, diags := f.Body.Content(fileSchema())
	attrs := make([]*hcl.Attribute, 0, len(content.Attributes))
	for _, a := range content.Attributes {
		attrs = append(attrs, a)
	}
	slices.SortFunc(attrs, func(a, b *hcl.Attribute) int { return a.Range.Start.Byte - b.Range.Start.Byte })
	for _, a := range attrs {
		s, _ := lookup(a.Name)
		if a.Name != s.name {
			if _, both := content.Attributes[s.name]; both {
				diags = diags.Append(&hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Conflicting settings",
					Detail:   fmt.Sprintf("%s is the deprecated name of %s: delete %s.", a.Name, s.name, a.Name),
					Subject:  a.NameRange.Ptr(),
				})
				continue
			}
			l.warnings = append(l.warnings, deprecated(a.Name, s.name, a.NameRange.String()))
		}
		for _, d := range s.field.decode(l.c, a.Expr) {
			d.Detail = s.name + ": " + d.Detail
			diags = diags.Append(d)
		}
		l.written[s.name] = a.Expr.Range()
	}
	if diags.HasErrors() {
		return diagError(diags)
	}
	return nil
}

// diagError turns HCL diagnostics into one error line each, as
// file:line:column: summary: detail.
func diagError(diags hcl.Diagnostics) error {
	var errs []error
	for _, d := range diags.Errs() {
		var diag *hcl.Diagnostic
		if !errors.As(d, &diag) || diag.Subject == nil {
			errs = append(errs, d)
			continue
		}
		s := diag.Subject
		errs = append(errs, fmt.Errorf("%s:%d:%d: %s: %s", s.Filename, s.Start.Line, s.Start.Column, diag.Summary, diag.Detail))
	}
	return errors.Join(errs...)
}

// applyEnv overrides settings from the environment. A value that does not
// parse is an error naming the variable, never a silent default. A setting
// taken from the environment is no longer the file's: it leaves written.
func (l *loader) applyEnv() []error {
	var errs []error
	for _, s := range settings {
		if s.env == "" {
			continue
		}
		name, v := s.env, l.getenv(s.env)
		if s.old != nil {
			if old := l.getenv(s.old.env); old != "" {
				switch {
				case v == "":
					name, v = s.old.env, old
					l.warnings = append(l.warnings, deprecated(s.old.env, s.env, "environment"))
				case v != old:
					errs = append(errs, fmt.Errorf("%s and %s are both set, to different values: unset %s, the deprecated name of %s", s.env, s.old.env, s.old.env, s.env))
				}
			}
		}
		if v == "" {
			continue
		}
		if err := s.field.parse(l.c, v); err != nil {
			if s.secret {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			} else {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
			continue
		}
		delete(l.written, s.name)
	}
	return errs
}

// normalise makes every path absolute, once, so that no one below main
// resolves a path again or drops an error doing so: images_dir from vmd's
// working directory (empty: images in state_dir, unless that is
// ":memory:"), state_dir and workspace_dir after a leading $HOME or ~,
// mcp_config from workspace_dir (or "" when the default file is absent).
// Other empty paths are left for validate to report.
func (l *loader) normalise() []error {
	var errs []error
	c := l.c
	abs := func(name string, p *string) {
		if *p == "" && name != "workspace_dir" { // "" workspace is vmd's own
			return
		}
		path, err := expandHome(*p, l.getenv)
		if err == nil {
			path, err = filepath.Abs(path)
		}
		if err != nil {
			errs = append(errs, l.fail(name, err))
			return
		}
		*p = path
	}
	abs("workspace_dir", &c.WorkDir)
	if c.StateDir != MemoryStateDir {
		abs("state_dir", &c.StateDir)
		// Beside the state, so private to this vmd as its store is. With
		// ":memory:" images.Open makes a directory of its own instead.
		if c.ImagesDir == "" && c.StateDir != "" && !l.failed["state_dir"] {
			c.ImagesDir = filepath.Join(c.StateDir, "images")
		}
	}
	abs("images_dir", &c.ImagesDir)
	if mcp, err := expandHome(c.MCPConfig, l.getenv); err != nil {
		errs = append(errs, l.fail("mcp_config", err))
	} else if mcp, err = resolveMCPConfig(mcp, c.WorkDir); err != nil {
		errs = append(errs, l.fail("mcp_config", err))
	} else {
		c.MCPConfig = mcp
	}
	return errs
}

// expandHome replaces a leading $HOME or ~ with getenv("HOME").
func expandHome(path string, getenv func(string) string) (string, error) {
	for _, prefix := range []string{"$HOME", "~"} {
		rest, ok := strings.CutPrefix(path, prefix)
		if !ok || rest != "" && rest[0] != '/' {
			continue
		}
		home := ""
		if getenv != nil {
			home = getenv("HOME")
		}
		if home == "" {
			return "", fmt.Errorf("%q starts with %s but HOME is not set: set HOME, or write an absolute path", path, prefix)
		}
		return home + rest, nil
	}
	return path, nil
}

// resolveMCPConfig is the absolute path of the MCP servers file mcp, taken
// from workDir when relative, or "" when there is none: the default file
// may be absent, a path set on purpose may not (validate reports it).
func resolveMCPConfig(mcp, workDir string) (string, error) {
	if mcp == "" {
		return "", nil
	}
	path := mcp
	if !filepath.IsAbs(path) {
		path = filepath.Join(workDir, path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if mcp == DefaultMCPConfig {
		// ENOTDIR: workspace_dir is not a directory, reported on its own.
		if _, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return "", nil
		}
	}
	return abs, nil
}

// validate checks every setting, then the rules between settings.
func (l *loader) validate() []error {
	var errs []error
	for _, s := range settings {
		if err := s.field.validate(l.c); err != nil && !l.failed[s.name] {
			errs = append(errs, l.fail(s.name, err))
		}
	}
	for _, rule := range rules {
		if name, err := rule(l.c); err != nil && !l.failed[name] {
			errs = append(errs, l.fail(name, err))
		}
	}
	return errs
}

// fail notes that a setting is reported, and says so.
func (l *loader) fail(name string, err error) error {
	if l.failed == nil {
		l.failed = map[string]bool{}
	}
	l.failed[name] = true
	return l.settingError(name, err)
}

// settingError prefixes err with the setting's name and, when vm.hcl sets
// it, with where.
func (l *loader) settingError(name string, err error) error {
	err = fmt.Errorf("%s: %w", name, err)
	if r, ok := l.written[name]; ok {
		err = fmt.Errorf("%s:%d:%d: %w", r.Filename, r.Start.Line, r.Start.Column, err)
	}
	return err
}
