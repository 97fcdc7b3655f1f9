package resettest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
)

// newUserService returns a Service on store with one known user, id,
// whose address is id@example.com, and shuts it down when t ends.
func newUserService(t *testing.T, store reset.Store, id string, clock *Clock, edit ...func(*reset.Config)) (*reset.Service, *Users) {
	t.Helper()
	users := &Users{}
	users.Add(id, id+"@example.com", "old password")
	cfg := reset.Config{
		KeepSessions: true,
		Store:        store, Users: users, Mailer: &Mailer{},
		ResetURL: "https://app.example.com/reset",
		Logger:   discardLogger,
	}
	if clock != nil {
		cfg.Now = clock.Now
	}
	for _, f := range edit {
		f(&cfg)
	}
	svc, err := reset.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Shutdown(context.Background()) })
	return svc, users
}

// TestConcurrentService drives [Concurrency] concurrent password-lost
// requests for the user id (a user ID no other test uses) through the
// core, then as many concurrent completions of the one valid token: one
// valid token, one winner, the token gone. [TestStore] runs it; a store
// whose tests can count its rows passes rows, which must return the
// number of records the store holds for table ("tokens"), to check that
// one record is left after the requests and none after the completion.
// rows may be nil.
func TestConcurrentService(t *testing.T, s reset.Store, id string, rows func(table string) int) {
	const n = Concurrency
	svc, users := newUserService(t, s, id, nil)
	links := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var iss reset.Issued
			iss, errs[i] = svc.RequestTrusted(ctx(t), reset.TrustedRequest{Email: id + "@example.com", SkipSend: true})
			links[i] = iss.Link
		})
	}
	wg.Wait()
	var valid []string
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Request %d: %v", i, errs[i])
		}
		tok := Token(links[i])
		_, err := svc.Inspect(ctx(t), tok)
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
	if rows != nil {
		if r := rows("tokens"); r != 1 {
			t.Fatalf("%d rows after concurrent requests, want 1", r)
		}
	}

	var wins atomic.Int64
	winner := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			pw := fmt.Sprintf("zebra kettle lamp %d", i)
			_, err := svc.Complete(ctx(t), reset.Completion{Token: valid[0], Password: pw})
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
	if got, want := users.Password(id), <-winner; got != want {
		t.Fatalf("password is %q, want the winner's %q", got, want)
	}
	if _, err := svc.Inspect(ctx(t), valid[0]); !errors.Is(err, reset.ErrInvalidToken) {
		t.Fatalf("Inspect of the completed token: %v, want ErrInvalidToken", err)
	}
	if rows != nil {
		if r := rows("tokens"); r != 0 {
			t.Fatalf("%d rows after completion, want 0", r)
		}
	}
}

// TestConcurrentCooldownService sends [Concurrency] concurrent throttled
// requests for the address of user id through the core: the cooldown
// starts once, so exactly one token is issued. [TestStore] runs it on a
// [reset.Cooldowner]; as for [TestConcurrentService], rows may count the
// store's records of table ("cooldowns"): one is left.
func TestConcurrentCooldownService(t *testing.T, s reset.Store, id string, rows func(table string) int) {
	svc, _ := newUserService(t, s, id, nil)
	burst(t, svc, id+"@example.com", 1, rows, "cooldowns")
}

// burst sends [Concurrency] concurrent throttled requests for email
// through svc and checks that want of them issued a token and the rest
// were throttled, and, when rows is not nil, that table holds one row.
func burst(t *testing.T, svc *reset.Service, email string, want int64, rows func(table string) int, table string) {
	t.Helper()
	const n = Concurrency
	var issued, throttled atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := svc.RequestTrusted(ctx(t), reset.TrustedRequest{Email: email, SkipSend: true, Throttle: true})
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
	if issued.Load() != want || throttled.Load() != n-want {
		t.Fatalf("%d concurrent throttled requests: %d issued, %d throttled; want %d and %d", n, issued.Load(), throttled.Load(), want, n-want)
	}
	if rows != nil {
		if r := rows(table); r != 1 {
			t.Fatalf("%d %s rows, want 1", r, table)
		}
	}
}

// Rotate and Consume of the same user race: a consume may win only with
// the record it asked for, and never removes the newer record.
func testConsumeRacesRotate(t *testing.T, s reset.Store, u func(string) string) {
	for i := range 50 {
		user := u(fmt.Sprintf("race-%d", i))
		old := record(t, user, base, time.Hour)
		newer := record(t, user, base, time.Hour)
		mustRotate(t, s, old)
		var got reset.Record
		var cerr, rerr error
		var wg sync.WaitGroup
		wg.Go(func() { got, cerr = s.Consume(ctx(t), old.Hash) })
		wg.Go(func() { rerr = s.Rotate(ctx(t), newer) })
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
		if _, err := s.Lookup(ctx(t), newer.Hash); err != nil {
			t.Fatalf("newer record after the race: %v", err)
		}
		_, err := s.Lookup(ctx(t), old.Hash)
		wantNotFound(t, err)
	}
}

