package resettest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
)

// TestOutboxStore runs the conformance suite for [outbox.Store] against
// the store newStore returns, and for [outbox.BudgetReader] when the store
// implements it. Unlike [TestStore], each call of newStore
// must return a store whose outbox is empty, since claims take whatever
// is due; its budgets may be shared, since every budget test uses keys of
// its own.
func TestOutboxStore(t *testing.T, newStore func(t *testing.T) outbox.Store) {
	t.Helper()
	for _, c := range []struct {
		name string
		f    func(*testing.T, outbox.Store)
	}{
		{"EnqueueClaim", testEnqueueClaim},
		{"ClaimOrder", testClaimOrder},
		{"ExpiredLeaseKeepsItsPlace", testExpiredKeepsPlace},
		{"LeaseExpiry", testLeaseExpiry},
		{"SaveHoldAndRelease", testSaveHold},
		{"ReplaceFormsBatch", testReplaceBatch},
		{"ReplaceAllOrNothing", testReplaceAtomic},
		{"ReplaceDeletes", testReplaceDeletes},
		{"LargeBatch", testLargeBatch},
		{"RenewKeepsClaim", testRenewKeeps},
		{"TakenCannotRenew", testRenewTaken},
		{"ConcurrentClaims", testConcurrentClaims},
		{"StatsLimit", testStatsLimit},
		{"DeadAndRevive", testDeadRevive},
		{"PruneDead", testPruneDead},
		{"BudgetArithmetic", testBudgetArithmetic},
		{"BudgetPause", testBudgetPause},
		{"BudgetConcurrent", testBudgetConcurrent},
		{"BudgetRead", testBudgetRead},
	} {
		t.Run(c.name, func(t *testing.T) { c.f(t, newStore(t)) })
	}
}

func envelope(i int, at time.Time) outbox.Envelope {
	return outbox.Envelope{ID: fmt.Sprintf("env-%04d", i), Kind: outbox.KindRequest,
		Sealed: []byte(fmt.Sprintf("sealed %d", i)), KeyID: "k1", CreatedAt: at, NotBefore: at}
}

func mustEnqueue(t *testing.T, s outbox.Store, e outbox.Envelope) {
	t.Helper()
	if err := s.Enqueue(ctx(t), e); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
}

func claim(t *testing.T, s outbox.Store, worker string, now time.Time, max int) []outbox.Envelope {
	t.Helper()
	envs, err := s.Claim(ctx(t), worker, now, now.Add(time.Minute), max)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	return envs
}

func ids(envs []outbox.Envelope) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.ID
	}
	return out
}

func mustReplace(t *testing.T, s outbox.Store, worker string, remove []string, add []outbox.Envelope, holdUntil time.Time) {
	t.Helper()
	if err := s.Replace(ctx(t), worker, remove, add, holdUntil); err != nil {
		t.Fatalf("Replace(%q, %v, %v): %v", worker, remove, ids(add), err)
	}
}

func wantStats(t *testing.T, s outbox.Store, pending, dead int) {
	t.Helper()
	st, err := s.Stats(ctx(t), 1000)
	if err != nil || st.Pending != pending || st.Dead != dead {
		t.Fatalf("Stats = %+v, %v; want %d pending, %d dead", st, err, pending, dead)
	}
}

// wantSame fails unless got has every field of want, with Claims claims.
func wantSame(t *testing.T, got, want outbox.Envelope, claims int) {
	t.Helper()
	if got.ID != want.ID || got.Kind != want.Kind || !bytes.Equal(got.Sealed, want.Sealed) || got.KeyID != want.KeyID ||
		got.Attempts != want.Attempts || got.Claims != claims || !got.NotBefore.Equal(want.NotBefore) ||
		!got.CreatedAt.Equal(want.CreatedAt) || got.Dead != want.Dead || got.LastError != want.LastError {
		t.Fatalf("got envelope %+v, want %+v with Claims %d", got, want, claims)
	}
}

