// Package ready is how a vmd's parts say whether they can take work: each
// registers its checks with the Prober it is given, and /ready runs them
// all. Nothing here knows what is checked.
package ready

import (
	"context"
	"sync"
)

// Status is one check's answer, as /ready shows it.
type Status struct {
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
	// Version is what the check found running (the CLI's version).
	Version string `json:"version,omitempty"`
	// Path is the file or directory checked.
	Path string `json:"path,omitempty"`
}

// Check answers whether one part can take work. It must return soon, and
// by the time ctx ends.
type Check func(ctx context.Context) Status

// Prober holds the checks, in the order they were added.
type Prober struct {
	mu     sync.Mutex
	names  []string
	checks []Check
}

// Add registers a check under a name; a name added again replaces its
// check.
func (p *Prober) Add(name string, c Check) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, n := range p.names {
		if n == name {
			p.checks[i] = c
			return
		}
	}
	p.names, p.checks = append(p.names, name), append(p.checks, c)
}

// Result is one check's name and answer.
type Result struct {
	Name string
	Status
}

// Run runs every check, in order.
func (p *Prober) Run(ctx context.Context) []Result {
	p.mu.Lock()
	names, checks := p.names, p.checks
	p.mu.Unlock()
	out := make([]Result, len(checks))
	for i, c := range checks {
		out[i] = Result{Name: names[i], Status: c(ctx)}
	}
	return out
}