// Expiry holds to the microsecond in the store and through the core with
// a fake clock; a store may truncate nanoseconds, never round them up.
func testExpiryBoundary(t *testing.T, s reset.Store, u func(string) string) {
	p := s.(reset.Pruner)
	// Far in the future, so that no record of another subtest expires in
	// the first second of the window.
	at := base.Add(50 * 365 * 24 * time.Hour)
	rec := record(t, u("boundary"), at.Add(999), time.Hour)
	mustRotate(t, s, rec)
	got, err := s.Lookup(ctx(t), rec.Hash)
	if err != nil {
		t.Fatal(err)
	}
	exp := at.Add(time.Hour)
	if !got.ExpiresAt.Truncate(time.Microsecond).Equal(exp) || got.ExpiresAt.After(rec.ExpiresAt) ||
		!got.CreatedAt.Truncate(time.Microsecond).Equal(at) || got.CreatedAt.After(rec.CreatedAt) || got.ExpiresAt.Location() != time.UTC {
		t.Fatalf("times read back as %v, %v; want %v, %v in UTC", got.CreatedAt, got.ExpiresAt, at, exp)
	}
	prune(t, p, exp.Add(-time.Microsecond))
	if _, err := s.Lookup(ctx(t), rec.Hash); err != nil {
		t.Fatalf("Prune 1µs before expiry removed the record: %v", err)
	}
	// A store that keeps nanoseconds expires the record 999ns later.
	prune(t, p, exp.Add(999))
	_, err = s.Lookup(ctx(t), rec.Hash)
	wantNotFound(t, err)

	// Through the core with a fake clock.
	clock := NewClock(base)
	svc, _ := newUserService(t, s, u("core"), clock)
	iss, err := svc.RequestTrusted(ctx(t), reset.TrustedRequest{Email: u("core") + "@example.com", SkipSend: true})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(svc.Config().TokenTTL - time.Microsecond)
	if _, err := svc.Inspect(ctx(t), Token(iss.Link)); err != nil {
		t.Fatalf("Inspect 1µs before expiry: %v", err)
	}
	clock.Advance(time.Microsecond)
	if _, err := svc.Complete(ctx(t), reset.Completion{Token: Token(iss.Link), Password: "new passphrase for tests"}); !errors.Is(err, reset.ErrExpiredToken) {
		t.Fatalf("Complete at expiry: %v, want ErrExpiredToken", err)
	}
}

// Cooldowns end exactly at their until, to the microsecond.
func testCooldownBoundary(t *testing.T, s reset.Store, u func(string) string) {
	c := s.(reset.Cooldowner)
	key := sha256.Sum256([]byte(u("cooldown boundary")))
	for _, k := range []struct {
		now  time.Time
		want bool
	}{
		{base, true},
		{base.Add(time.Minute - time.Microsecond), false},
		{base.Add(time.Minute), true},
	} {
		ok, err := c.Cooldown(ctx(t), key, "", k.now, k.now.Add(time.Minute))
		if err != nil || ok != k.want {
			t.Fatalf("Cooldown at %v = %v, %v; want %v", k.now, ok, err, k.want)
		}
	}
}

// CooldownSecret is 32 bytes, the same for concurrent first calls and
// ever after.
func testCooldownSecret(t *testing.T, s reset.Store, _ func(string) string) {
	c := s.(reset.Cooldowner)
	got := make([][]byte, Concurrency)
	errs := make([]error, Concurrency)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() { got[i], errs[i] = c.CooldownSecret(ctx(t)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("CooldownSecret: %v", err)
	}
	if len(got[0]) != 32 || bytes.Equal(got[0], make([]byte, 32)) {
		t.Fatalf("CooldownSecret = %x, want 32 random bytes", got[0])
	}
	for _, g := range got {
		if !bytes.Equal(g, got[0]) {
			t.Fatalf("concurrent calls returned %x and %x", got[0], g)
		}
	}
	again, err := c.CooldownSecret(ctx(t))
	if err != nil || !bytes.Equal(again, got[0]) {
		t.Fatalf("CooldownSecret later = %x, %v; want %x", again, err, got[0])
	}
	again[0] ^= 1 // the caller's copy
	if again, _ := c.CooldownSecret(ctx(t)); !bytes.Equal(again, got[0]) {
		t.Fatalf("changing a returned secret changed the store's")
	}
}

// prune prunes everything that expired by now.
func prune(t *testing.T, p reset.Pruner, now time.Time) {
	t.Helper()
	for {
		n, err := p.Prune(ctx(t), now, 1000)
		if err != nil {
			t.Fatalf("Prune: %v", err)
		}
		if n.Tokens < 1000 && n.Cooldowns < 1000 {
			return
		}
	}
}