func testEnqueueClaim(t *testing.T, s outbox.Store) {
	e1, e2 := envelope(1, base), envelope(2, base.Add(time.Second))
	e2.Kind, e2.Sealed, e2.KeyID, e2.Attempts, e2.LastError = outbox.KindMessage, []byte{0, 1, 2, 255}, "k2", 2, "503 from provider"
	mustEnqueue(t, s, e2)
	mustEnqueue(t, s, e1)
	wantStats(t, s, 2, 0)
	if st, _ := s.Stats(ctx(t), 1000); !st.Oldest.Equal(base) {
		t.Errorf("Oldest = %v, want %v", st.Oldest, base)
	}
	if got := claim(t, s, "w1", base.Add(-time.Microsecond), 10); len(got) != 0 {
		t.Fatalf("claimed %d envelopes before they were due", len(got))
	}
	if got := claim(t, s, "w1", base, 0); len(got) != 0 {
		t.Fatalf("Claim of at most 0 returned %d envelopes", len(got))
	}
	got := claim(t, s, "w1", base.Add(time.Second), 10)
	if len(got) != 2 {
		t.Fatalf("Claim = %v, want e1 then e2", ids(got))
	}
	wantSame(t, got[0], e1, 1)
	wantSame(t, got[1], e2, 1)
	if got[0].NotBefore.Location() != time.UTC || got[0].CreatedAt.Location() != time.UTC {
		t.Errorf("times in %v and %v, want UTC", got[0].NotBefore.Location(), got[0].CreatedAt.Location())
	}
	if again := claim(t, s, "w2", base.Add(time.Second), 10); len(again) != 0 {
		t.Fatalf("a leased envelope was claimed again")
	}
	wantStats(t, s, 2, 0) // leased envelopes are pending
}

// Claims take due envelopes by NotBefore, then CreatedAt, then ID, whatever
// their kind or the order they were queued in.
func testClaimOrder(t *testing.T, s outbox.Store) {
	mk := func(id string, notBefore, created time.Duration, kind string) outbox.Envelope {
		return outbox.Envelope{ID: id, Kind: kind, Sealed: []byte(id), KeyID: "k1",
			NotBefore: base.Add(notBefore), CreatedAt: base.Add(created)}
	}
	envs := []outbox.Envelope{
		mk("f", 3*time.Second, 0, outbox.KindMessage),
		mk("e", 2*time.Second, 5*time.Second, outbox.KindRequest),
		mk("c", time.Second, time.Second, outbox.KindBatch),
		mk("d", 2*time.Second, time.Second, outbox.KindRequest),
		mk("b", time.Second, time.Second, outbox.KindRequest),
		mk("a", 0, 9*time.Second, outbox.KindMessage),
		mk("g", time.Hour, 0, outbox.KindMessage), // not due
	}
	for _, e := range envs {
		mustEnqueue(t, s, e)
	}
	var got []string
	for {
		c := claim(t, s, "w1", base.Add(time.Minute), 2)
		if len(c) == 0 {
			break
		}
		got = append(got, ids(c)...)
	}
	if want := []string{"a", "b", "c", "d", "e", "f"}; !slices.Equal(got, want) {
		t.Fatalf("claimed in the order %v, want %v", got, want)
	}
}

// An envelope whose worker died is claimed again before newer due ones,
// with its NotBefore unchanged: it keeps its place in the queue.
func testExpiredKeepsPlace(t *testing.T, s outbox.Store) {
	old := envelope(0, base)
	mustEnqueue(t, s, old)
	if got := claim(t, s, "dead worker", base, 1); len(got) != 1 {
		t.Fatalf("claimed %d, want 1", len(got))
	}
	for i := 1; i <= 5; i++ {
		mustEnqueue(t, s, envelope(i, base.Add(time.Duration(i)*time.Second)))
	}
	got := claim(t, s, "w2", base.Add(time.Minute), 1) // the first lease ended
	if len(got) != 1 {
		t.Fatalf("claimed %d, want 1", len(got))
	}
	wantSame(t, got[0], old, 2)
	got = claim(t, s, "w3", base.Add(time.Minute+time.Second), 10)
	if slices.Contains(ids(got), old.ID) || len(got) != 5 {
		t.Fatalf("then claimed %v, want the five newer envelopes", ids(got))
	}
	for i, e := range got {
		if want := base.Add(time.Duration(i+1) * time.Second); !e.NotBefore.Equal(want) {
			t.Fatalf("%s has NotBefore %v after its claim, want %v", e.ID, e.NotBefore, want)
		}
	}
}

