package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"
)

// A kind is how one Go type is read from vm.hcl and from the environment,
// and how it is written back (in vm.hcl and .env.example).
type kind[T any] struct {
	decode func(hcl.Expression) (T, hcl.Diagnostics)
	parse  func(string) (T, error) // an environment variable's value
	hcl    func(T) string          // the value as vm.hcl writes it
	env    func(T) string          // the value as .env.example writes it
	unit   string                  // what the environment variable counts, if not obvious
	clone  func(T) T               // a copy that shares no memory; nil: plain assignment
}

// field binds a setting to its Config field, its default and its check.
type field[T any] struct {
	get   func(*Config) *T
	def   T
	kind  kind[T]
	check func(T) error // nil: any value the kind parses is valid
}

// value is a field with its type hidden, so that one table holds every
// setting whatever its type.
type value interface {
	reset(c *Config)
	decode(c *Config, expr hcl.Expression) hcl.Diagnostics
	parse(c *Config, s string) error
	validate(c *Config) error
	hclText(c *Config) string
	envText(c *Config) string
	unit() string
	logValue(c *Config) any
	ptr(c *Config) any // the field's address, for the test that the table covers Config
}

func (f *field[T]) reset(c *Config) {
	v := f.def
	if f.kind.clone != nil {
		v = f.kind.clone(v)
	}
	*f.get(c) = v
}

func (f *field[T]) decode(c *Config, expr hcl.Expression) hcl.Diagnostics {
	v, diags := f.kind.decode(expr)
	if !diags.HasErrors() {
		*f.get(c) = v
	}
	return diags
}

func (f *field[T]) parse(c *Config, s string) error {
	v, err := f.kind.parse(s)
	if err == nil {
		*f.get(c) = v
	}
	return err
}

func (f *field[T]) validate(c *Config) error {
	if f.check == nil {
		return nil
	}
	return f.check(*f.get(c))
}

func (f *field[T]) hclText(c *Config) string { return f.kind.hcl(*f.get(c)) }
func (f *field[T]) envText(c *Config) string { return f.kind.env(*f.get(c)) }
func (f *field[T]) unit() string             { return f.kind.unit }
func (f *field[T]) logValue(c *Config) any   { return *f.get(c) }
func (f *field[T]) ptr(c *Config) any        { return f.get(c) }

// decodeAs reads an expression as the Go type T, with gohcl's diagnostics
// ("Unsuitable value type" where it is written) for a value of another type.
// It does what gohcl.DecodeExpression does without importing gohcl, whose
// hclwrite and go-cmp dependencies would cost every start of vmd their
// package initialisation and the binary their size.
func decodeAs[T any](expr hcl.Expression) (T, hcl.Diagnostics) {
	var v T
	val, diags := expr.Value(nil)
	if diags.HasErrors() {
		return v, diags
	}
	unsuitable := func(err error) hcl.Diagnostics {
		return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unsuitable value type",
			Detail: "Unsuitable value: " + err.Error(), Subject: expr.StartRange().Ptr(), Context: expr.Range().Ptr()})
	}
	ty, err := gocty.ImpliedType(&v)
	if err != nil {
		return v, unsuitable(err)
	}
	if val, err = convert.Convert(val, ty); err != nil {
		return v, unsuitable(err)
	}
	if err := gocty.FromCtyValue(val, &v); err != nil {
		return v, unsuitable(err)
	}
	return v, diags
}

// text is a string setting.
func text(get func(*Config) *string, def string, check func(string) error) *field[string] {
	return &field[string]{get: get, def: def, check: check, kind: kind[string]{
		decode: decodeAs[string],
		parse:  func(s string) (string, error) { return s, nil },
		hcl:    strconv.Quote,
		env:    func(s string) string { return s },
	}}
}

// number is a whole-number setting.
func number(get func(*Config) *int, def int, check func(int) error) *field[int] {
	return &field[int]{get: get, def: def, check: check, kind: kind[int]{
		decode: decodeAs[int],
		parse: func(s string) (int, error) {
			n, err := strconv.Atoi(s)
			if err != nil {
				return 0, errors.New("not a whole number")
			}
			return n, nil
		},
		hcl: strconv.Itoa,
		env: strconv.Itoa,
	}}
}

// money is an amount in US dollars, not negative: 0.5 in vm.hcl and in the
// environment.
func money(get func(*Config) *float64, def float64) *field[float64] {
	format := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	return &field[float64]{get: get, def: def, check: notNegativeMoney, kind: kind[float64]{
		decode: decodeAs[float64],
		parse: func(s string) (float64, error) {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, errors.New("not an amount of dollars (0.5)")
			}
			return v, nil
		},
		hcl:  format,
		env:  format,
		unit: "US dollars",
	}}
}

// boolean is a true/false setting; the environment takes what
// strconv.ParseBool takes (true, false, 1, 0, ...).
func boolean(get func(*Config) *bool, def bool) *field[bool] {
	return &field[bool]{get: get, def: def, kind: kind[bool]{
		decode: decodeAs[bool],
		parse: func(s string) (bool, error) {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return false, errors.New("not true or false")
			}
			return b, nil
		},
		hcl: strconv.FormatBool,
		env: strconv.FormatBool,
	}}
}

