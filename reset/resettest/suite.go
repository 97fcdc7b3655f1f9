package resettest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
)

// Concurrency is how many goroutines the suite's race tests start.
const Concurrency = 64

var suiteSeq atomic.Int64

// TestStore runs the conformance suite against the Store that newStore
// returns. newStore is called once per subtest; it may return the same
// store every time, since every subtest uses user IDs and keys of its own.
// Optional capabilities ([reset.Pruner], [reset.Cooldowner], and
// [reset.Quota] with a Cooldowner) are tested when the store implements
// them.
func TestStore(t *testing.T, newStore func(t *testing.T) reset.Store) {
	t.Helper()
	run := func(name string, f func(t *testing.T, s reset.Store, u func(string) string)) {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			id := fmt.Sprintf("suite-%d-%d", time.Now().UnixNano(), suiteSeq.Add(1))
			f(t, s, func(name string) string { return id + "-" + name })
		})
	}
	run("RotateLookup", testRotateLookup)
	run("RotationReplaces", testRotationReplaces)
	run("ConcurrentRotation", testConcurrentRotation)
	run("Consume", testConsume)
	run("ConcurrentConsume", testConcurrentConsume)
	run("ExpiredRecordsAreReturned", testExpiredReturned)
	run("RevokeAll", testRevokeAll)
	run("Service", testService)
	run("ServiceExpiryBoundary", testServiceExpiry)
	run("Invitation", testInvitation)
	run("ConsumeRacesRotate", testConsumeRacesRotate)
	run("SecondFactor", testSecondFactor)
	run("StampRoundTrips", testStampRoundTrips)
	run("StampService", func(t *testing.T, s reset.Store, u func(string) string) {
		TestStampService(t, s, u("stamp"))
	})
	run("ConcurrentService", func(t *testing.T, s reset.Store, u func(string) string) {
		TestConcurrentService(t, s, u("concurrent"), nil)
	})
	if _, ok := newStore(t).(reset.Pruner); ok {
		run("Prune", testPrune)
		run("ExpiryBoundary", testExpiryBoundary)
	}
	if _, ok := newStore(t).(reset.Cooldowner); ok {
		run("Cooldown", testCooldown)
		run("ConcurrentCooldown", testConcurrentCooldown)
		run("CooldownBoundary", testCooldownBoundary)
		run("CooldownSecret", testCooldownSecret)
		run("ConcurrentCooldownService", func(t *testing.T, s reset.Store, u func(string) string) {
			TestConcurrentCooldownService(t, s, u("cool"), nil)
		})
		if _, ok := newStore(t).(reset.Quota); ok {
			run("Quota", testQuota)
			run("ConcurrentQuota", testConcurrentQuota)
			run("QuotaService", func(t *testing.T, s reset.Store, u func(string) string) {
				TestQuotaService(t, s, u("quota"), nil)
			})
			if _, ok := newStore(t).(reset.Pruner); ok {
				run("QuotaPrune", testQuotaPrune)
			}
		}
	}
}

// base is the suite's reference time: with microseconds, which every
// store must keep.
var base = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

func newHash(t *testing.T) reset.Hash {
	t.Helper()
	var h reset.Hash
	if _, err := rand.Read(h[:]); err != nil {
		t.Fatal(err)
	}
	return h
}

func record(t *testing.T, user string, created time.Time, ttl time.Duration) reset.Record {
	return reset.Record{Hash: newHash(t), UserID: user, Email: user + "@example.com", CreatedAt: created, ExpiresAt: created.Add(ttl), Stamp: newHash(t)}
}

func ctx(t *testing.T) context.Context { return t.Context() }

func mustRotate(t *testing.T, s reset.Store, r reset.Record) {
	t.Helper()
	if err := s.Rotate(ctx(t), r); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
}

func wantRecord(t *testing.T, got reset.Record, err error, want reset.Record) {
	t.Helper()
	if err != nil {
		t.Fatalf("got error %v, want the record", err)
	}
	if got.Hash != want.Hash || got.UserID != want.UserID || got.Email != want.Email || got.Stamp != want.Stamp ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("got record %+v, want %+v", got, want)
	}
}