func testLeaseExpiry(t *testing.T, s outbox.Store) {
	e := envelope(1, base)
	mustEnqueue(t, s, e)
	claim(t, s, "w1", base, 1) // lease until base+1m
	if got := claim(t, s, "w2", base.Add(time.Minute-time.Microsecond), 1); len(got) != 0 {
		t.Fatal("claimed while the lease ran")
	}
	// A lease that ended but was not claimed again is still held.
	if lost, err := s.Renew(ctx(t), "w1", []string{e.ID}, base.Add(time.Minute)); err != nil || len(lost) != 0 {
		t.Fatalf("Renew of an ended lease not claimed again = %v, %v; want nothing lost", lost, err)
	}
	got := claim(t, s, "w2", base.Add(time.Minute), 1)
	if len(got) != 1 || got[0].Claims != 2 {
		t.Fatalf("after the lease ended: %+v, want the envelope with Claims 2", got)
	}
	if err := s.Save(ctx(t), "w1", got[0], false); !errors.Is(err, outbox.ErrLeaseLost) {
		t.Fatalf("Save by the worker whose lease ended: %v, want ErrLeaseLost", err)
	}
	if err := s.Replace(ctx(t), "w1", []string{e.ID}, nil, time.Time{}); !errors.Is(err, outbox.ErrLeaseLost) {
		t.Fatalf("Replace by the worker whose lease ended: %v, want ErrLeaseLost", err)
	}
	mustReplace(t, s, "w2", []string{e.ID}, nil, time.Time{})
	wantStats(t, s, 0, 0)
}

func testSaveHold(t *testing.T, s outbox.Store) {
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
	if got := claim(t, s, "w2", base.Add(time.Hour-time.Microsecond), 1); len(got) != 0 {
		t.Fatal("claimed before NotBefore")
	}
	got := claim(t, s, "w2", base.Add(time.Hour), 1)
	if len(got) != 1 {
		t.Fatalf("after release: claimed %d, want 1", len(got))
	}
	wantSame(t, got[0], c, 2)
	if err := s.Save(ctx(t), "w1", c, false); !errors.Is(err, outbox.ErrLeaseLost) {
		t.Fatalf("Save after release: %v, want ErrLeaseLost", err)
	}
	unknown := envelope(99, base)
	if err := s.Save(ctx(t), "w1", unknown, false); !errors.Is(err, outbox.ErrLeaseLost) {
		t.Fatalf("Save of an envelope never queued: %v, want ErrLeaseLost", err)
	}
}

