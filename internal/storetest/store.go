package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
)

// Store is what the shared token tests need of a store.
type Store interface {
	reset.Store
	reset.Pruner
	reset.Cooldowner
}

// Base is the tests' reference time, with microseconds.
var Base = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

// NewService returns a Service on store with one known user, id, whose
// address is id@example.com, on clock when it is not nil, and shuts it
// down when tb ends.
func NewService(tb testing.TB, store reset.Store, id string, clock *resettest.Clock) (*reset.Service, *resettest.Users, *resettest.Mailer) {
	tb.Helper()
	users, mailer := &resettest.Users{}, &resettest.Mailer{}
	users.Add(id, id+"@example.com", "old password")
	cfg := reset.Config{
		Store: store, Users: users, Mailer: mailer,
		ResetURL: "https://app.example.com/reset",
		Logger:   slog.New(slog.DiscardHandler),
	}
	if clock != nil {
		cfg.Now = clock.Now
	}
	svc, err := reset.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { svc.Shutdown(context.Background()) })
	return svc, users, mailer
}

// TestConcurrentService drives 64 concurrent password-lost requests for
// one user, then 64 concurrent completions of one token, through the core:
// one valid token, one token row, one winner, no row left. rows counts
// the rows of one of the store's tables ("tokens").
func TestConcurrentService(t *testing.T, s Store, rows func(table string) int) {
	const n = 64
	svc, users, _ := NewService(t, s, "concurrent", nil)
	ctx := t.Context()

	links := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var iss reset.Issued
			iss, errs[i] = svc.RequestTrusted(ctx, reset.TrustedRequest{Email: "concurrent@example.com", SkipSend: true})
			links[i] = iss.Link
		})
	}
	wg.Wait()
	var valid []string
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Request %d: %v", i, errs[i])
		}
		tok := resettest.Token(links[i])
		_, err := svc.Inspect(ctx, tok)
		switch {
		case err == nil:
			valid = append(valid, tok)
		case !errors.Is(err, reset.ErrInvalidToken):
			t.Fatalf("Inspect: %v", err)
		}
	}
	if len(valid) != 1 {
		t.Fatalf("%d concurrent requests left %d valid tokens, want 1", n, len(valid))
	}
	if r := rows("tokens"); r != 1 {
		t.Fatalf("%d rows after concurrent requests, want 1", r)
	}

	var wins atomic.Int64
	winner := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			pw := fmt.Sprintf("new password %d", i)
			_, err := svc.Complete(ctx, reset.Completion{Token: valid[0], Password: pw})
			switch {
			case err == nil:
				wins.Add(1)
				winner <- pw
			case !errors.Is(err, reset.ErrInvalidToken):
				t.Errorf("Complete: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent completions of one token: %d succeeded, want 1", n, wins.Load())
	}
	if got, want := users.Password("concurrent"), <-winner; got != want {
		t.Fatalf("password is %q, want the winner's %q", got, want)
	}
	if r := rows("tokens"); r != 0 {
		t.Fatalf("%d rows after completion, want 0", r)
	}
}

// TestConcurrentCooldownService sends 64 concurrent throttled requests
// for one address through the core: the cooldown starts once, so exactly
// one token is issued, and one cooldown row ("cooldowns") is left.
func TestConcurrentCooldownService(t *testing.T, s Store, rows func(table string) int) {
	const n = 64
	svc, _, _ := NewService(t, s, "cool", nil)
	var issued, throttled atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: "cool@example.com", SkipSend: true, Throttle: true})
			switch {
			case err == nil:
				issued.Add(1)
			case errors.Is(err, reset.ErrThrottled):
				throttled.Add(1)
			default:
				t.Errorf("Request: %v", err)
			}
		})
	}
	wg.Wait()
	if issued.Load() != 1 || throttled.Load() != n-1 {
		t.Fatalf("%d concurrent throttled requests: %d issued, %d throttled; want 1 and %d", n, issued.Load(), throttled.Load(), n-1)
	}
	if r := rows("cooldowns"); r != 1 {
		t.Fatalf("%d cooldown rows, want 1", r)
	}
}

