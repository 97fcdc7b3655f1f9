package resettest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
)

// RenewingStore is an outbox that renews leases, as [TestLeaseRenewer]
// needs.
type RenewingStore interface {
	reset.OutboxStore
	reset.LeaseRenewer
}

// TestLeaseRenewer runs the conformance suite for [reset.LeaseRenewer]
// against the store newStore returns, whose outbox must be empty (as for
// [TestOutboxStore]).
func TestLeaseRenewer(t *testing.T, newStore func(t *testing.T) RenewingStore) {
	t.Helper()
	t.Run("RenewKeepsClaim", func(t *testing.T) { testRenewKeeps(t, newStore(t)) })
	t.Run("TakenCannotRenew", func(t *testing.T) { testRenewTaken(t, newStore(t)) })
}

func renew(t *testing.T, s RenewingStore, worker string, ids []string, until time.Time) []string {
	t.Helper()
	lost, err := s.Renew(ctx(t), worker, ids, until)
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	slices.Sort(lost)
	return lost
}

// A renewed claim outlasts its first lease end, and only its holder can
// save or delete the envelope meanwhile.
func testRenewKeeps(t *testing.T, s RenewingStore) {
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
	if err := s.Delete(ctx(t), "w2", e1.ID); !errors.Is(err, reset.ErrLeaseLost) {
		t.Fatalf("Delete by another worker: %v, want ErrLeaseLost", err)
	}
	if err := s.Delete(ctx(t), "w1", e1.ID); err != nil {
		t.Fatalf("Delete by the holder after the renewal: %v", err)
	}
	// An envelope deleted, released or never claimed is not held.
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
func testRenewTaken(t *testing.T, s RenewingStore) {
	e1, e2 := envelope(1, base), envelope(2, base.Add(time.Second))
	mustEnqueue(t, s, e1)
	claim(t, s, "w1", base, 10) // e1, lease until base+1m
	mustEnqueue(t, s, e2)
	if got := claim(t, s, "w2", base.Add(time.Minute), 10); len(got) != 2 {
		t.Fatalf("after w1's lease ended: claimed %d, want 2", len(got))
	}
	// w1 still holds nothing; its renewal of both must lose both.
	if lost := renew(t, s, "w1", []string{e1.ID, e2.ID}, base.Add(time.Hour)); !slices.Equal(lost, []string{e1.ID, e2.ID}) {
		t.Fatalf("Renew by the old holder: lost %v, want both", lost)
	}
	// w2's lease (until base+2m) was not extended by w1's call.
	if got := claim(t, s, "w3", base.Add(2*time.Minute), 10); len(got) != 2 {
		t.Fatalf("w1's Renew extended w2's lease: claimed %d at its end, want 2", len(got))
	}
}

// TestBudgeter runs the conformance suite for [reset.Budgeter]. Each
// subtest uses keys of its own, so the store may hold other budgets.
func TestBudgeter(t *testing.T, newBudgeter func(t *testing.T) reset.Budgeter) {
	t.Helper()
	t.Run("Arithmetic", func(t *testing.T) { testBudgetArithmetic(t, newBudgeter(t)) })
	t.Run("Pause", func(t *testing.T) { testBudgetPause(t, newBudgeter(t)) })
	t.Run("Concurrent", func(t *testing.T) { testBudgetConcurrent(t, newBudgeter(t)) })
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

func reserve(t *testing.T, b reset.Budgeter, key string, now time.Time, interval time.Duration, burst int) time.Duration {
	t.Helper()
	at, err := b.Reserve(ctx(t), key, now, interval, burst)
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	return at.Sub(now)
}

func testBudgetArithmetic(t *testing.T, b reset.Budgeter) {
	k, other := budgetKey(t), budgetKey(t)
	var got []time.Duration
	for range 4 {
		got = append(got, reserve(t, b, k, base, time.Second, 2))
	}
	if want := []time.Duration{0, 0, time.Second, 2 * time.Second}; !slices.Equal(got, want) {
		t.Fatalf("reservations at %v, want %v (burst 2, then 1 a second)", got, want)
	}
	if d := reserve(t, b, other, base, time.Second, 1); d != 0 {
		t.Fatalf("another key's first reservation waits %v, want 0", d)
	}
	// Idle long enough, the budget is whole again.
	later := base.Add(time.Hour)
	if d := reserve(t, b, k, later, time.Second, 2); d != 0 {
		t.Fatalf("after an idle hour: wait %v, want 0", d)
	}
	if d := reserve(t, b, k, later.Add(1500*time.Microsecond), time.Second, 1); d != time.Second-1500*time.Microsecond {
		t.Fatalf("second reservation 1.5 ms later waits %v, want the rest of the second", d)
	}
}

func testBudgetPause(t *testing.T, b reset.Budgeter) {
	k := budgetKey(t)
	reserve(t, b, k, base, time.Second, 1)
	if err := b.Pause(ctx(t), k, base.Add(30*time.Second)); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if err := b.Pause(ctx(t), k, base.Add(10*time.Second)); err != nil { // earlier: no change
		t.Fatalf("Pause: %v", err)
	}
	if d := reserve(t, b, k, base.Add(time.Second), time.Second, 1); d != 29*time.Second {
		t.Fatalf("after Pause: wait %v, want 29s", d)
	}
	if d := reserve(t, b, k, base.Add(time.Second), time.Second, 1); d != 30*time.Second {
		t.Fatalf("the next: wait %v, want 30s", d)
	}
	// Pausing a key never used.
	k2 := budgetKey(t)
	if err := b.Pause(ctx(t), k2, base.Add(5*time.Second)); err != nil {
		t.Fatalf("Pause of a new key: %v", err)
	}
	if d := reserve(t, b, k2, base, time.Second, 1); d != 5*time.Second {
		t.Fatalf("after Pause of a new key: wait %v, want 5s", d)
	}
}

// Concurrent reservations each get a slot of their own.
func testBudgetConcurrent(t *testing.T, b reset.Budgeter) {
	k := budgetKey(t)
	const n = 40
	var wg sync.WaitGroup
	got := make([]time.Duration, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			at, err := b.Reserve(ctx(t), k, base, time.Millisecond, 1)
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