// A batch is formed with Replace: its members out, the batch in, held by
// the worker; its answer is recorded with Replace too.
func testReplaceBatch(t *testing.T, s outbox.Store) {
	for i := 1; i <= 3; i++ {
		mustEnqueue(t, s, envelope(i, base))
	}
	members := claim(t, s, "w1", base, 3)
	if len(members) != 3 {
		t.Fatalf("claimed %d, want 3", len(members))
	}
	batch := outbox.Envelope{ID: "batch-1", Kind: outbox.KindBatch, Sealed: []byte("three emails"), KeyID: "k1",
		NotBefore: base, CreatedAt: base}
	holdUntil := base.Add(2 * time.Minute)
	mustReplace(t, s, "w1", ids(members), []outbox.Envelope{batch}, holdUntil)
	wantStats(t, s, 1, 0)
	// The batch is held by w1 until holdUntil, then claimable whole.
	if got := claim(t, s, "w2", holdUntil.Add(-time.Microsecond), 10); len(got) != 0 {
		t.Fatalf("claimed %v while the new batch was held", ids(got))
	}
	if lost, err := s.Renew(ctx(t), "w1", []string{batch.ID}, holdUntil); err != nil || len(lost) != 0 {
		t.Fatalf("Renew of the added batch = %v, %v; want it held by w1", lost, err)
	}
	b := batch
	b.Attempts, b.LastError = 1, "timeout"
	if err := s.Save(ctx(t), "w1", b, true); err != nil {
		t.Fatalf("Save of the added batch by its holder: %v", err)
	}
	got := claim(t, s, "w2", holdUntil, 10)
	if len(got) != 1 {
		t.Fatalf("after the hold: claimed %v, want the batch", ids(got))
	}
	wantSame(t, got[0], b, 0+1)
	// The answer: the batch out, one refused member back in, unleased.
	refused := members[2]
	refused.Attempts, refused.NotBefore = 1, holdUntil.Add(time.Second)
	mustReplace(t, s, "w2", []string{batch.ID}, []outbox.Envelope{refused}, time.Time{})
	if got := claim(t, s, "w3", holdUntil, 10); len(got) != 0 {
		t.Fatalf("claimed %v before the refused member was due", ids(got))
	}
	got = claim(t, s, "w3", refused.NotBefore, 10)
	if len(got) != 1 {
		t.Fatalf("claimed %v, want the refused member", ids(got))
	}
	wantSame(t, got[0], refused, refused.Claims+1)
}

// A Replace that names an envelope the worker does not hold changes
// nothing.
func testReplaceAtomic(t *testing.T, s outbox.Store) {
	for i := 1; i <= 3; i++ {
		mustEnqueue(t, s, envelope(i, base))
	}
	mine := claim(t, s, "w1", base, 2)
	theirs := claim(t, s, "w2", base, 1)
	if len(mine) != 2 || len(theirs) != 1 {
		t.Fatalf("claimed %v and %v, want 2 and 1", ids(mine), ids(theirs))
	}
	batch := outbox.Envelope{ID: "batch-x", Kind: outbox.KindBatch, Sealed: []byte("x"), KeyID: "k1", NotBefore: base, CreatedAt: base}
	for _, remove := range [][]string{
		{mine[0].ID, mine[1].ID, theirs[0].ID},
		{mine[0].ID, "no-such-envelope"},
		{theirs[0].ID},
	} {
		for _, hold := range []time.Time{{}, base.Add(time.Hour)} {
			err := s.Replace(ctx(t), "w1", remove, []outbox.Envelope{batch}, hold)
			if !errors.Is(err, outbox.ErrLeaseLost) {
				t.Fatalf("Replace(%v) by w1: %v, want ErrLeaseLost", remove, err)
			}
		}
	}
	// Nothing changed: w1 and w2 still hold theirs, the batch is not there.
	wantStats(t, s, 3, 0)
	if lost, err := s.Renew(ctx(t), "w1", ids(mine), base.Add(time.Minute)); err != nil || len(lost) != 0 {
		t.Fatalf("w1's Renew after the failed Replace = %v, %v; want nothing lost", lost, err)
	}
	if lost, err := s.Renew(ctx(t), "w2", ids(theirs), base.Add(time.Minute)); err != nil || len(lost) != 0 {
		t.Fatalf("w2's Renew after the failed Replace = %v, %v; want nothing lost", lost, err)
	}
	if got := claim(t, s, "w3", base.Add(time.Minute), 10); len(got) != 3 || slices.Contains(ids(got), batch.ID) {
		t.Fatalf("after the leases: claimed %v, want the three envelopes and no batch", ids(got))
	}
}

