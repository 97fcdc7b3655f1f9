package reset_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

// spendCapture records the keys the Service spends budgets under.
type spendCapture struct {
	*memstore.Store
	mu   sync.Mutex
	keys []reset.Hash
}

func (s *spendCapture) Spend(ctx context.Context, key reset.Hash, owner string, now time.Time, window time.Duration, limit int) (bool, error) {
	s.mu.Lock()
	s.keys = append(s.keys, key)
	s.mu.Unlock()
	return s.Store.Spend(ctx, key, owner, now, window, limit)
}

// Issue 23 #6: public requests for one address, each after the cooldown,
// send at most 5 emails in any 24 hours; every answer is the same nil;
// the budget's key is an HMAC of the address under the store's secret.
func TestDailyLimitPublic(t *testing.T) {
	st := &spendCapture{Store: memstore.New()}
	e := newEnv(t, func(c *reset.Config) { c.Store = st })
	asked := 0
	ask := func(n int) {
		t.Helper()
		for range n {
			if err := e.svc.Request(t.Context(), userEmail, ""); err != nil {
				t.Fatalf("Request: %v", err)
			}
			asked++
			e.events.waitCarried(asked)
			e.clock.Advance(time.Minute) // past the cooldown
		}
	}
	ask(7)
	if _, err := e.mailer.Wait(t.Context(), 5); err != nil {
		t.Fatal(err)
	}
	if n := len(e.mailer.Messages()); n != 5 {
		t.Fatalf("%d emails from 7 requests a minute apart, want 5", n)
	}
	if n := e.events.count(reset.EventThrottled); n != 2 {
		t.Fatalf("%d throttled events, want 2", n)
	}
	// A day after the first use, it stops counting, and a minute later
	// the second: two more go.
	e.clock.Advance(24*time.Hour - 7*time.Minute)
	ask(2)
	if _, err := e.mailer.Wait(t.Context(), 7); err != nil {
		t.Fatal(err)
	}
	if n := len(e.mailer.Messages()); n != 7 {
		t.Fatalf("%d emails after the first two uses left the window, want 7", n)
	}

	secret, err := st.CooldownSecret(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("passreset/quota\x00" + userEmail))
	want := m.Sum(nil)
	for _, k := range st.keys {
		if !bytes.Equal(k[:], want) {
			t.Fatalf("budget key %x, want HMAC-SHA-256 of the address under the store's secret %x", k, want)
		}
	}
}

// waitCarried blocks until n requests have been carried out, each ending
// as requested or throttled.
func (l *eventLog) waitCarried(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cond == nil {
		l.cond = sync.NewCond(&l.mu)
	}
	for l.countLocked(reset.EventRequested)+l.countLocked(reset.EventThrottled) < n {
		l.cond.Wait()
	}
}

// A trusted request that asks for throttling meets the daily limit as
// ErrThrottled, and changes nothing; without Throttle it does not count.
func TestDailyLimitTrusted(t *testing.T) {
	e := newEnv(t, func(c *reset.Config) { c.Cooldown = -1; c.DailyLimit = 2 })
	var last reset.Issued
	for range 2 {
		last = e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true, Throttle: true})
	}
	if _, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail, SkipSend: true, Throttle: true}); !errors.Is(err, reset.ErrThrottled) {
		t.Fatalf("third request: %v, want ErrThrottled", err)
	}
	if _, err := e.svc.Inspect(t.Context(), token(last.Link)); err != nil {
		t.Fatalf("a throttled request replaced the token: %v", err)
	}
	e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
}

func TestDailyLimitSettings(t *testing.T) {
	// Negative disables it.
	e := newEnv(t, func(c *reset.Config) { c.Cooldown = -1; c.DailyLimit = -1 })
	for range 20 {
		e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true, Throttle: true})
	}
	// A store without Cooldowner and Quota: the limit holds in process.
	e = newEnv(t, func(c *reset.Config) { c.Cooldown = -1; c.Store = keyless{memstore.New()} })
	for range 5 {
		e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true, Throttle: true})
	}
	if _, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail, SkipSend: true, Throttle: true}); !errors.Is(err, reset.ErrThrottled) {
		t.Fatalf("sixth request without store support: %v, want ErrThrottled", err)
	}
	// More than a store keeps is refused.
	_, err := reset.New(reset.Config{Store: memstore.New(), Users: &resettest.Users{}, Mailer: &resettest.Mailer{},
		ResetURL: "https://app.example.com/reset", DailyLimit: 1001})
	if err == nil || !strings.Contains(err.Error(), "DailyLimit") {
		t.Fatalf("DailyLimit 1001: %v, want an error naming DailyLimit", err)
	}
}

// Issue 23 #4: the record keeps only an HMAC of the stamp keyed with the
// token itself, never the stamp or its plain hash.
func TestStampIsKeyedWithTheToken(t *testing.T) {
	e := newEnv(t)
	e.users.SetStamp(userEmail, "pwhash-v1")
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	raw, err := base64.RawURLEncoding.DecodeString(token(iss.Link))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.store.Lookup(t.Context(), sha256.Sum256(raw))
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, raw)
	m.Write([]byte("passreset/stamp\x00pwhash-v1"))
	if !bytes.Equal(rec.Stamp[:], m.Sum(nil)) {
		t.Fatalf("stamp hash %x, want HMAC-SHA-256 keyed with the token", rec.Stamp)
	}
	if rec.Stamp == sha256.Sum256([]byte("pwhash-v1")) {
		t.Fatal("stamp stored as a plain hash")
	}
}

// A failing account lookup while checking the stamp puts the token back:
// the person can try again with the same link once Users works.
func TestCompleteStampLookupFailureKeepsToken(t *testing.T) {
	e := newEnv(t)
	e.users.SetStamp(userEmail, "v1")
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	boom := errors.New("users down")
	e.users.SetErr(boom)
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: token(iss.Link), Password: "violet tractor mends 1"}); !errors.Is(err, boom) {
		t.Fatalf("Complete with Users down: %v, want its error", err)
	}
	e.users.SetErr(nil)
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: token(iss.Link), Password: "violet tractor mends 1"}); err != nil {
		t.Fatalf("Complete once Users works again: %v", err)
	}
}
