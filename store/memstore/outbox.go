package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
)

// The outbox of a memstore lives in process memory: it is NOT durable,
// and everything queued is lost with the process. It exists so that
// programs and tests can run the outbox's code paths without a database;
// use mysqlstore or pgstore for delivery that survives a crash.

type leased struct {
	env   outbox.Envelope
	owner string
	until time.Time // zero when not leased
}

// copyEnvelope returns e with Sealed copied, so that the store never
// shares memory with its caller.
func copyEnvelope(e outbox.Envelope) outbox.Envelope {
	e.Sealed = slices.Clone(e.Sealed)
	return e
}

// Enqueue implements [outbox.Store]. The outbox is kept in process memory:
// it is not durable. Like a database's unique key, it refuses an ID that
// is already queued.
func (s *Store) Enqueue(ctx context.Context, e outbox.Envelope) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.lock()
	defer s.mu.Unlock()
	if _, ok := s.outbox[e.ID]; ok {
		return fmt.Errorf("memstore: enqueue: envelope %q is already queued", e.ID)
	}
	s.outbox[e.ID] = &leased{env: copyEnvelope(e)}
	return nil
}

// Claim implements [outbox.Store].
func (s *Store) Claim(ctx context.Context, worker string, now, leaseUntil time.Time, limit int) ([]outbox.Envelope, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.lock()
	defer s.mu.Unlock()
	var due []*leased
	for _, l := range s.outbox {
		if !l.env.Dead && !l.env.NotBefore.After(now) && !l.until.After(now) {
			due = append(due, l)
		}
	}
	slices.SortFunc(due, func(a, b *leased) int {
		return cmp.Or(a.env.NotBefore.Compare(b.env.NotBefore), a.env.CreatedAt.Compare(b.env.CreatedAt), cmp.Compare(a.env.ID, b.env.ID))
	})
	due = due[:min(len(due), max(0, limit))]
	out := make([]outbox.Envelope, 0, len(due))
	for _, l := range due {
		l.owner, l.until = worker, leaseUntil
		l.env.Claims++
		out = append(out, copyEnvelope(l.env))
	}
	return out, nil
}

// held returns the envelope id if worker holds it.
func (s *Store) held(worker, id string) (*leased, bool) {
	l, ok := s.outbox[id]
	if !ok || l.owner != worker || l.until.IsZero() {
		return nil, false
	}
	return l, true
}

// Renew implements [outbox.Store].
func (s *Store) Renew(ctx context.Context, worker string, ids []string, leaseUntil time.Time) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.lock()
	defer s.mu.Unlock()
	var lost []string
	for _, id := range ids {
		l, ok := s.held(worker, id)
		if !ok {
			lost = append(lost, id)
			continue
		}
		l.until = leaseUntil
	}
	return lost, nil
}

// Save implements [outbox.Store].
func (s *Store) Save(ctx context.Context, worker string, e outbox.Envelope, hold bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.lock()
	defer s.mu.Unlock()
	l, ok := s.held(worker, e.ID)
	if !ok {
		return outbox.ErrLeaseLost
	}
	l.env.Sealed = slices.Clone(e.Sealed)
	l.env.KeyID, l.env.Attempts, l.env.NotBefore, l.env.Dead, l.env.LastError = e.KeyID, e.Attempts, e.NotBefore, e.Dead, e.LastError
	if !hold {
		l.owner, l.until = "", time.Time{}
	}
	return nil
}

// Replace implements [outbox.Store]. Like a database's unique key, it
// refuses to add an ID that is queued and not among those it removes.
func (s *Store) Replace(ctx context.Context, worker string, remove []string, add []outbox.Envelope, holdUntil time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.lock()
	defer s.mu.Unlock()
	for _, id := range remove {
		if _, ok := s.held(worker, id); !ok {
			return outbox.ErrLeaseLost
		}
	}
	for _, e := range add {
		if _, ok := s.outbox[e.ID]; ok && !slices.Contains(remove, e.ID) {
			return fmt.Errorf("memstore: replace: envelope %q is already queued", e.ID)
		}
	}
	for _, id := range remove {
		delete(s.outbox, id)
	}
	for _, e := range add {
		l := &leased{env: copyEnvelope(e)}
		if !holdUntil.IsZero() {
			l.owner, l.until = worker, holdUntil
		}
		s.outbox[e.ID] = l
	}
	return nil
}

// Stats implements [outbox.Store].
func (s *Store) Stats(ctx context.Context, limit int) (outbox.Stats, error) {
	if err := ctx.Err(); err != nil {
		return outbox.Stats{}, err
	}
	s.lock()
	defer s.mu.Unlock()
	var st outbox.Stats
	limit = max(limit, 0)
	for _, l := range s.outbox {
		if l.env.Dead {
			st.Dead = min(st.Dead+1, limit)
			continue
		}
		st.Pending = min(st.Pending+1, limit)
		if st.Oldest.IsZero() || l.env.CreatedAt.Before(st.Oldest) {
			st.Oldest = l.env.CreatedAt
		}
	}
	return st, nil
}

// Dead implements [outbox.Store].
func (s *Store) Dead(ctx context.Context, limit int) ([]outbox.Envelope, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.lock()
	defer s.mu.Unlock()
	var out []outbox.Envelope
	for _, l := range s.outbox {
		if l.env.Dead {
			out = append(out, copyEnvelope(l.env))
		}
	}
	slices.SortFunc(out, func(a, b outbox.Envelope) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out[:max(0, min(limit, len(out)))], nil
}

// Revive implements [outbox.Store].
func (s *Store) Revive(ctx context.Context, id string, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.lock()
	defer s.mu.Unlock()
	l, ok := s.outbox[id]
	if !ok || !l.env.Dead {
		return reset.ErrNotFound
	}
	l.env.Dead, l.env.Attempts, l.env.Claims, l.env.NotBefore = false, 0, 0, now
	l.owner, l.until = "", time.Time{}
	return nil
}

// PruneDead implements [outbox.Store].
func (s *Store) PruneDead(ctx context.Context, before time.Time, limit int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.lock()
	defer s.mu.Unlock()
	n := 0
	for id, l := range s.outbox {
		if n >= limit {
			break
		}
		if l.env.Dead && l.env.CreatedAt.Before(before) {
			delete(s.outbox, id)
			n++
		}
	}
	return n, nil
}

// Reserve implements [outbox.Store]. The budget lives in process memory,
// so it is shared only by the outboxes that share this Store.
func (s *Store) Reserve(ctx context.Context, key string, now time.Time, interval time.Duration, burst int) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	s.lock()
	defer s.mu.Unlock()
	t := s.budget[key]
	if now.After(t) {
		t = now
	}
	s.budget[key] = t.Add(interval)
	at := t.Add(-time.Duration(burst-1) * interval)
	if now.After(at) {
		at = now
	}
	return at, nil
}

// Pause implements [outbox.Store].
func (s *Store) Pause(ctx context.Context, key string, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.lock()
	defer s.mu.Unlock()
	if until.After(s.budget[key]) {
		s.budget[key] = until
	}
	return nil
}

// Budget implements [outbox.BudgetReader]: it returns the budget's tat
// without reserving, the zero time for a key never used.
func (s *Store) Budget(ctx context.Context, key string) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	s.lock()
	defer s.mu.Unlock()
	return s.budget[key], nil
}
