package memstore

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
)

// The outbox of a memstore lives in process memory: it is NOT durable,
// and everything queued is lost with the process. It exists so that
// programs and tests can run the durable outbox's code paths without a
// database; use mysqlstore for delivery that survives a crash.

var _ outbox.Store = (*Store)(nil)

type leased struct {
	env   outbox.Envelope
	owner string
	until time.Time
}

// Enqueue implements [outbox.Store]. This outbox is kept in process
// memory: it is not durable.
func (s *Store) Enqueue(ctx context.Context, e outbox.Envelope) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.lock()
	defer s.mu.Unlock()
	ob := s.outbox
	e.Sealed = append([]byte(nil), e.Sealed...)
	if len(e.Sealed) == 0 {
		e.Sealed = nil
	}
	ob[e.ID] = &leased{env: e}
	return nil
}

// Claim implements [outbox.Store].
func (s *Store) Claim(ctx context.Context, worker string, now, leaseUntil time.Time, max int) ([]outbox.Envelope, error) {
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
	out := make([]outbox.Envelope, 0, min(max, len(due)))
	for _, l := range due[:min(max, len(due))] {
		l.owner, l.until = worker, leaseUntil
		l.env.Claims++
		out = append(out, l.env)
	}
	return out, nil
}

// holder returns the envelope id if worker holds its lease.
func (s *Store) holder(worker, id string) (*leased, error) {
	l, ok := s.outbox[id]
	if !ok || l.owner != worker || l.until.IsZero() {
		return nil, outbox.ErrLeaseLost
	}
	return l, nil
}

// Save implements [outbox.Store].
func (s *Store) Save(ctx context.Context, worker string, e outbox.Envelope, hold bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.lock()
	defer s.mu.Unlock()
	l, err := s.holder(worker, e.ID)
	if err != nil {
		return err
	}
	l.env.Sealed = append([]byte(nil), e.Sealed...)
	if len(e.Sealed) == 0 {
		l.env.Sealed = nil
	}
	l.env.KeyID, l.env.Attempts, l.env.NotBefore, l.env.Dead, l.env.LastError = e.KeyID, e.Attempts, e.NotBefore, e.Dead, e.LastError
	if !hold {
		l.owner, l.until = "", time.Time{}
	}
	return nil
}

// Replace implements [outbox.Store].
func (s *Store) Replace(ctx context.Context, worker string, remove []string, add []outbox.Envelope, holdUntil time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.lock()
	defer s.mu.Unlock()
	for _, id := range remove {
		if _, err := s.holder(worker, id); err != nil {
			return err
		}
	}
	for _, id := range remove {
		delete(s.outbox, id)
	}
	for _, e := range add {
		e.Sealed = append([]byte(nil), e.Sealed...)
		l := &leased{env: e}
		if !holdUntil.IsZero() {
			l.owner, l.until = worker, holdUntil
		}
		s.outbox[e.ID] = l
	}
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
		if n == limit {
			break
		}
		if l.env.Dead && l.env.CreatedAt.Before(before) {
			delete(s.outbox, id)
			n++
		}
	}
	return n, nil
}

// Stats implements [outbox.Store].
func (s *Store) Stats(ctx context.Context, limit int) (outbox.Stats, error) {
	if err := ctx.Err(); err != nil {
		return outbox.Stats{}, err
	}
	s.lock()
	defer s.mu.Unlock()
	var st outbox.Stats
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
			out = append(out, l.env)
		}
	}
	slices.SortFunc(out, func(a, b outbox.Envelope) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out[:min(limit, len(out))], nil
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