func wantNotFound(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, reset.ErrNotFound) {
		t.Fatalf("got error %v, want reset.ErrNotFound", err)
	}
}

func testRotateLookup(t *testing.T, s reset.Store, u func(string) string) {
	r := record(t, u("a"), base, time.Hour)
	mustRotate(t, s, r)
	got, err := s.Lookup(ctx(t), r.Hash)
	wantRecord(t, got, err, r)
	if !got.ExpiresAt.Equal(r.ExpiresAt) || got.ExpiresAt.Location() != time.UTC {
		t.Errorf("ExpiresAt = %v, want %v in UTC", got.ExpiresAt, r.ExpiresAt)
	}
	_, err = s.Lookup(ctx(t), newHash(t))
	wantNotFound(t, err)
	// Lookup changes nothing.
	got, err = s.Lookup(ctx(t), r.Hash)
	wantRecord(t, got, err, r)
}

func testRotationReplaces(t *testing.T, s reset.Store, u func(string) string) {
	r1 := record(t, u("a"), base, time.Hour)
	other := record(t, u("b"), base, time.Hour)
	mustRotate(t, s, r1)
	mustRotate(t, s, other)
	r2 := record(t, u("a"), base.Add(time.Second), time.Hour)
	mustRotate(t, s, r2)
	_, err := s.Lookup(ctx(t), r1.Hash)
	wantNotFound(t, err)
	_, err = s.Consume(ctx(t), r1.Hash)
	wantNotFound(t, err)
	got, err := s.Lookup(ctx(t), r2.Hash)
	wantRecord(t, got, err, r2)
	got, err = s.Lookup(ctx(t), other.Hash)
	wantRecord(t, got, err, other)
}

func testConcurrentRotation(t *testing.T, s reset.Store, u func(string) string) {
	recs := make([]reset.Record, Concurrency)
	for i := range recs {
		recs[i] = record(t, u("a"), base.Add(time.Duration(i)*time.Millisecond), time.Hour)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(recs))
	for i := range recs {
		wg.Go(func() { errs[i] = s.Rotate(ctx(t), recs[i]) })
	}
	wg.Wait()
	valid := 0
	for i, r := range recs {
		if errs[i] != nil {
			t.Fatalf("Rotate %d: %v", i, errs[i])
		}
		if _, err := s.Lookup(ctx(t), r.Hash); err == nil {
			valid++
		} else {
			wantNotFound(t, err)
		}
	}
	if valid != 1 {
		t.Fatalf("%d concurrent rotations left %d valid records, want exactly 1", len(recs), valid)
	}
}

func testConsume(t *testing.T, s reset.Store, u func(string) string) {
	r := record(t, u("a"), base, time.Hour)
	mustRotate(t, s, r)
	got, err := s.Consume(ctx(t), r.Hash)
	wantRecord(t, got, err, r)
	_, err = s.Consume(ctx(t), r.Hash)
	wantNotFound(t, err)
	_, err = s.Lookup(ctx(t), r.Hash)
	wantNotFound(t, err)
	_, err = s.Consume(ctx(t), newHash(t))
	wantNotFound(t, err)
}

