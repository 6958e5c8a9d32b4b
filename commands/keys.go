package commands

import (
	"bytes"
	"context"
	"errors"
	"sync"

	"github.com/vmd-dev/vmd/store"
)

// maxKeys bounds the idempotency keys held in memory: the newest, as many
// as the store keeps records by default.
const maxKeys = 10000

// keys are the idempotency keys seen since start, each with its command:
// the live one, or the id of one whose end is stored. The store is the
// truth across restarts; the keys in memory let a retry find its command
// while the store cannot be read, and make concurrent submits of one key
// wait for the first to decide. Guarded by Service.mu.
type keys struct {
	m     map[string]*keyEntry
	order []string // oldest first
}

// keyEntry is one key. A submit that found no command for it reserves it
// (ready open) until it has a command or gives up.
type keyEntry struct {
	key   string
	hash  []byte
	id    string   // the command's, once it has one
	cmd   *Command // the live command; nil once its end is stored
	ready chan struct{}
}

func (k *keys) init() { k.m = map[string]*keyEntry{} }

func (e *keyEntry) decided() bool {
	select {
	case <-e.ready:
		return true
	default:
		return false
	}
}

// findKey finds the command holding req's key. It returns a Submission for
// a key a command holds, an error for one it cannot tell (ErrKeyReused,
// ErrStoreUnavailable, or ctx's), or else the key reserved for the caller,
// who must hold or release it.
func (s *Service) findKey(ctx context.Context, req Request) (Submission, *keyEntry, error) {
	for {
		s.mu.Lock()
		e := s.keys.m[req.Key]
		if e == nil {
			e = s.keys.reserve(req.Key, req.BodyHash)
			s.mu.Unlock()
			return s.lookupKey(ctx, e, req)
		}
		if !e.decided() {
			s.mu.Unlock()
			select {
			case <-e.ready: // decided: look again
				continue
			case <-ctx.Done():
				return Submission{}, nil, ctx.Err()
			}
		}
		hash, c, id := e.hash, e.cmd, e.id
		s.mu.Unlock()
		switch {
		case !bytes.Equal(hash, req.BodyHash):
			return Submission{}, nil, ErrKeyReused
		case c != nil:
			return Submission{Command: c, Attached: true}, nil, nil
		}
		rec, err := store.Record{}, store.ErrNotFound // without a store, as if pruned
		if s.st != nil {
			rec, err = s.st.Get(ctx, id)
		}
		switch {
		case errors.Is(err, store.ErrNotFound): // pruned with its record: the key is free again
			s.mu.Lock()
			if s.keys.m[req.Key] == e {
				delete(s.keys.m, req.Key)
			}
			s.mu.Unlock()
		case err != nil:
			s.log.Error("cannot read the command holding an idempotency key; refusing the request", "error", err)
			return Submission{}, nil, ErrStoreUnavailable
		default:
			return Submission{Ended: &rec}, nil, nil
		}
	}
}

// lookupKey asks the store about a key not seen since start, which e
// holds reserved.
func (s *Service) lookupKey(ctx context.Context, e *keyEntry, req Request) (Submission, *keyEntry, error) {
	if s.st == nil {
		return Submission{}, e, nil
	}
	rec, err := s.st.ByKey(ctx, req.Key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Submission{}, e, nil
	case err != nil:
		s.keys.release(&s.mu, e)
		s.log.Error("cannot look up an idempotency key; refusing the request", "error", err)
		return Submission{}, nil, ErrStoreUnavailable
	}
	s.mu.Lock()
	e.hash, e.id = rec.BodyHash, rec.ID
	close(e.ready)
	s.mu.Unlock()
	if !bytes.Equal(rec.BodyHash, req.BodyHash) {
		return Submission{}, nil, ErrKeyReused
	}
	return Submission{Ended: &rec}, nil, nil
}

// reserve adds an undecided entry for key.
func (k *keys) reserve(key string, hash []byte) *keyEntry {
	e := &keyEntry{key: key, hash: hash, ready: make(chan struct{})}
	k.m[key] = e
	k.order = append(k.order, key)
	if len(k.order) > 2*maxKeys {
		k.trim()
	}
	return e
}

// trim forgets the oldest keys whose commands are stored, down to maxKeys:
// the store still has them.
func (k *keys) trim() {
	kept := k.order[:0]
	drop := len(k.order) - maxKeys
	for _, key := range k.order {
		e := k.m[key]
		switch {
		case e == nil:
		case drop > 0 && e.decided() && e.cmd == nil:
			delete(k.m, key)
			drop--
		default:
			kept = append(kept, key)
		}
	}
	k.order = kept
}

// hold gives a reserved key its command.
func (k *keys) hold(mu *sync.Mutex, e *keyEntry, c *Command) {
	if e == nil {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	e.cmd, e.id = c, c.rec.ID
	close(e.ready)
}

// release gives a reserved key up: no command has it.
func (k *keys) release(mu *sync.Mutex, e *keyEntry) {
	if e == nil {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	if k.m[e.key] == e {
		delete(k.m, e.key)
	}
	if !e.decided() {
		close(e.ready)
	}
}

// stored notes that c's end is in the store; the caller holds
// Service.mu.
func (k *keys) stored(c *Command) {
	if e := k.m[c.rec.IdempotencyKey]; e != nil && e.cmd == c {
		e.cmd = nil
	}
}