// TestConsumeRacesRotate makes Rotate and Consume of the same user race:
// a consume may win only with the record it asked for, and never removes
// the newer record.
func TestConsumeRacesRotate(t *testing.T, s Store) {
	ctx := t.Context()
	for i := range 50 {
		user := fmt.Sprintf("race-%d", i)
		old := reset.Record{Hash: sha256.Sum256([]byte(user + "old")), UserID: user, Email: "a@example.com", CreatedAt: Base, ExpiresAt: Base.Add(time.Hour)}
		newer := old
		newer.Hash = sha256.Sum256([]byte(user + "new"))
		if err := s.Rotate(ctx, old); err != nil {
			t.Fatal(err)
		}
		var got reset.Record
		var cerr, rerr error
		var wg sync.WaitGroup
		wg.Go(func() { got, cerr = s.Consume(ctx, old.Hash) })
		wg.Go(func() { rerr = s.Rotate(ctx, newer) })
		wg.Wait()
		if rerr != nil {
			t.Fatal(rerr)
		}
		switch {
		case cerr == nil && got.Hash != old.Hash:
			t.Fatalf("Consume returned %x, want the old record", got.Hash)
		case cerr != nil && !errors.Is(cerr, reset.ErrNotFound):
			t.Fatal(cerr)
		}
		// The newer record survives either way.
		if _, err := s.Lookup(ctx, newer.Hash); err != nil {
			t.Fatalf("newer record after the race: %v", err)
		}
		if _, err := s.Lookup(ctx, old.Hash); !errors.Is(err, reset.ErrNotFound) {
			t.Fatalf("old record after the race: %v, want ErrNotFound", err)
		}
	}
}

// TestExpiryBoundary checks expiry and cooldown ends to the microsecond,
// in the store and through the core with a fake clock, and that
// nanoseconds are truncated, never rounded up.
func TestExpiryBoundary(t *testing.T, s Store) {
	ctx := t.Context()
	rec := reset.Record{Hash: sha256.Sum256([]byte("boundary")), UserID: "boundary", Email: "b@example.com",
		CreatedAt: Base.Add(999), ExpiresAt: Base.Add(time.Hour + 999)}
	if err := s.Rotate(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, err := s.Lookup(ctx, rec.Hash)
	if err != nil {
		t.Fatal(err)
	}
	exp := Base.Add(time.Hour)
	if !got.ExpiresAt.Equal(exp) || !got.CreatedAt.Equal(Base) || got.ExpiresAt.Location() != time.UTC {
		t.Fatalf("times read back as %v, %v; want %v, %v in UTC", got.CreatedAt, got.ExpiresAt, Base, exp)
	}
	if p, err := s.Prune(ctx, exp.Add(-time.Microsecond), Base, 10); err != nil || p.Tokens != 0 {
		t.Fatalf("Prune 1µs before expiry = %+v, %v; want 0 tokens", p, err)
	}
	if p, err := s.Prune(ctx, exp, Base, 10); err != nil || p.Tokens != 1 {
		t.Fatalf("Prune at expiry = %+v, %v; want 1 token", p, err)
	}

	// Through the core with a fake clock.
	clock := resettest.NewClock(Base)
	svc, _, _ := NewService(t, s, "boundary", clock)
	iss, err := svc.RequestTrusted(ctx, reset.TrustedRequest{Email: "boundary@example.com", SkipSend: true})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(svc.TokenTTL() - time.Microsecond)
	if _, err := svc.Inspect(ctx, resettest.Token(iss.Link)); err != nil {
		t.Fatalf("Inspect 1µs before expiry: %v", err)
	}
	clock.Advance(time.Microsecond)
	if _, err := svc.Complete(ctx, reset.Completion{Token: resettest.Token(iss.Link), Password: "new password"}); !errors.Is(err, reset.ErrExpiredToken) {
		t.Fatalf("Complete at expiry: %v, want ErrExpiredToken", err)
	}

	// Cooldowns end exactly at their until.
	key := sha256.Sum256([]byte("cooldown boundary"))
	for _, c := range []struct {
		now  time.Time
		want bool
	}{
		{Base, true},
		{Base.Add(time.Minute - time.Microsecond), false},
		{Base.Add(time.Minute), true},
	} {
		ok, err := s.Cooldown(ctx, key, "", c.now, c.now.Add(time.Minute))
		if err != nil || ok != c.want {
			t.Fatalf("Cooldown at %v = %v, %v; want %v", c.now, ok, err, c.want)
		}
		// A cooldown that ends when it starts never runs and writes nothing.
		if ok, err := s.Cooldown(ctx, key, "", c.now, c.now); err != nil || !ok {
			t.Fatalf("empty Cooldown = %v, %v; want true", ok, err)
		}
	}
}