// list is a list of strings: ["a", "b"] in vm.hcl, a,b in the environment
// (spaces around each item and empty items are dropped).
func list(get func(*Config) *[]string, def []string, check func([]string) error) *field[[]string] {
	return &field[[]string]{get: get, def: def, check: check, kind: kind[[]string]{
		decode: func(expr hcl.Expression) ([]string, hcl.Diagnostics) {
			v, diags := decodeAs[[]string](expr)
			if len(v) == 0 {
				v = nil // [] is no items, as an unset list is
			}
			return v, diags
		},
		parse: func(s string) ([]string, error) {
			var items []string
			for item := range strings.SplitSeq(s, ",") {
				if item = strings.TrimSpace(item); item != "" {
					items = append(items, item)
				}
			}
			return items, nil
		},
		hcl: func(v []string) string {
			quoted := make([]string, len(v))
			for i, s := range v {
				quoted[i] = strconv.Quote(s)
			}
			return "[" + strings.Join(quoted, ", ") + "]"
		},
		env:   func(v []string) string { return strings.Join(v, ",") },
		unit:  "comma-separated",
		clone: slices.Clone[[]string],
	}}
}

// millis is a duration: a string such as "5m" in vm.hcl, milliseconds in
// the environment (COMMAND_TIMEOUT_MS and its kin predate vm.hcl).
func millis(get func(*Config) *time.Duration, def time.Duration, check func(time.Duration) error) *field[time.Duration] {
	return &field[time.Duration]{get: get, def: def, check: check, kind: kind[time.Duration]{
		decode: decodeDuration,
		parse: func(s string) (time.Duration, error) {
			const limit = int64(1<<63-1) / int64(time.Millisecond)
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n > limit || n < -limit {
				return 0, errors.New("not a whole number of milliseconds")
			}
			return time.Duration(n) * time.Millisecond, nil
		},
		hcl:  func(d time.Duration) string { return strconv.Quote(formatDuration(d)) },
		env:  func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) },
		unit: "milliseconds",
	}}
}

// duration is a duration written the same way in vm.hcl and in the
// environment: "168h", "90m".
func duration(get func(*Config) *time.Duration, def time.Duration, check func(time.Duration) error) *field[time.Duration] {
	return &field[time.Duration]{get: get, def: def, check: check, kind: kind[time.Duration]{
		decode: decodeDuration,
		parse: func(s string) (time.Duration, error) {
			d, err := time.ParseDuration(s)
			if err != nil {
				return 0, errors.New(`not a duration; write it like "90m" or "168h"`)
			}
			return d, nil
		},
		hcl:  func(d time.Duration) string { return strconv.Quote(formatDuration(d)) },
		env:  formatDuration,
		unit: `a duration such as "168h"`,
	}}
}

// decodeDuration reads a duration string, reporting a bad one where it is
// written.
func decodeDuration(expr hcl.Expression) (time.Duration, hcl.Diagnostics) {
	s, diags := decodeAs[string](expr)
	if diags.HasErrors() {
		return 0, diags
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid duration",
			Detail:   fmt.Sprintf("%q is not a duration; write it like \"90s\", \"5m\" or \"1h\".", s),
			Subject:  expr.Range().Ptr(),
		}}
	}
	return d, nil
}

// formatDuration writes d the short way a person would: "5m", not "5m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// mebibyte is the unit of sizes in the environment.
const mebibyte = 1 << 20

// size is an amount of bytes: a string such as "1GiB" or "500MiB" in
// vm.hcl, whole mebibytes in the environment (MIN_FREE_DISK_MB).
func size(get func(*Config) *int64, def int64, check func(int64) error) *field[int64] {
	return &field[int64]{get: get, def: def, check: check, kind: kind[int64]{
		decode: decodeSize,
		parse: func(s string) (int64, error) {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 || n > 1<<63/mebibyte-1 {
				return 0, errors.New("not a whole number of mebibytes")
			}
			return n * mebibyte, nil
		},
		hcl:  func(n int64) string { return strconv.Quote(formatSize(n)) },
		env:  func(n int64) string { return strconv.FormatInt(n/mebibyte, 10) },
		unit: "MiB",
	}}
}

// sizeUnits are the suffixes a size takes, largest first.
var sizeUnits = []struct {
	suffix string
	bytes  int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// parseSize reads "1GiB", "512MiB", "0B": a whole number and a binary unit.
func parseSize(s string) (int64, error) {
	for _, u := range sizeUnits {
		digits, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(digits, 10, 64)
		if err != nil || n < 0 || n > (1<<63-1)/u.bytes {
			break
		}
		return n * u.bytes, nil
	}
	return 0, fmt.Errorf("%q is not a size; write it like \"512MiB\" or \"1GiB\" (B, KiB, MiB, GiB, TiB)", s)
}

// formatSize writes n in the largest unit that divides it.
func formatSize(n int64) string {
	for _, u := range sizeUnits {
		if n%u.bytes == 0 && (n != 0 || u.bytes == 1) {
			return strconv.FormatInt(n/u.bytes, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// decodeSize reads a size string, reporting a bad one where it is written.
func decodeSize(expr hcl.Expression) (int64, hcl.Diagnostics) {
	s, diags := decodeAs[string](expr)
	if diags.HasErrors() {
		return 0, diags
	}
	n, err := parseSize(s)
	if err != nil {
		return 0, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid size",
			Detail:   err.Error() + ".",
			Subject:  expr.Range().Ptr(),
		}}
	}
	return n, nil
}
