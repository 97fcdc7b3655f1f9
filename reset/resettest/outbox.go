package resettest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
)

// TestOutboxStore runs the conformance suite for [reset.OutboxStore]
// against the store newStore returns. Unlike [TestStore], each call of
// newStore must return a store whose outbox is empty, since claims take
// whatever is due.
func TestOutboxStore(t *testing.T, newStore func(t *testing.T) reset.OutboxStore) {
	t.Helper()
	t.Run("EnqueueClaimDelete", func(t *testing.T) { testEnqueueClaimDelete(t, newStore(t)) })
	t.Run("LeaseExpiry", func(t *testing.T) { testLeaseExpiry(t, newStore(t)) })
	t.Run("SaveHoldAndRelease", func(t *testing.T) { testSaveHold(t, newStore(t)) })
	t.Run("ConcurrentClaims", func(t *testing.T) { testConcurrentClaims(t, newStore(t)) })
	t.Run("StatsLimit", func(t *testing.T) { testStatsLimit(t, newStore(t)) })
	t.Run("DeadAndRevive", func(t *testing.T) { testDeadRevive(t, newStore(t)) })
	t.Run("PruneDead", func(t *testing.T) { testPruneDead(t, newStore(t)) })
}

func envelope(i int, at time.Time) reset.Envelope {
	return reset.Envelope{ID: fmt.Sprintf("env-%04d", i), Kind: reset.EnvelopeRequest,
		Sealed: []byte(fmt.Sprintf("sealed %d", i)), KeyID: "k1", CreatedAt: at, NotBefore: at}
}

func mustEnqueue(t *testing.T, s reset.OutboxStore, e reset.Envelope) {
	t.Helper()
	if err := s.Enqueue(ctx(t), e); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
}

func claim(t *testing.T, s reset.OutboxStore, worker string, now time.Time, max int) []reset.Envelope {
	t.Helper()
	envs, err := s.Claim(ctx(t), worker, now, now.Add(time.Minute), max)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	return envs
}

func wantStats(t *testing.T, s reset.OutboxStore, pending, dead int) {
	t.Helper()
	st, err := s.OutboxStats(ctx(t), 1000)
	if err != nil || st.Pending != pending || st.Dead != dead {
		t.Fatalf("OutboxStats = %+v, %v; want %d pending, %d dead", st, err, pending, dead)
	}
}

