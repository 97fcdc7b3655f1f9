package resettest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
)

// day is the window of the budget tests, the core's.
const day = 24 * time.Hour

// A record's stamp hash comes back from Lookup, Consume and a second
// Rotate as it went in, and the zero stamp (no stamp) stays zero.
func testStampRoundTrips(t *testing.T, s reset.Store, u func(string) string) {
	with := record(t, u("a"), base, time.Hour)
	without := record(t, u("b"), base, time.Hour)
	without.Stamp = reset.Hash{}
	for _, r := range []reset.Record{with, without} {
		mustRotate(t, s, r)
		got, err := s.Lookup(ctx(t), r.Hash)
		wantRecord(t, got, err, r)
		got, err = s.Consume(ctx(t), r.Hash)
		wantRecord(t, got, err, r)
		mustRotate(t, s, got) // the way Complete puts a token back
		got, err = s.Lookup(ctx(t), r.Hash)
		wantRecord(t, got, err, r)
	}
}

// TestStampService checks through the core that a token dies when the
// account's credential stamp changes: a token issued under one stamp is
// refused as invalid by Inspect and Complete once the application shows
// another (the password changed elsewhere), and the password stays; a
// token whose stamp is unchanged works. It runs with Users looking
// accounts up by ID and, through [reset.UsersFuncs], by address only.
// id is a user ID no other test uses. [TestStore] runs it.
func TestStampService(t *testing.T, s reset.Store, id string) {
	for _, byID := range []bool{true, false} {
		t.Run(fmt.Sprintf("byID=%v", byID), func(t *testing.T) {
			user := fmt.Sprintf("%s-%v", id, byID)
			email := user + "@example.com"
			users := &Users{}
			users.Add(user, email, "old password")
			users.SetStamp(email, "v1")
			var u reset.Users = users
			if !byID {
				u = reset.UsersFuncs{Lookup: users.LookupEmail, Set: users.SetPassword}
			}
			svc, err := reset.New(reset.Config{Store: s, Users: u, Mailer: &Mailer{},
				ResetURL: "https://app.example.com/reset", Logger: discardLogger, KeepSessions: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { svc.Shutdown(context.Background()) })
			issue := func() string {
				t.Helper()
				iss, err := svc.RequestTrusted(ctx(t), reset.TrustedRequest{Email: email, SkipSend: true})
				if err != nil {
					t.Fatalf("RequestTrusted: %v", err)
				}
				return Token(iss.Link)
			}

			tok := issue()
			if _, err := svc.Inspect(ctx(t), tok); err != nil {
				t.Fatalf("Inspect under the same stamp: %v", err)
			}
			users.SetStamp(email, "v2") // the password changed elsewhere
			if _, err := svc.Inspect(ctx(t), tok); !errors.Is(err, reset.ErrInvalidToken) {
				t.Fatalf("Inspect after the stamp changed: %v, want ErrInvalidToken", err)
			}
			if _, err := svc.Complete(ctx(t), reset.Completion{Token: tok, Password: "attacker's password"}); !errors.Is(err, reset.ErrInvalidToken) {
				t.Fatalf("Complete after the stamp changed: %v, want ErrInvalidToken", err)
			}
			if got := users.Password(user); got != "old password" {
				t.Fatalf("password = %q after a refused Complete", got)
			}

			tok = issue() // under v2
			if _, err := svc.Inspect(ctx(t), tok); err != nil {
				t.Fatalf("Inspect under the same stamp: %v", err)
			}
			if _, err := svc.Complete(ctx(t), reset.Completion{Token: tok, Password: "violet tractor mends 1"}); err != nil {
				t.Fatalf("Complete under the same stamp: %v", err)
			}
			if got := users.Password(user); got != "violet tractor mends 1" {
				t.Fatalf("password = %q after Complete", got)
			}

			// A stamp that goes away is a change too; no stamp ever
			// is today's behaviour.
			tok = issue()
			users.SetStamp(email, "")
			if _, err := svc.Inspect(ctx(t), tok); !errors.Is(err, reset.ErrInvalidToken) {
				t.Fatalf("Inspect after the stamp was removed: %v, want ErrInvalidToken", err)
			}
			tok = issue()
			if _, err := svc.Complete(ctx(t), reset.Completion{Token: tok, Password: "violet tractor mends 2"}); err != nil {
				t.Fatalf("Complete without a stamp: %v", err)
			}
		})
	}
}

func testQuota(t *testing.T, s reset.Store, u func(string) string) {
	q := s.(reset.Quota)
	k := newHash(t)
	step := func(owner string, now time.Time, want bool) {
		t.Helper()
		ok, err := q.Spend(ctx(t), k, owner, now, day, 3)
		if err != nil || ok != want {
			t.Fatalf("Spend(owner %q) at %v = %v, %v; want %v", owner, now, ok, err, want)
		}
	}
	step(u("r1"), base, true)
	step(u("r1"), base.Add(time.Minute), true) // the same request again: not counted
	step("", base.Add(2*time.Minute), true)
	step(u("r2"), base.Add(3*time.Minute), true)
	step(u("r3"), base.Add(4*time.Minute), false) // 3 used
	step("", base.Add(5*time.Minute), false)
	step(u("r1"), base.Add(6*time.Minute), true) // its use still counts
	// Rolling: the first use stops counting a whole window after it.
	step(u("r4"), base.Add(day-time.Microsecond), false)
	step(u("r4"), base.Add(day), true)
	step(u("r5"), base.Add(day+time.Minute), false)
	step(u("r6"), base.Add(day+2*time.Minute), true)
	// Another key has a budget of its own.
	if ok, err := q.Spend(ctx(t), newHash(t), "", base.Add(5*time.Minute), day, 3); !ok || err != nil {
		t.Fatalf("Spend of another key = %v, %v; want true", ok, err)
	}
}

func testConcurrentQuota(t *testing.T, s reset.Store, u func(string) string) {
	q := s.(reset.Quota)
	const limit = 5
	k := newHash(t)
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i := range Concurrency {
		wg.Go(func() {
			owner := "" // half without an owner, half each with its own
			if i%2 == 1 {
				owner = u(fmt.Sprintf("owner-%d", i))
			}
			ok, err := q.Spend(ctx(t), k, owner, base.Add(time.Duration(i)*time.Microsecond), day, limit)
			if err != nil {
				t.Errorf("Spend: %v", err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != limit {
		t.Fatalf("%d concurrent spends of a budget of %d: %d allowed", Concurrency, limit, wins.Load())
	}
}

func testQuotaPrune(t *testing.T, s reset.Store, u func(string) string) {
	q, p := s.(reset.Quota), s.(reset.Pruner)
	// Far in the future, so that the budgets of other subtests go too.
	now := base.Add(200 * 365 * day)
	for range 3 {
		if ok, err := q.Spend(ctx(t), newHash(t), "", now.Add(-day), day, 1); !ok || err != nil {
			t.Fatalf("Spend = %v, %v", ok, err)
		}
	}
	live := newHash(t)
	if ok, err := q.Spend(ctx(t), live, "", now.Add(-day+time.Microsecond), day, 1); !ok || err != nil {
		t.Fatalf("Spend = %v, %v", ok, err)
	}
	// In batches of one; others' budgets go too, and a store may clean up
	// on its own (memstore does), so only the live budget is checked.
	for {
		got, err := p.Prune(ctx(t), now, 1)
		if err != nil {
			t.Fatalf("Prune: %v", err)
		}
		if got.Quotas > 1 {
			t.Fatalf("Prune with limit 1 removed %+v", got)
		}
		if got.Tokens+got.Cooldowns+got.Quotas == 0 {
			break
		}
	}
	if ok, err := q.Spend(ctx(t), live, "", now, day, 1); ok || err != nil {
		t.Fatalf("Spend of a budget still in its window after Prune = %v, %v; want false", ok, err)
	}
}

// TestQuotaService sends [Concurrency] concurrent throttled requests for
// the address of user id through a Service without a cooldown, so that
// only the default daily limit (5) holds them back: exactly 5 tokens are
// issued, the rest are throttled (ErrThrottled). [TestStore] runs it on a
// [reset.Quota]; rows may count the store's records of table ("quotas"):
// one is left. rows may be nil.
func TestQuotaService(t *testing.T, s reset.Store, id string, rows func(table string) int) {
	svc, _ := newUserService(t, s, id, nil, func(c *reset.Config) { c.Cooldown = -1 })
	burst(t, svc, id+"@example.com", 5, rows, "quotas")
}