// Replace(id, nil) deletes, and an unheld Replace with nothing to add
// still fails.
func testReplaceDeletes(t *testing.T, s outbox.Store) {
	e1, e2 := envelope(1, base), envelope(2, base)
	mustEnqueue(t, s, e1)
	mustEnqueue(t, s, e2)
	claim(t, s, "w1", base, 2)
	if err := s.Replace(ctx(t), "w2", []string{e1.ID}, nil, time.Time{}); !errors.Is(err, outbox.ErrLeaseLost) {
		t.Fatalf("delete by a worker without the lease: %v, want ErrLeaseLost", err)
	}
	mustReplace(t, s, "w1", []string{e1.ID}, nil, time.Time{})
	wantStats(t, s, 1, 0)
	if err := s.Replace(ctx(t), "w1", []string{e1.ID}, nil, time.Time{}); !errors.Is(err, outbox.ErrLeaseLost) {
		t.Fatalf("delete of a deleted envelope: %v, want ErrLeaseLost", err)
	}
	// An ID that is queued cannot be added again, nor enqueued again.
	if err := s.Replace(ctx(t), "w1", nil, []outbox.Envelope{e2}, time.Time{}); err == nil || errors.Is(err, outbox.ErrLeaseLost) {
		t.Fatalf("Replace adding a queued ID: %v, want an error", err)
	}
	if err := s.Enqueue(ctx(t), e2); err == nil {
		t.Fatal("Enqueue of a queued ID succeeded")
	}
	// Adding alone, unleased: claimable at once.
	e3 := envelope(3, base)
	mustReplace(t, s, "w1", nil, []outbox.Envelope{e3}, time.Time{})
	if got := claim(t, s, "w2", base, 10); !slices.Equal(ids(got), []string{e3.ID}) {
		t.Fatalf("claimed %v, want the added envelope", ids(got))
	}
	mustReplace(t, s, "w1", []string{e2.ID}, nil, time.Time{})
	mustReplace(t, s, "w2", []string{e3.ID}, nil, time.Time{})
	wantStats(t, s, 0, 0)
}

// A batch of 100 rendered emails fits: 2 MiB of sealed content goes in
// with Replace and comes back whole.
func testLargeBatch(t *testing.T, s outbox.Store) {
	e := envelope(1, base)
	mustEnqueue(t, s, e)
	claim(t, s, "w1", base, 1)
	big := make([]byte, 2<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>8)
	}
	batch := outbox.Envelope{ID: "batch-big", Kind: outbox.KindBatch, Sealed: big, KeyID: "k1", NotBefore: base, CreatedAt: base}
	mustReplace(t, s, "w1", []string{e.ID}, []outbox.Envelope{batch}, time.Time{})
	got := claim(t, s, "w2", base, 10)
	if len(got) != 1 {
		t.Fatalf("claimed %v, want the batch", ids(got))
	}
	wantSame(t, got[0], batch, 1)
	got[0].Sealed = append(got[0].Sealed, 1)
	if err := s.Save(ctx(t), "w2", got[0], false); err != nil {
		t.Fatalf("Save of a large batch: %v", err)
	}
}

func renew(t *testing.T, s outbox.Store, worker string, ids []string, until time.Time) []string {
	t.Helper()
	lost, err := s.Renew(ctx(t), worker, ids, until)
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	slices.Sort(lost)
	return lost
}

// A renewed claim outlasts its first lease end, and only its holder can
// save or remove the envelope meanwhile.
func testRenewKeeps(t *testing.T, s outbox.Store) {
	e1, e2 := envelope(1, base), envelope(2, base)
	mustEnqueue(t, s, e1)
	mustEnqueue(t, s, e2)
	got := claim(t, s, "w1", base, 10) // lease until base+1m
	if len(got) != 2 {
		t.Fatalf("claimed %d, want 2", len(got))
	}
	if lost := renew(t, s, "w1", []string{e1.ID, e2.ID}, base.Add(3*time.Minute)); len(lost) != 0 {
		t.Fatalf("Renew by the holder lost %v", lost)
	}
	if again := claim(t, s, "w2", base.Add(2*time.Minute), 10); len(again) != 0 {
		t.Fatalf("claimed %d envelopes past the first lease end, while the renewed lease ran", len(again))
	}
	if err := s.Replace(ctx(t), "w2", []string{e1.ID}, nil, time.Time{}); !errors.Is(err, outbox.ErrLeaseLost) {
		t.Fatalf("delete by another worker: %v, want ErrLeaseLost", err)
	}
	mustReplace(t, s, "w1", []string{e1.ID}, nil, time.Time{})
	// An envelope deleted, released or never queued is not held.
	if err := s.Save(ctx(t), "w1", got[1], false); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if lost := renew(t, s, "w1", []string{e1.ID, e2.ID, "env-9999"}, base.Add(4*time.Minute)); !slices.Equal(lost, []string{e1.ID, e2.ID, "env-9999"}) {
		t.Fatalf("Renew of envelopes not held: lost %v, want all three", lost)
	}
	if got := claim(t, s, "w2", base.Add(time.Second), 10); len(got) != 1 {
		t.Fatalf("a released envelope was not claimable: %d", len(got))
	}
}