func testConcurrentConsume(t *testing.T, s reset.Store, u func(string) string) {
	r := record(t, u("a"), base, time.Hour)
	mustRotate(t, s, r)
	var wins, misses atomic.Int64
	var wg sync.WaitGroup
	for range Concurrency {
		wg.Go(func() {
			got, err := s.Consume(ctx(t), r.Hash)
			switch {
			case err == nil && got.Hash == r.Hash:
				wins.Add(1)
			case errors.Is(err, reset.ErrNotFound):
				misses.Add(1)
			default:
				t.Errorf("Consume: %+v, %v", got, err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || misses.Load() != Concurrency-1 {
		t.Fatalf("%d concurrent consumes: %d won, %d missed; want exactly 1 winner", Concurrency, wins.Load(), misses.Load())
	}
}

func testExpiredReturned(t *testing.T, s reset.Store, u func(string) string) {
	r := record(t, u("a"), base.Add(-2*time.Hour), time.Hour)
	mustRotate(t, s, r)
	got, err := s.Lookup(ctx(t), r.Hash)
	wantRecord(t, got, err, r)
	got, err = s.Consume(ctx(t), r.Hash)
	wantRecord(t, got, err, r)
}

func testRevokeAll(t *testing.T, s reset.Store, u func(string) string) {
	r := record(t, u("a"), base, time.Hour)
	other := record(t, u("b"), base, time.Hour)
	mustRotate(t, s, r)
	mustRotate(t, s, other)
	if err := s.RevokeAll(ctx(t), u("a")); err != nil {
		t.Fatalf("RevokeAll: %v", err)
	}
	_, err := s.Lookup(ctx(t), r.Hash)
	wantNotFound(t, err)
	got, err := s.Lookup(ctx(t), other.Hash)
	wantRecord(t, got, err, other)
	if err := s.RevokeAll(ctx(t), u("nobody")); err != nil {
		t.Fatalf("RevokeAll of a user without tokens: %v", err)
	}
}

func testPrune(t *testing.T, s reset.Store, u func(string) string) {
	p := s.(reset.Pruner)
	// Far in the future, so that records of other subtests sharing the
	// store are pruned too; count only ours.
	now := base.Add(100 * 365 * 24 * time.Hour)
	expired := record(t, u("a"), now.Add(-2*time.Hour), time.Hour)
	boundary := record(t, u("b"), now.Add(-time.Hour), time.Hour) // expires exactly at now
	live := record(t, u("c"), now.Add(-time.Hour), time.Hour+time.Microsecond)
	for _, r := range []reset.Record{expired, boundary, live} {
		mustRotate(t, s, r)
	}
	// A store may clean up on its own: count what is left to prune.
	present := 0
	for _, r := range []reset.Record{expired, boundary} {
		if _, err := s.Lookup(ctx(t), r.Hash); err == nil {
			present++
		}
	}
	// In batches of one: each call removes at most one record of a kind.
	n := 0
	for {
		got, err := p.Prune(ctx(t), now, 1)
		if err != nil {
			t.Fatalf("Prune: %v", err)
		}
		if got.Tokens > 1 || got.Cooldowns > 1 {
			t.Fatalf("Prune with limit 1 removed %+v", got)
		}
		n += got.Tokens
		if got.Tokens+got.Cooldowns == 0 {
			break
		}
	}
	if n < present {
		t.Errorf("Prune reported %d removed records, want at least %d", n, present)
	}
	for _, r := range []reset.Record{expired, boundary} {
		_, err := s.Lookup(ctx(t), r.Hash)
		wantNotFound(t, err)
	}
	got, err := s.Lookup(ctx(t), live.Hash)
	wantRecord(t, got, err, live)
}

func testCooldown(t *testing.T, s reset.Store, u func(string) string) {
	c := s.(reset.Cooldowner)
	k1, k2 := newHash(t), newHash(t)
	step := func(k reset.Hash, now time.Time, want bool) {
		t.Helper()
		ok, err := c.Cooldown(ctx(t), k, "", now, now.Add(time.Minute))
		if err != nil || ok != want {
			t.Fatalf("Cooldown at %v = %v, %v; want %v", now, ok, err, want)
		}
	}
	step(k1, base, true)
	step(k1, base.Add(59*time.Second), false)
	step(k2, base.Add(59*time.Second), true)
	step(k1, base.Add(time.Minute), true) // the first ended exactly now
	step(k1, base.Add(time.Minute+time.Second), false)

	// An owner recognises its own running cooldown; another owner, or no
	// owner, does not.
	k3 := newHash(t)
	owned := func(owner string, now time.Time, want bool) {
		t.Helper()
		ok, err := c.Cooldown(ctx(t), k3, owner, now, now.Add(time.Minute))
		if err != nil || ok != want {
			t.Fatalf("Cooldown(owner %q) at %v = %v, %v; want %v", owner, now, ok, err, want)
		}
	}
	owned(u("env-1"), base, true)
	owned(u("env-1"), base.Add(time.Second), true) // the same request again
	owned(u("env-2"), base.Add(2*time.Second), false)
	owned("", base.Add(3*time.Second), false)
}

func testConcurrentCooldown(t *testing.T, s reset.Store, u func(string) string) {
	c := s.(reset.Cooldowner)
	k := newHash(t)
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i := range Concurrency {
		wg.Go(func() {
			owner := "" // half without an owner, half each with its own
			if i%2 == 1 {
				owner = fmt.Sprintf("owner-%d", i)
			}
			ok, err := c.Cooldown(ctx(t), k, owner, base, base.Add(time.Minute))
			if err != nil {
				t.Errorf("Cooldown: %v", err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent cooldowns started %d, want exactly 1", Concurrency, wins.Load())
	}
}

// newService builds a Service on s with test doubles.
func newService(t *testing.T, s reset.Store, u func(string) string) (*reset.Service, *Users, *Mailer, *Clock) {
	users, mailer, clock := &Users{}, &Mailer{}, NewClock(base)
	users.Add(u("a"), u("a")+"@example.com", "old password")
	svc, err := reset.New(reset.Config{
		KeepSessions: true,
		Store:        s, Users: users, Mailer: mailer, Now: clock.Now,
		ResetURL: "https://app.example.com/reset",
		Logger:   discardLogger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Shutdown(context.Background()) })
	return svc, users, mailer, clock
}

func testService(t *testing.T, s reset.Store, u func(string) string) {
	svc, users, _, _ := newService(t, s, u)
	first, err := svc.RequestTrusted(ctx(t), reset.TrustedRequest{Email: u("a") + "@example.com", SkipSend: true})
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	second, err := svc.RequestTrusted(ctx(t), reset.TrustedRequest{Email: u("a") + "@example.com", SkipSend: true})
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	if _, err := svc.Inspect(ctx(t), Token(first.Link)); !errors.Is(err, reset.ErrInvalidToken) {
		t.Fatalf("Inspect of a replaced token: %v, want ErrInvalidToken", err)
	}
	if _, err := svc.Complete(ctx(t), reset.Completion{Token: Token(second.Link), Password: "new passphrase for tests 1"}); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if got := users.Password(u("a")); got != "new passphrase for tests 1" {
		t.Fatalf("password = %q after Complete", got)
	}
	if _, err := svc.Complete(ctx(t), reset.Completion{Token: Token(second.Link), Password: "new passphrase for tests 2"}); !errors.Is(err, reset.ErrInvalidToken) {
		t.Fatalf("second Complete: %v, want ErrInvalidToken", err)
	}
}

func testServiceExpiry(t *testing.T, s reset.Store, u func(string) string) {
	svc, _, _, clock := newService(t, s, u)
	iss, err := svc.RequestTrusted(ctx(t), reset.TrustedRequest{Email: u("a") + "@example.com", SkipSend: true})
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	clock.Advance(svc.Config().TokenTTL - time.Microsecond)
	if _, err := svc.Inspect(ctx(t), Token(iss.Link)); err != nil {
		t.Fatalf("Inspect 1µs before expiry: %v", err)
	}
	clock.Advance(time.Microsecond)
	if _, err := svc.Inspect(ctx(t), Token(iss.Link)); !errors.Is(err, reset.ErrExpiredToken) {
		t.Fatalf("Inspect at expiry: %v, want ErrExpiredToken", err)
	}
	if _, err := svc.Complete(ctx(t), reset.Completion{Token: Token(iss.Link), Password: "new passphrase for tests"}); !errors.Is(err, reset.ErrExpiredToken) {
		t.Fatalf("Complete at expiry: %v, want ErrExpiredToken", err)
	}
}
