package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/passreset/passreset/feedback"
)

// feedbackState is what the Store keeps for [feedback.Store].
type feedbackState struct {
	events     map[string]feedback.Event            // by ID
	suppressed map[feedback.Address]time.Time       // the latest suppressing event's Time
	cleared    map[feedback.Address]time.Time       // the latest Unsuppress
	byAddress  map[feedback.Address]map[string]bool // event IDs
}

// fbLock locks s and makes the feedback maps on first use.
func (s *Store) fbLock() *feedbackState {
	s.mu.Lock()
	if s.fb.events == nil {
		s.fb = feedbackState{
			events:     make(map[string]feedback.Event),
			suppressed: make(map[feedback.Address]time.Time),
			cleared:    make(map[feedback.Address]time.Time),
			byAddress:  make(map[feedback.Address]map[string]bool),
		}
	}
	return &s.fb
}

// RecordEvent implements [feedback.Store].
func (s *Store) RecordEvent(ctx context.Context, e feedback.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fb := s.fbLock()
	defer s.mu.Unlock()
	if _, ok := fb.events[e.ID]; ok {
		return fmt.Errorf("memstore: record event: %w", feedback.ErrReplayed)
	}
	fb.events[e.ID] = e
	if fb.byAddress[e.Address] == nil {
		fb.byAddress[e.Address] = make(map[string]bool)
	}
	fb.byAddress[e.Address][e.ID] = true
	if e.Suppresses() && e.Time.After(fb.suppressed[e.Address]) {
		fb.suppressed[e.Address] = e.Time
	}
	return nil
}

// Events implements [feedback.Store].
func (s *Store) Events(ctx context.Context, a feedback.Address, n int) ([]feedback.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fb := s.fbLock()
	defer s.mu.Unlock()
	evs := make([]feedback.Event, 0, len(fb.byAddress[a]))
	for id := range fb.byAddress[a] {
		evs = append(evs, fb.events[id])
	}
	slices.SortFunc(evs, func(x, y feedback.Event) int {
		return -cmp.Or(x.Time.Compare(y.Time), x.Received.Compare(y.Received), strings.Compare(x.ID, y.ID))
	})
	return evs[:min(n, len(evs))], nil
}

// Suppressed implements [feedback.Store].
func (s *Store) Suppressed(ctx context.Context, a feedback.Address) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	fb := s.fbLock()
	defer s.mu.Unlock()
	at, ok := fb.suppressed[a]
	return ok && at.After(fb.cleared[a]), nil
}

// Unsuppress implements [feedback.Store].
func (s *Store) Unsuppress(ctx context.Context, a feedback.Address, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fb := s.fbLock()
	defer s.mu.Unlock()
	if at.After(fb.cleared[a]) {
		fb.cleared[a] = at
	}
	return nil
}

// PruneEvents implements [feedback.Store]. The suppressions stay, in
// memory: one entry per address that ever bounced hard or complained.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	fb := s.fbLock()
	defer s.mu.Unlock()
	var n int64
	for id, e := range fb.events {
		if e.Received.Before(before) {
			delete(fb.events, id)
			delete(fb.byAddress[e.Address], id)
			if len(fb.byAddress[e.Address]) == 0 {
				delete(fb.byAddress, e.Address)
			}
			n++
		}
	}
	return n, nil
}
