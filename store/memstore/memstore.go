// Package memstore is an in-memory [reset.Store]: the default for
// development, tests and single-process programs. Records live in process
// memory and are lost when the process ends.
//
// It implements [reset.Pruner], [reset.Cooldowner], [reset.Quota],
// [feedback.Store] and [outbox.Store] (an outbox that is not durable, with a budget shared
// within the process only: see [Store.Enqueue]), and removes expired
// records, cooldowns and daily budgets by itself as it goes, so that memory stays bounded by the number of live
// tokens without a background goroutine. Delivery feedback events stay
// until [Store.PruneEvents], and suppressions for good.
package memstore

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/passreset/passreset/feedback"
	"github.com/passreset/passreset/internal/quota"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
)

// sweepEvery is how often, in the store's own time (taken from the records
// it is given), expired entries are swept.
const sweepEvery = time.Minute

// Store is an in-memory token store. The zero value is an empty store
// ready to use, like [New]'s. It is safe for concurrent use.
type Store struct {
	mu     sync.Mutex
	byHash map[reset.Hash]reset.Record
	byUser map[string]reset.Hash
	cool   map[reset.Hash]cooling
	quota  map[reset.Hash]budget
	sweep  time.Time // next sweep at or after this time

	secret []byte               // the cooldown secret, made on first use
	outbox map[string]*leased   // see outbox.go
	budget map[string]time.Time // see outbox.go

	fb feedbackState // see feedback.go
}

var (
	_ reset.Store         = (*Store)(nil)
	_ reset.Pruner        = (*Store)(nil)
	_ reset.Cooldowner    = (*Store)(nil)
	_ reset.Quota         = (*Store)(nil)
	_ outbox.Store        = (*Store)(nil)
	_ outbox.BudgetReader = (*Store)(nil)
	_ feedback.Store      = (*Store)(nil)
)

// New returns an empty Store.
func New() *Store { return new(Store) }

// lock locks s and makes its maps on first use, so that the zero Store
// works.
func (s *Store) lock() {
	s.mu.Lock()
	if s.byHash == nil {
		s.byHash = make(map[reset.Hash]reset.Record)
		s.byUser = make(map[string]reset.Hash)
		s.cool = make(map[reset.Hash]cooling)
		s.quota = make(map[reset.Hash]budget)
		s.outbox = make(map[string]*leased)
		s.budget = make(map[string]time.Time)
	}
}

// Rotate implements [reset.Store].
func (s *Store) Rotate(ctx context.Context, rec reset.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.lock()
	defer s.mu.Unlock()
	if old, ok := s.byUser[rec.UserID]; ok {
		delete(s.byHash, old)
	}
	s.byHash[rec.Hash] = rec
	s.byUser[rec.UserID] = rec.Hash
	s.maybeSweep(rec.CreatedAt)
	return nil
}

// Lookup implements [reset.Store].
func (s *Store) Lookup(ctx context.Context, h reset.Hash) (reset.Record, error) {
	if err := ctx.Err(); err != nil {
		return reset.Record{}, err
	}
	s.lock()
	defer s.mu.Unlock()
	rec, ok := s.byHash[h]
	if !ok {
		return reset.Record{}, reset.ErrNotFound
	}
	return rec, nil
}

// Consume implements [reset.Store].
func (s *Store) Consume(ctx context.Context, h reset.Hash) (reset.Record, error) {
	if err := ctx.Err(); err != nil {
		return reset.Record{}, err
	}
	s.lock()
	defer s.mu.Unlock()
	rec, ok := s.byHash[h]
	if !ok {
		return reset.Record{}, reset.ErrNotFound
	}
	s.remove(rec)
	return rec, nil
}

// RevokeAll implements [reset.Store].
func (s *Store) RevokeAll(ctx context.Context, userID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.lock()
	defer s.mu.Unlock()
	if h, ok := s.byUser[userID]; ok {
		s.remove(s.byHash[h])
	}
	return nil
}

// Prune implements [reset.Pruner].
func (s *Store) Prune(ctx context.Context, now time.Time, limit int) (reset.Pruned, error) {
	if err := ctx.Err(); err != nil {
		return reset.Pruned{}, err
	}
	s.lock()
	defer s.mu.Unlock()
	var n reset.Pruned
	for _, rec := range s.byHash {
		if n.Tokens == limit {
			break
		}
		if !now.Before(rec.ExpiresAt) {
			s.remove(rec)
			n.Tokens++
		}
	}
	for k, c := range s.cool {
		if n.Cooldowns == limit {
			break
		}
		if !now.Before(c.until) {
			delete(s.cool, k)
			n.Cooldowns++
		}
	}
	for k, b := range s.quota {
		if n.Quotas == limit {
			break
		}
		if !now.Before(b.ends) {
			delete(s.quota, k)
			n.Quotas++
		}
	}
	return n, nil
}

// Cooldown implements [reset.Cooldowner].
func (s *Store) Cooldown(ctx context.Context, key reset.Hash, owner string, now, until time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.lock()
	defer s.mu.Unlock()
	s.maybeSweep(now)
	if c, ok := s.cool[key]; ok && now.Before(c.until) && (owner == "" || c.owner != owner) {
		return false, nil
	}
	s.cool[key] = cooling{until, owner}
	return true, nil
}

// CooldownSecret implements [reset.Cooldowner]: 32 random bytes made on
// the first call, the same for the life of the Store.
func (s *Store) CooldownSecret(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.lock()
	defer s.mu.Unlock()
	if s.secret == nil {
		s.secret = make([]byte, 32)
		rand.Read(s.secret) // never fails
	}
	return slices.Clone(s.secret), nil
}

// Spend implements [reset.Quota].
func (s *Store) Spend(ctx context.Context, key reset.Hash, owner string, now time.Time, window time.Duration, limit int) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := quota.CheckLimit(limit); err != nil {
		return false, fmt.Errorf("memstore: spend: %w", err)
	}
	s.lock()
	defer s.mu.Unlock()
	s.maybeSweep(now)
	next, ok := quota.Spend(s.quota[key].uses, quota.OwnerOf(owner), now, window, limit)
	if next != nil {
		s.quota[key] = budget{next, quota.Last(next).Add(window)}
	}
	return ok, nil
}

// budget is the recorded uses of one key's budget, which no longer count
// from ends on.
type budget struct {
	uses []quota.Use
	ends time.Time
}

// cooling is one running cooldown.
type cooling struct {
	until time.Time
	owner string
}

// Len returns the number of records held, for tests and metrics.
func (s *Store) Len() int {
	s.lock()
	defer s.mu.Unlock()
	return len(s.byHash)
}

func (s *Store) remove(rec reset.Record) {
	delete(s.byHash, rec.Hash)
	if cur, ok := s.byUser[rec.UserID]; ok && cur == rec.Hash {
		delete(s.byUser, rec.UserID)
	}
}

// maybeSweep prunes when now has passed the next sweep time. A sweep costs
// O(live entries) and runs at most once per sweepEvery of store time, so
// its cost per operation stays small.
func (s *Store) maybeSweep(now time.Time) {
	if now.Before(s.sweep) {
		return
	}
	for _, rec := range s.byHash {
		if !now.Before(rec.ExpiresAt) {
			s.remove(rec)
		}
	}
	for k, c := range s.cool {
		if !now.Before(c.until) {
			delete(s.cool, k)
		}
	}
	for k, b := range s.quota {
		if !now.Before(b.ends) {
			delete(s.quota, k)
		}
	}
	s.sweep = now.Add(sweepEvery)
}
