package memstore

import (
	"context"
	"time"
)

// Renew implements [outbox.Store].
func (s *Store) Renew(ctx context.Context, worker string, ids []string, leaseUntil time.Time) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.lock()
	defer s.mu.Unlock()
	var lost []string
	for _, id := range ids {
		l, err := s.holder(worker, id)
		if err != nil {
			lost = append(lost, id)
			continue
		}
		l.until = leaseUntil
	}
	return lost, nil
}

// Reserve implements [outbox.Store]. The budget lives in process memory,
// so it is shared only by the Services that share this Store.
func (s *Store) Reserve(ctx context.Context, key string, now time.Time, interval time.Duration, burst int) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	s.lock()
	defer s.mu.Unlock()
	if s.budget == nil {
		s.budget = map[string]time.Time{}
	}
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
	if s.budget == nil {
		s.budget = map[string]time.Time{}
	}
	if until.After(s.budget[key]) {
		s.budget[key] = until
	}
	return nil
}