// A worker whose lease ended and was taken by another cannot renew it,
// and its Renew leaves the new holder's lease alone.
func testRenewTaken(t *testing.T, s outbox.Store) {
	e1, e2 := envelope(1, base), envelope(2, base.Add(time.Second))
	mustEnqueue(t, s, e1)
	claim(t, s, "w1", base, 10) // e1, lease until base+1m
	mustEnqueue(t, s, e2)
	if got := claim(t, s, "w2", base.Add(time.Minute), 10); len(got) != 2 {
		t.Fatalf("after w1's lease ended: claimed %d, want 2", len(got))
	}
	if lost := renew(t, s, "w1", []string{e1.ID, e2.ID}, base.Add(time.Hour)); !slices.Equal(lost, []string{e1.ID, e2.ID}) {
		t.Fatalf("Renew by the old holder: lost %v, want both", lost)
	}
	// w2's lease (until base+2m) was not extended by w1's call.
	if got := claim(t, s, "w3", base.Add(2*time.Minute), 10); len(got) != 2 {
		t.Fatalf("w1's Renew extended w2's lease: claimed %d at its end, want 2", len(got))
	}
}

func testConcurrentClaims(t *testing.T, s outbox.Store) {
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
				mu.Lock()
				for _, e := range envs {
					seen[e.ID]++
				}
				mu.Unlock()
				if err := s.Replace(ctx(t), name, ids(envs), nil, time.Time{}); err != nil {
					t.Errorf("Replace: %v", err)
					return
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

// Stats counts every envelope of the store, leased or not, due or not, up
// to the limit.
func testStatsLimit(t *testing.T, s outbox.Store) {
	for i := range 5 {
		mustEnqueue(t, s, envelope(i, base.Add(time.Duration(i)*time.Second)))
	}
	claim(t, s, "w0", base.Add(2*time.Second), 2) // leased ones count too
	st, err := s.Stats(ctx(t), 3)
	if err != nil || st.Pending != 3 || !st.Oldest.Equal(base) {
		t.Fatalf("Stats(limit 3) = %+v, %v; want 3 pending (the limit), oldest %v", st, err, base)
	}
	c := claim(t, s, "w1", base.Add(time.Hour), 1)[0]
	c.Dead = true
	if err := s.Save(ctx(t), "w1", c, false); err != nil {
		t.Fatal(err)
	}
	wantStats(t, s, 4, 1)
	if st, err := s.Stats(ctx(t), 1); err != nil || st.Pending != 1 || st.Dead != 1 {
		t.Fatalf("Stats(limit 1) = %+v, %v; want 1 and 1", st, err)
	}
}

func testDeadRevive(t *testing.T, s outbox.Store) {
	e := envelope(1, base)
	mustEnqueue(t, s, e)
	c := claim(t, s, "w1", base, 1)[0]
	c.Dead, c.Attempts, c.LastError, c.Sealed = true, 4, "422 validation_error", []byte("request only")
	if err := s.Save(ctx(t), "w1", c, false); err != nil {
		t.Fatal(err)
	}
	wantStats(t, s, 0, 1)
	if st, _ := s.Stats(ctx(t), 10); !st.Oldest.IsZero() {
		t.Fatalf("Oldest = %v with nothing pending, want zero", st.Oldest)
	}
	if got := claim(t, s, "w2", base.Add(48*time.Hour), 10); len(got) != 0 {
		t.Fatal("claimed a dead envelope")
	}
	dead, err := s.Dead(ctx(t), 10)
	if err != nil || len(dead) != 1 {
		t.Fatalf("Dead = %+v, %v", dead, err)
	}
	wantSame(t, dead[0], c, 1)
	if err := s.Revive(ctx(t), "no-such-id", base); !errors.Is(err, reset.ErrNotFound) {
		t.Fatalf("Revive of an unknown id: %v, want ErrNotFound", err)
	}
	later := base.Add(time.Hour)
	if err := s.Revive(ctx(t), e.ID, later); err != nil {
		t.Fatal(err)
	}
	wantStats(t, s, 1, 0)
	got := claim(t, s, "w2", later, 10)
	if len(got) != 1 || got[0].Attempts != 0 || got[0].Claims != 1 || got[0].Dead || !got[0].NotBefore.Equal(later) {
		t.Fatalf("after Revive: %+v", got)
	}
	if err := s.Revive(ctx(t), e.ID, later); !errors.Is(err, reset.ErrNotFound) {
		t.Fatalf("Revive of a live envelope: %v, want ErrNotFound", err)
	}
}

func testPruneDead(t *testing.T, s outbox.Store) {
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
	total := 0
	for range 5 {
		n, err := s.PruneDead(ctx(t), cut, 1)
		if err != nil {
			t.Fatal(err)
		}
		if n > 1 {
			t.Fatalf("PruneDead with limit 1 removed %d dead envelopes", n)
		}
		total += n
	}
	if total != 2 {
		t.Fatalf("pruned %d dead envelopes, want 2", total)
	}
	wantStats(t, s, 1, 1)
	if n, err := s.PruneDead(ctx(t), base.Add(2*time.Hour), 10); err != nil || n != 0 {
		t.Fatalf("PruneDead at the third one's CreatedAt = %d, %v; want 0 (before, not at)", n, err)
	}
}

var budgetKeys struct {
	sync.Mutex
	n int
}

// budgetKey returns a key no other test of this process uses.
func budgetKey(t *testing.T) string {
	budgetKeys.Lock()
	defer budgetKeys.Unlock()
	budgetKeys.n++
	return fmt.Sprintf("test/%d/%d", time.Now().UnixNano(), budgetKeys.n)
}

func reserve(t *testing.T, s outbox.Store, key string, now time.Time, interval time.Duration, burst int) time.Duration {
	t.Helper()
	at, err := s.Reserve(ctx(t), key, now, interval, burst)
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	return at.Sub(now)
}

func testBudgetArithmetic(t *testing.T, s outbox.Store) {
	k, other := budgetKey(t), budgetKey(t)
	var got []time.Duration
	for range 4 {
		got = append(got, reserve(t, s, k, base, time.Second, 2))
	}
	if want := []time.Duration{0, 0, time.Second, 2 * time.Second}; !slices.Equal(got, want) {
		t.Fatalf("reservations at %v, want %v (burst 2, then 1 a second)", got, want)
	}
	if d := reserve(t, s, other, base, time.Second, 1); d != 0 {
		t.Fatalf("another key's first reservation waits %v, want 0", d)
	}
	// Each reservation adds its own interval.
	if d := reserve(t, s, other, base, 3*time.Second, 1); d != time.Second {
		t.Fatalf("after a 1s reservation: wait %v, want 1s", d)
	}
	if d := reserve(t, s, other, base, time.Second, 1); d != 4*time.Second {
		t.Fatalf("after a 3s reservation: wait %v, want 4s", d)
	}
	// Idle long enough, the budget is whole again.
	later := base.Add(time.Hour)
	if d := reserve(t, s, k, later, time.Second, 2); d != 0 {
		t.Fatalf("after an idle hour: wait %v, want 0", d)
	}
	if d := reserve(t, s, k, later.Add(1500*time.Microsecond), time.Second, 1); d != time.Second-1500*time.Microsecond {
		t.Fatalf("second reservation 1.5 ms later waits %v, want the rest of the second", d)
	}
}

func testBudgetPause(t *testing.T, s outbox.Store) {
	k := budgetKey(t)
	reserve(t, s, k, base, time.Second, 1)
	if err := s.Pause(ctx(t), k, base.Add(30*time.Second)); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if err := s.Pause(ctx(t), k, base.Add(10*time.Second)); err != nil { // earlier: no change
		t.Fatalf("Pause: %v", err)
	}
	if d := reserve(t, s, k, base.Add(time.Second), time.Second, 1); d != 29*time.Second {
		t.Fatalf("after Pause: wait %v, want 29s", d)
	}
	if d := reserve(t, s, k, base.Add(time.Second), time.Second, 1); d != 30*time.Second {
		t.Fatalf("the next: wait %v, want 30s", d)
	}
	// Pausing a key never used.
	k2 := budgetKey(t)
	if err := s.Pause(ctx(t), k2, base.Add(5*time.Second)); err != nil {
		t.Fatalf("Pause of a new key: %v", err)
	}
	if d := reserve(t, s, k2, base, time.Second, 1); d != 5*time.Second {
		t.Fatalf("after Pause of a new key: wait %v, want 5s", d)
	}
	// With a burst, the pause still holds back the first call.
	k3 := budgetKey(t)
	if err := s.Pause(ctx(t), k3, base.Add(5*time.Second)); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if d := reserve(t, s, k3, base, time.Second, 3); d != 3*time.Second {
		t.Fatalf("after Pause with burst 3: wait %v, want until - 2 intervals = 3s", d)
	}
}

// Concurrent reservations each get a slot of their own.
func testBudgetConcurrent(t *testing.T, s outbox.Store) {
	k := budgetKey(t)
	const n = 40
	var wg sync.WaitGroup
	got := make([]time.Duration, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			at, err := s.Reserve(ctx(t), k, base, time.Millisecond, 1)
			got[i], errs[i] = at.Sub(base), err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	for i, d := range got {
		if d != time.Duration(i)*time.Millisecond {
			t.Fatalf("slots %v, want 0, 1 ms, ... %d ms", got, n-1)
		}
	}
}

// A BudgetReader reads the budget's tat and reserves nothing.
func testBudgetRead(t *testing.T, s outbox.Store) {
	br, ok := s.(outbox.BudgetReader)
	if !ok {
		t.Logf("%T does not implement outbox.BudgetReader: nothing to test", s)
		return
	}
	read := func(k string) time.Time {
		t.Helper()
		tat, err := br.Budget(ctx(t), k)
		if err != nil {
			t.Fatalf("Budget: %v", err)
		}
		return tat
	}
	k := budgetKey(t)
	if tat := read(k); !tat.IsZero() {
		t.Fatalf("Budget of a key never used = %v, want the zero time", tat)
	}
	reserve(t, s, k, base, time.Second, 1)
	if tat := read(k); !tat.Equal(base.Add(time.Second)) {
		t.Fatalf("Budget after one 1s reservation at base = %v, want base+1s", tat)
	}
	if tat := read(k); !tat.Equal(base.Add(time.Second)) {
		t.Fatalf("Budget read twice = %v, want base+1s: a read must not reserve", tat)
	}
	if d := reserve(t, s, k, base, time.Second, 1); d != time.Second {
		t.Fatalf("reservation after reads waits %v, want 1s: a read must not reserve", d)
	}
	if err := s.Pause(ctx(t), k, base.Add(time.Minute)); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if tat := read(k); !tat.Equal(base.Add(time.Minute)) || tat.Location() != time.UTC {
		t.Fatalf("Budget after Pause until base+1m = %v, want base+1m in UTC", tat)
	}
}
