// Package feedbacktest holds the tests every [feedback.Store] must pass.
// A store's own tests call [Run] with a function that returns the store
// to test.
package feedbacktest

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/feedback"
)

// Run runs the contract tests of [feedback.Store] against stores made by
// newStore, which may return the same store for every call: the tests
// use addresses and event IDs of their own, and never assume the store
// empty.
func Run(t *testing.T, newStore func(t *testing.T) feedback.Store) {
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newStore(t)) })
	t.Run("Replay", func(t *testing.T) { testReplay(t, newStore(t)) })
	t.Run("ConcurrentReplay", func(t *testing.T) { testConcurrentReplay(t, newStore(t)) })
	t.Run("Order", func(t *testing.T) { testOrder(t, newStore(t)) })
	t.Run("Suppression", func(t *testing.T) { testSuppression(t, newStore(t)) })
	t.Run("Prune", func(t *testing.T) { testPrune(t, newStore(t)) })
}

// base is the time the events of the tests happen around.
var base = time.Date(2030, 5, 6, 7, 8, 9, 123456000, time.UTC)

func address() feedback.Address {
	var a feedback.Address
	rand.Read(a[:])
	return a
}

func event(a feedback.Address, typ feedback.Type, at time.Duration) feedback.Event {
	e := feedback.Event{
		ID:         "msg_" + rand.Text(),
		Type:       typ,
		Time:       base.Add(at),
		Received:   base.Add(at + time.Second),
		Address:    a,
		MessageID:  rand.Text(),
		ProviderID: "4ef9a417-02e9-4d39-ad75-9611e0fcc33c",
	}
	if typ == feedback.Bounced {
		e.Bounce, e.Detail = feedback.Soft, "MailboxFull"
	}
	return e
}

func record(t *testing.T, s feedback.Store, e feedback.Event) {
	t.Helper()
	if err := s.RecordEvent(context.Background(), e); err != nil {
		t.Fatalf("RecordEvent(%s %s): %v", e.ID, e.Type, err)
	}
}

func events(t *testing.T, s feedback.Store, a feedback.Address, n int) []feedback.Event {
	t.Helper()
	evs, err := s.Events(context.Background(), a, n)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	return evs
}

func suppressed(t *testing.T, s feedback.Store, a feedback.Address) bool {
	t.Helper()
	ok, err := s.Suppressed(context.Background(), a)
	if err != nil {
		t.Fatalf("Suppressed: %v", err)
	}
	return ok
}

func same(a, b feedback.Event) bool {
	return a.ID == b.ID && a.Type == b.Type && a.Bounce == b.Bounce && a.Detail == b.Detail &&
		a.Time.Equal(b.Time) && a.Received.Equal(b.Received) && a.Address == b.Address &&
		a.MessageID == b.MessageID && a.ProviderID == b.ProviderID
}

func testRoundTrip(t *testing.T, s feedback.Store) {
	a := address()
	if got := events(t, s, a, 10); len(got) != 0 {
		t.Fatalf("Events of an unknown address = %d events, want none", len(got))
	}
	if suppressed(t, s, a) {
		t.Fatal("an unknown address is suppressed")
	}
	e := event(a, feedback.Bounced, 0)
	e.Bounce, e.Detail, e.MessageID = feedback.Hard, "NoEmail", ""
	record(t, s, e)
	got := events(t, s, a, 10)
	if len(got) != 1 || !same(got[0], e) {
		t.Fatalf("Events = %+v, want [%+v]", got, e)
	}
	if got[0].Time.Location() != time.UTC || got[0].Received.Location() != time.UTC {
		t.Errorf("times come back in %v and %v, want UTC", got[0].Time.Location(), got[0].Received.Location())
	}
	if got := events(t, s, address(), 10); len(got) != 0 {
		t.Errorf("another address has %d events", len(got))
	}
}

func testReplay(t *testing.T, s feedback.Store) {
	a := address()
	first := event(a, feedback.Delivered, 0)
	record(t, s, first)
	// The same ID again, now claiming a complaint: nothing changes.
	again := event(a, feedback.Complained, time.Minute)
	again.ID = first.ID
	if err := s.RecordEvent(context.Background(), again); !errors.Is(err, feedback.ErrReplayed) {
		t.Fatalf("RecordEvent of a stored ID = %v, want ErrReplayed", err)
	}
	// Even for another address.
	other := address()
	again.Address = other
	if err := s.RecordEvent(context.Background(), again); !errors.Is(err, feedback.ErrReplayed) {
		t.Fatalf("RecordEvent of a stored ID for another address = %v, want ErrReplayed", err)
	}
	if got := events(t, s, a, 10); len(got) != 1 || !same(got[0], first) {
		t.Errorf("Events after the replay = %+v, want only the first", got)
	}
	if got := events(t, s, other, 10); len(got) != 0 {
		t.Errorf("the replay stored %d events for the other address", len(got))
	}
	if suppressed(t, s, a) || suppressed(t, s, other) {
		t.Error("a replayed complaint suppressed an address")
	}
}

func testConcurrentReplay(t *testing.T, s feedback.Store) {
	a := address()
	e := event(a, feedback.Complained, 0)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = s.RecordEvent(context.Background(), e) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, feedback.ErrReplayed):
			t.Errorf("RecordEvent: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent RecordEvent calls with one ID succeeded, want 1", ok, n)
	}
	if got := events(t, s, a, 10); len(got) != 1 {
		t.Errorf("Events = %d events, want 1", len(got))
	}
	if !suppressed(t, s, a) {
		t.Error("the complaint did not suppress the address")
	}
}