func testEnqueueClaimDelete(t *testing.T, s reset.OutboxStore) {
	e1, e2 := envelope(1, base), envelope(2, base.Add(time.Second))
	e2.Kind, e2.Sealed, e2.KeyID = reset.EnvelopeMessage, []byte{0, 1, 2, 255}, "k1"
	mustEnqueue(t, s, e2)
	mustEnqueue(t, s, e1)
	wantStats(t, s, 2, 0)
	if st, _ := s.OutboxStats(ctx(t), 1000); !st.Oldest.Equal(base) {
		t.Errorf("Oldest = %v, want %v", st.Oldest, base)
	}
	// Not yet due.
	if got := claim(t, s, "w1", base.Add(-time.Second), 10); len(got) != 0 {
		t.Fatalf("claimed %d envelopes before they were due", len(got))
	}
	got := claim(t, s, "w1", base.Add(time.Second), 10)
	if len(got) != 2 || got[0].ID != e1.ID || got[1].ID != e2.ID {
		t.Fatalf("Claim = %+v, want e1 then e2", got)
	}
	g := got[1]
	if g.Kind != e2.Kind || !bytes.Equal(g.Sealed, e2.Sealed) ||
		g.KeyID != "k1" || g.Claims != 1 || !g.CreatedAt.Equal(e2.CreatedAt) {
		t.Errorf("claimed %+v, want %+v with Claims 1", g, e2)
	}
	if !bytes.Equal(got[0].Sealed, e1.Sealed) || got[0].KeyID != e1.KeyID {
		t.Errorf("Sealed, KeyID = %q, %q; want %q, %q", got[0].Sealed, got[0].KeyID, e1.Sealed, e1.KeyID)
	}
	if again := claim(t, s, "w2", base.Add(time.Second), 10); len(again) != 0 {
		t.Fatalf("a leased envelope was claimed again")
	}
	if err := s.Delete(ctx(t), "w2", e1.ID); !errors.Is(err, reset.ErrLeaseLost) {
		t.Fatalf("Delete by a worker without the lease: %v, want ErrLeaseLost", err)
	}
	if err := s.Delete(ctx(t), "w1", e1.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantStats(t, s, 1, 0)
}

func testLeaseExpiry(t *testing.T, s reset.OutboxStore) {
	e := envelope(1, base)
	mustEnqueue(t, s, e)
	claim(t, s, "w1", base, 1) // lease until base+1m
	if got := claim(t, s, "w2", base.Add(time.Minute-time.Microsecond), 1); len(got) != 0 {
		t.Fatal("claimed while the lease ran")
	}
	got := claim(t, s, "w2", base.Add(time.Minute), 1)
	if len(got) != 1 || got[0].Claims != 2 {
		t.Fatalf("after the lease ended: %+v, want the envelope with Claims 2", got)
	}
	if err := s.Save(ctx(t), "w1", got[0], false); !errors.Is(err, reset.ErrLeaseLost) {
		t.Fatalf("Save by the worker whose lease ended: %v, want ErrLeaseLost", err)
	}
	if err := s.Delete(ctx(t), "w2", e.ID); err != nil {
		t.Fatalf("Delete by the new holder: %v", err)
	}
}

func testSaveHold(t *testing.T, s reset.OutboxStore) {
	e := envelope(1, base)
	mustEnqueue(t, s, e)
	c := claim(t, s, "w1", base, 1)[0]
	c.Sealed, c.KeyID = bytes.Repeat([]byte{7}, 300), "k2"
	if err := s.Save(ctx(t), "w1", c, true); err != nil {
		t.Fatalf("Save(hold): %v", err)
	}
	if got := claim(t, s, "w2", base.Add(time.Second), 1); len(got) != 0 {
		t.Fatal("claimed while held")
	}
	c.Attempts, c.NotBefore, c.LastError = 1, base.Add(time.Hour), "503 from provider"
	if err := s.Save(ctx(t), "w1", c, false); err != nil {
		t.Fatalf("Save(release): %v", err)
	}
	if got := claim(t, s, "w2", base.Add(time.Hour-time.Second), 1); len(got) != 0 {
		t.Fatal("claimed before NotBefore")
	}
	got := claim(t, s, "w2", base.Add(time.Hour), 1)
	if len(got) != 1 || !bytes.Equal(got[0].Sealed, c.Sealed) || got[0].KeyID != "k2" || got[0].Attempts != 1 || got[0].LastError != c.LastError {
		t.Fatalf("after release: %+v", got)
	}
	if err := s.Save(ctx(t), "w1", c, false); !errors.Is(err, reset.ErrLeaseLost) {
		t.Fatalf("Save after release: %v, want ErrLeaseLost", err)
	}
}

func testConcurrentClaims(t *testing.T, s reset.OutboxStore) {
	const n, workers = 200, 8
	for i := range n {
		mustEnqueue(t, s, envelope(i, base.Add(time.Duration(i)*time.Millisecond)))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	now := base.Add(time.Hour)
	for w := range workers {
		wg.Go(func() {
			name := fmt.Sprintf("w%d", w)
			for {
				envs, err := s.Claim(ctx(t), name, now, now.Add(time.Minute), 5)
				if err != nil {
					t.Errorf("Claim: %v", err)
					return
				}
				if len(envs) == 0 {
					return
				}
				for _, e := range envs {
					mu.Lock()
					seen[e.ID]++
					mu.Unlock()
					if err := s.Delete(ctx(t), name, e.ID); err != nil {
						t.Errorf("Delete: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d envelopes claimed, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("%s claimed %d times", id, k)
		}
	}
	wantStats(t, s, 0, 0)
}

func testStatsLimit(t *testing.T, s reset.OutboxStore) {
	for i := range 5 {
		mustEnqueue(t, s, envelope(i, base.Add(time.Duration(i)*time.Second)))
	}
	st, err := s.OutboxStats(ctx(t), 3)
	if err != nil || st.Pending != 3 || !st.Oldest.Equal(base) {
		t.Fatalf("OutboxStats(limit 3) = %+v, %v; want 3 pending (the limit), oldest %v", st, err, base)
	}
	// A dead envelope no longer counts as pending.
	c := claim(t, s, "w1", base.Add(time.Hour), 1)[0]
	c.Dead = true
	if err := s.Save(ctx(t), "w1", c, false); err != nil {
		t.Fatal(err)
	}
	wantStats(t, s, 4, 1)
}

func testDeadRevive(t *testing.T, s reset.OutboxStore) {
	e := envelope(1, base)
	mustEnqueue(t, s, e)
	c := claim(t, s, "w1", base, 1)[0]
	c.Dead, c.Attempts, c.LastError, c.Sealed = true, 4, "422 validation_error", []byte("request only")
	if err := s.Save(ctx(t), "w1", c, false); err != nil {
		t.Fatal(err)
	}
	wantStats(t, s, 0, 1)
	if got := claim(t, s, "w2", base.Add(48*time.Hour), 10); len(got) != 0 {
		t.Fatal("claimed a dead envelope")
	}
	dead, err := s.Dead(ctx(t), 10)
	if err != nil || len(dead) != 1 || dead[0].ID != e.ID || dead[0].LastError != c.LastError || !dead[0].Dead {
		t.Fatalf("Dead = %+v, %v", dead, err)
	}
	if err := s.Revive(ctx(t), "no-such-id", base); !errors.Is(err, reset.ErrNotFound) {
		t.Fatalf("Revive of an unknown id: %v, want ErrNotFound", err)
	}
	later := base.Add(time.Hour)
	if err := s.Revive(ctx(t), e.ID, later); err != nil {
		t.Fatal(err)
	}
	wantStats(t, s, 1, 0)
	got := claim(t, s, "w2", later, 10)
	if len(got) != 1 || got[0].Attempts != 0 || got[0].Claims != 1 || got[0].Dead {
		t.Fatalf("after Revive: %+v", got)
	}
	if err := s.Revive(ctx(t), e.ID, later); !errors.Is(err, reset.ErrNotFound) {
		t.Fatalf("Revive of a live envelope: %v, want ErrNotFound", err)
	}
}

func testPruneDead(t *testing.T, s reset.OutboxStore) {
	p, ok := s.(reset.Pruner)
	if !ok {
		t.Skip("the store does not implement reset.Pruner")
	}
	for i := range 3 {
		mustEnqueue(t, s, envelope(i, base.Add(time.Duration(i)*time.Hour)))
	}
	for _, c := range claim(t, s, "w1", base.Add(10*time.Hour), 3) {
		c.Dead = true
		if err := s.Save(ctx(t), "w1", c, false); err != nil {
			t.Fatal(err)
		}
	}
	mustEnqueue(t, s, envelope(9, base)) // pending: never pruned
	// Dead envelopes created before base+90m: two, removed one at a time.
	cut := base.Add(90 * time.Minute)
	now := base.Add(100 * 365 * 24 * time.Hour)
	total := 0
	for range 5 {
		got, err := p.Prune(ctx(t), now, cut, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got.Dead > 1 {
			t.Fatalf("Prune with limit 1 removed %d dead envelopes", got.Dead)
		}
		total += got.Dead
	}
	if total != 2 {
		t.Fatalf("pruned %d dead envelopes, want 2", total)
	}
	wantStats(t, s, 1, 1)
}