func testOrder(t *testing.T, s feedback.Store) {
	a := address()
	sent := event(a, feedback.Sent, 0)
	delayed := event(a, feedback.Delayed, time.Second)
	delivered := event(a, feedback.Delivered, 2*time.Second)
	// Recorded out of order, as webhooks may arrive.
	record(t, s, delivered)
	record(t, s, sent)
	record(t, s, delayed)
	// Two events at one time, received at one time: by ID, descending.
	x, y := event(a, feedback.Sent, 3*time.Second), event(a, feedback.Delivered, 3*time.Second)
	id := "evt_" + rand.Text()
	x.ID, y.ID = id+"_a", id+"_b"
	record(t, s, x)
	record(t, s, y)
	want := []feedback.Event{y, x, delivered, delayed, sent}
	got := events(t, s, a, 10)
	if len(got) != len(want) {
		t.Fatalf("Events = %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if !same(got[i], want[i]) {
			t.Errorf("Events[%d] = %s %s, want %s %s", i, got[i].Type, got[i].ID, want[i].Type, want[i].ID)
		}
	}
	if got := events(t, s, a, 2); len(got) != 2 || !same(got[0], y) || !same(got[1], x) {
		t.Errorf("Events(n=2) = %+v, want the newest two", got)
	}
}

func testSuppression(t *testing.T, s feedback.Store) {
	ctx := context.Background()
	a := address()
	record(t, s, event(a, feedback.Bounced, 0)) // soft
	record(t, s, event(a, feedback.Delivered, time.Second))
	if suppressed(t, s, a) {
		t.Fatal("a soft bounce suppressed the address")
	}
	hard := event(a, feedback.Bounced, 2*time.Second)
	hard.Bounce = feedback.Hard
	record(t, s, hard)
	if !suppressed(t, s, a) {
		t.Fatal("a hard bounce did not suppress the address")
	}
	if other := address(); suppressed(t, s, other) {
		t.Fatal("another address is suppressed")
	}
	cleared := base.Add(time.Hour)
	if err := s.Unsuppress(ctx, a, cleared); err != nil {
		t.Fatalf("Unsuppress: %v", err)
	}
	if suppressed(t, s, a) {
		t.Fatal("still suppressed after Unsuppress")
	}
	// A complaint about an email from before the clear, arriving late:
	// it is recorded but does not suppress again.
	late := event(a, feedback.Complained, time.Hour-time.Minute)
	record(t, s, late)
	if suppressed(t, s, a) {
		t.Error("an event from before Unsuppress suppressed the address again")
	}
	if got := events(t, s, a, 1); len(got) != 1 || !same(got[0], late) {
		t.Errorf("the late complaint was not recorded: %+v", got)
	}
	// An earlier Unsuppress changes nothing; an event at the clear's
	// time does not suppress.
	if err := s.Unsuppress(ctx, a, base); err != nil {
		t.Fatalf("Unsuppress: %v", err)
	}
	at := event(a, feedback.Complained, time.Hour)
	record(t, s, at)
	if suppressed(t, s, a) {
		t.Error("an event at the time of Unsuppress suppressed the address, or an earlier Unsuppress moved the clear back")
	}
	after := event(a, feedback.Complained, time.Hour+time.Microsecond)
	record(t, s, after)
	if !suppressed(t, s, a) {
		t.Error("a complaint after Unsuppress did not suppress the address")
	}
	// Unsuppress of an address with no event is harmless, and does not
	// keep a later hard bounce from suppressing it.
	fresh := address()
	if err := s.Unsuppress(ctx, fresh, base); err != nil {
		t.Fatalf("Unsuppress of an unknown address: %v", err)
	}
	b := event(fresh, feedback.Bounced, time.Second)
	b.Bounce = feedback.Hard
	record(t, s, b)
	if !suppressed(t, s, fresh) {
		t.Error("a hard bounce after Unsuppress did not suppress")
	}
}

func testPrune(t *testing.T, s feedback.Store) {
	ctx := context.Background()
	a := address()
	old := event(a, feedback.Complained, 0)
	old.Time = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	old.Received = old.Time.Add(time.Second)
	older := event(a, feedback.Sent, 0)
	older.Time, older.Received = old.Time.Add(-time.Minute), old.Received.Add(-time.Minute)
	kept := event(a, feedback.Delivered, 0)
	kept.Time = time.Date(2001, 1, 2, 0, 0, 0, 0, time.UTC)
	kept.Received = kept.Time
	record(t, s, old)
	record(t, s, older)
	record(t, s, kept)
	n, err := s.PruneEvents(ctx, kept.Received)
	if err != nil {
		t.Fatalf("PruneEvents: %v", err)
	}
	if n < 2 {
		t.Errorf("PruneEvents = %d, want at least the 2 old events", n)
	}
	if got := events(t, s, a, 10); len(got) != 1 || !same(got[0], kept) {
		t.Errorf("Events after PruneEvents = %+v, want only the one received at the cut", got)
	}
	if !suppressed(t, s, a) {
		t.Error("PruneEvents lifted a suppression")
	}
}
