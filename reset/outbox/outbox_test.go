package outbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  outbox.Options
		want string
	}{
		{"short key", outbox.Options{Keys: []outbox.SealKey{{ID: "a", Key: []byte("short")}}}, "32 bytes"},
		{"duplicate key", outbox.Options{Keys: []outbox.SealKey{testKey, testKey}}, "duplicate"},
		{"lease too short", outbox.Options{Keys: []outbox.SealKey{testKey}, Lease: 500 * time.Millisecond}, "Lease"},
		{"negative", outbox.Options{Keys: []outbox.SealKey{testKey}, Workers: -1}, "Workers"},
		{"rate NaN", outbox.Options{Keys: []outbox.SealKey{testKey}, Rate: math.NaN()}, "Rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := outbox.New(memstore.New(), tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error naming %s", err, tc.want)
			}
		})
	}
	// Without a key the outbox can report but cannot serve a Service.
	ob, err := outbox.New(memstore.New(), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ob.Report(t.Context()); err != nil {
		t.Fatalf("Report without a key: %v", err)
	}
	_, err = reset.New(reset.Config{KeepSessions: true, Store: memstore.New(), Users: &resettest.Users{}, Mailer: &resettest.Mailer{},
		ResetURL: "https://a.example/r", Queue: ob})
	if err == nil || !strings.Contains(err.Error(), "Keys") {
		t.Fatalf("reset.New with a keyless outbox: %v, want an error naming Keys", err)
	}
	// An outbox serves one Service, and runs only once it does.
	ob, _ = outbox.New(memstore.New(), outbox.Options{Keys: []outbox.SealKey{testKey}})
	if err := ob.Run(t.Context()); err == nil {
		t.Fatal("Run of an outbox no Service uses succeeded")
	}
	if _, err := ob.Drain(t.Context()); err == nil {
		t.Fatal("Drain of an outbox no Service uses succeeded")
	}
	cfg := reset.Config{KeepSessions: true, Store: memstore.New(), Users: &resettest.Users{}, Mailer: &resettest.Mailer{}, ResetURL: "https://a.example/r", Queue: ob}
	if _, err := reset.New(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := reset.New(cfg); err == nil || !strings.Contains(err.Error(), "already") {
		t.Fatalf("a second Service on one outbox: %v", err)
	}
}

// A public request does the same work whether or not the address has an
// account: one Enqueue, no lookup, nothing else.
func TestPublicRequestSameWork(t *testing.T) {
	e := newEnv(t)
	var snaps []map[string]int
	for _, addr := range []string{userEmail, "nobody@anywhere.com"} {
		before := e.store.snapshot()
		if err := e.svc.Request(t.Context(), addr, ""); err != nil {
			t.Fatal(err)
		}
		after := e.store.snapshot()
		diff := map[string]int{}
		for k, v := range after {
			if v != before[k] {
				diff[k] = v - before[k]
			}
		}
		snaps = append(snaps, diff)
	}
	for _, d := range snaps {
		if len(d) != 1 || d["Enqueue"] != 1 {
			t.Fatalf("store work per public request: %v, want exactly one Enqueue", snaps)
		}
	}
	if e.users.lookups.Load() != 0 {
		t.Fatal("a public request looked the account up before answering")
	}
	if n := e.drain(t); n != 2 {
		t.Fatalf("drained %d, want 2", n)
	}
	got := e.mailer.delivered()
	if len(got) != 1 || got[0].To != userEmail {
		t.Fatalf("delivered %+v, want one mail to the account", got)
	}
	if _, err := e.svc.Inspect(t.Context(), resettest.Token(got[0].Text)); err != nil {
		t.Fatalf("mailed token: %v", err)
	}
	if r := e.report(t); r.Pending != 0 || e.events.count(reset.EventSent) != 1 {
		t.Fatalf("Report = %+v, %d sent", r, e.events.count(reset.EventSent))
	}
}

// A retry sends the identical message with the same idempotency key, and
// does not rotate the token again; the sealed message holds no token.
func TestRetrySendsSameMessage(t *testing.T) {
	e := newEnv(t)
	e.mailer.fail = func(m reset.Message, attempt int) error {
		if attempt <= 2 {
			return errors.New("503 Service Unavailable")
		}
		return nil
	}
	if err := e.svc.Request(t.Context(), userEmail, "https://anywhere.com/reset?lang=fr"); err != nil {
		t.Fatal(err)
	}
	e.drain(t) // attempt 1 fails
	tok := resettest.Token(e.mailer.attempts[0].Text)
	// At rest: the envelope holds no token, link or address in the clear.
	peekAt := e.clock.Now().Add(11 * time.Second)
	envs, err := e.store.Store.Claim(t.Context(), "peek", peekAt, peekAt.Add(time.Second), 10)
	if err != nil || len(envs) != 1 {
		t.Fatalf("peek: %v %v", envs, err)
	}
	sealed := envs[0].Sealed
	if len(sealed) == 0 || bytes.Contains(sealed, []byte(tok)) || bytes.Contains(sealed, []byte("token=")) ||
		bytes.Contains(sealed, []byte(userEmail)) || bytes.Contains(sealed, []byte("anywhere.com")) {
		t.Fatalf("the sealed envelope leaks the token, link or address")
	}
	e.clock.Advance(12 * time.Second) // past the peek's lease and the backoff
	e.drain(t)                        // attempt 2 fails
	e.clock.Advance(time.Minute)
	e.drain(t) // attempt 3 succeeds
	if len(e.mailer.attempts) != 3 {
		t.Fatalf("%d attempts, want 3", len(e.mailer.attempts))
	}
	for _, m := range e.mailer.attempts[1:] {
		if m.ID != e.mailer.attempts[0].ID || m.Text != e.mailer.attempts[0].Text || m.HTML != e.mailer.attempts[0].HTML {
			t.Fatal("a retry sent a different message")
		}
	}
	if e.store.snapshot()["Rotate"] != 1 {
		t.Fatalf("token rotated %d times, want 1", e.store.snapshot()["Rotate"])
	}
	if _, err := e.svc.Inspect(t.Context(), tok); err != nil {
		t.Fatalf("the token mailed after retries: %v", err)
	}
	if !strings.Contains(e.mailer.attempts[0].Text, "https://anywhere.com/reset?lang=fr&token=") {
		t.Errorf("the caller's link was not used")
	}
	if e.events.count(reset.EventRetry) != 2 {
		t.Errorf("retry events: %d", e.events.count(reset.EventRetry))
	}
}

// A permanent failure moves a message aside at once and does not hold
// back the others; a dead reset email is erased and revived with a new
// token. Its last error names no address.
func TestPoisonIsolation(t *testing.T) {
	e := newEnv(t)
	e.mailer.fail = func(m reset.Message, _ int) error {
		if m.To == userEmail {
			return fmt.Errorf("%w: 550 5.1.1 <%s>: Recipient address rejected", reset.ErrPermanent, m.To)
		}
		return nil
	}
	for _, addr := range []string{userEmail, "second@anywhere.com"} {
		if err := e.svc.Request(t.Context(), addr, ""); err != nil {
			t.Fatal(err)
		}
	}
	e.drain(t)
	if got := e.mailer.delivered(); len(got) != 1 || got[0].To != "second@anywhere.com" {
		t.Fatalf("delivered %+v", got)
	}
	dead, err := e.ob.Dead(t.Context(), 10)
	if err != nil || len(dead) != 1 || !strings.Contains(dead[0].LastError, "550") {
		t.Fatalf("dead = %+v, %v: want one", dead, err)
	}
	if strings.Contains(dead[0].LastError, userEmail) || strings.Contains(dead[0].LastError, "jborder") {
		t.Fatalf("LastError holds the address: %q", dead[0].LastError)
	}
	first := resettest.Token(e.mailer.attempts[0].Text)
	n := 0
	for _, m := range e.mailer.attempts {
		if m.To == userEmail {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("a permanent failure was tried %d times", n)
	}
	e.mailer.fail = nil
	if err := e.ob.Revive(t.Context(), dead[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := e.ob.Revive(t.Context(), "no such envelope"); !errors.Is(err, reset.ErrNotFound) {
		t.Fatalf("Revive of an unknown id: %v", err)
	}
	// Revived inside the cooldown the first issue started: an operator
	// asked for it, so it is sent.
	e.drain(t)
	got := e.mailer.delivered()
	if len(got) != 2 || got[1].To != userEmail {
		t.Fatalf("after Revive: %+v", got)
	}
	if _, err := e.svc.Inspect(t.Context(), resettest.Token(got[1].Text)); err != nil {
		t.Fatalf("revived mail's token: %v", err)
	}
	if resettest.Token(got[1].Text) == first {
		t.Fatal("the revived email carries the token of the dead one")
	}
	if e.events.count(reset.EventDead) != 1 {
		t.Error("no dead event")
	}
}

// The provider fails for two minutes; afterwards every message goes out,
// none twice.
func TestProviderOutage(t *testing.T) {
	e := newEnv(t, func(c *reset.Config, _ *outbox.Options) { c.Cooldown = -1 })
	start := e.clock.Now()
	e.mailer.fail = func(reset.Message, int) error {
		if e.clock.Now().Before(start.Add(2 * time.Minute)) {
			return errors.New("503 Service Unavailable")
		}
		return nil
	}
	const n = 30
	for i := range n {
		addr := fmt.Sprintf("user%d@anywhere.com", i)
		e.users.Add(fmt.Sprintf("id%d", i), addr, oldPass)
		if err := e.svc.Request(t.Context(), addr, ""); err != nil {
			t.Fatal(err)
		}
	}
	for range 400 {
		e.drain(t)
		if len(e.mailer.delivered()) == n {
			break
		}
		e.clock.Advance(5 * time.Second)
	}
	if got := len(e.mailer.delivered()); got != n {
		t.Fatalf("%d of %d delivered after the outage", got, n)
	}
	if e.store.snapshot()["Rotate"] != n {
		t.Fatalf("%d rotations for %d requests", e.store.snapshot()["Rotate"], n)
	}
	if r := e.report(t); r.Pending != 0 || r.Dead != 0 || e.events.count(reset.EventRetry) == 0 {
		t.Fatalf("report %+v, %d retries", r, e.events.count(reset.EventRetry))
	}
}

// A worker that dies after issuing the token but before saving the sealed
// message loses its lease; the next worker issues afresh, past the
// cooldown the dead worker started (the envelope owns it), and the mail
// goes out once.
func TestWorkerDiesHoldingClaim(t *testing.T) {
	const lease = 40 * time.Second // shorter than the cooldown
	e := newEnv(t, func(_ *reset.Config, o *outbox.Options) { o.Lease = lease })
	e.store.failSave.Store(1)
	if err := e.svc.Request(t.Context(), userEmail, ""); err != nil {
		t.Fatal(err)
	}
	e.drain(t)
	if len(e.mailer.delivered()) != 0 {
		t.Fatal("sent although the sealed message was not saved")
	}
	e.clock.Advance(lease - time.Second)
	if e.drain(t) != 0 {
		t.Fatal("claimed while the lease ran")
	}
	e.clock.Advance(time.Second)
	e.drain(t)
	got := e.mailer.delivered()
	if len(got) != 1 {
		t.Fatalf("delivered %d, want 1", len(got))
	}
	if _, err := e.svc.Inspect(t.Context(), resettest.Token(got[0].Text)); err != nil {
		t.Fatalf("delivered token: %v", err)
	}
}

func TestTrustedRequestAndNotice(t *testing.T) {
	e := newEnv(t)
	iss, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail})
	if err != nil {
		t.Fatal(err)
	}
	e.drain(t)
	got := e.mailer.delivered()
	if len(got) != 1 || resettest.Token(got[0].Text) != resettest.Token(iss.Link) || got[0].ID != iss.MessageID {
		t.Fatalf("delivered %+v", got)
	}
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: resettest.Token(iss.Link), Password: "long enough passphrase"}); err != nil {
		t.Fatal(err)
	}
	e.drain(t)
	if got := e.mailer.delivered(); len(got) != 2 || got[1].Kind != reset.KindChanged {
		t.Fatalf("notice not delivered: %+v", got)
	}
}

func TestFullAndStoreDown(t *testing.T) {
	e := newEnv(t, func(_ *reset.Config, o *outbox.Options) { o.MaxPending = 2 })
	old, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail, SkipSend: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := e.svc.Request(ctx, userEmail, ""); err == nil {
		t.Fatalf("store failing: %v, want its error", err)
	}
	for range 2 {
		if err := e.svc.Request(t.Context(), "second@anywhere.com", ""); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.report(t); r.Pending != 2 { // counts now
		t.Fatalf("Report = %+v", r)
	}
	// Full: the public answer does not change, the request is dropped.
	if err := e.svc.Request(t.Context(), userEmail, ""); err != nil {
		t.Fatalf("public request to a full outbox: %v, want nil", err)
	}
	if e.svc.Dropped() != 1 || e.events.count(reset.EventDropped) != 1 {
		t.Fatalf("Dropped = %d, want 1", e.svc.Dropped())
	}
	// A trusted request is refused before anything changes: the user's
	// link still works.
	if _, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail}); !errors.Is(err, reset.ErrQueueFull) {
		t.Fatalf("trusted request to a full outbox: %v, want ErrQueueFull", err)
	}
	if _, err := e.svc.Inspect(t.Context(), resettest.Token(old.Link)); err != nil {
		t.Fatalf("a refused request rotated the token: %v", err)
	}
	if n := e.store.snapshot()["Enqueue"]; n != 3 { // 1 failed, 2 queued
		t.Fatalf("%d Enqueue calls, want 3", n)
	}
	e.svc.Shutdown(t.Context())
	if err := e.svc.Request(t.Context(), userEmail, ""); !errors.Is(err, reset.ErrClosed) {
		t.Fatalf("after Shutdown: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	e := newEnv(t)
	e.mailer.fail = func(reset.Message, int) error { return errors.New("503") }
	if err := e.svc.Request(t.Context(), userEmail, ""); err != nil {
		t.Fatal(err)
	}
	e.drain(t) // sealed with k1, then failed
	k2 := outbox.SealKey{ID: "k2", Key: bytes.Repeat([]byte{0x17}, 32)}
	e.mailer.fail = nil
	next := newEnv(t, func(c *reset.Config, o *outbox.Options) {
		c.Store, c.Users, c.Mailer, c.Now = e.store, e.users, e.mailer, e.clock.Now
		o.Keys = []outbox.SealKey{k2, testKey}
	})
	e.clock.Advance(time.Hour)
	next.drain(t)
	if len(e.mailer.delivered()) != 1 {
		t.Fatal("a message sealed with the old key was not delivered after rotation")
	}
}

// During a rolling key rotation, an instance without the new key gives
// back what was sealed with it, unchanged and in its place, instead of
// burying it.
func TestUnknownKeyIsGivenBack(t *testing.T) {
	newKey := outbox.SealKey{ID: "k2", Key: bytes.Repeat([]byte{0x17}, 32)}
	ahead := newEnv(t, func(_ *reset.Config, o *outbox.Options) { o.Keys = []outbox.SealKey{newKey, testKey} })
	behind := newEnv(t, func(c *reset.Config, _ *outbox.Options) {
		c.Store, c.Users, c.Mailer, c.Now = ahead.store, ahead.users, ahead.mailer, ahead.clock.Now
	})
	if err := ahead.svc.Request(t.Context(), userEmail, ""); err != nil {
		t.Fatal(err)
	}
	if n := behind.drain(t); n != 0 {
		t.Fatalf("the instance without the key carried out %d", n)
	}
	if dead, _ := behind.ob.Dead(t.Context(), 10); len(dead) != 0 {
		t.Fatalf("the instance without the key buried %+v", dead)
	}
	// Given back unchanged: due at once for the instance with the key.
	ahead.drain(t)
	if got := ahead.mailer.delivered(); len(got) != 1 || got[0].To != userEmail {
		t.Fatalf("delivered %+v, want the reset email once", got)
	}
}

// flakyUsers fails every lookup while down is set.
type flakyUsers struct {
	*resettest.Users
	down bool
}

func (f *flakyUsers) LookupEmail(ctx context.Context, email string) (reset.User, error) {
	if f.down {
		return reset.User{}, errors.New("users database unreachable")
	}
	return f.Users.LookupEmail(ctx, email)
}

// Public requests queued during an outage of the users back end meet the
// cooldown when it comes back: one email, not fifty.
func TestOutageDoesNotSkipTheCooldown(t *testing.T) {
	users := &flakyUsers{Users: &resettest.Users{}, down: true}
	users.Add(userID, userEmail, oldPass)
	e := newEnv(t, func(c *reset.Config, _ *outbox.Options) { c.Users = users })
	for range 50 {
		if err := e.svc.Request(t.Context(), userEmail, ""); err != nil {
			t.Fatal(err)
		}
	}
	e.drain(t) // every lookup fails; each envelope is rescheduled
	if n := e.mailer.attemptCount(); n != 0 {
		t.Fatalf("%d emails during the outage", n)
	}
	users.down = false
	e.clock.Advance(15 * time.Second) // past every envelope's backoff, inside the cooldown
	e.drain(t)
	if n := len(e.mailer.delivered()); n != 1 {
		t.Fatalf("%d emails after the outage, want 1", n)
	}
	if n := e.store.snapshot()["Rotate"]; n != 1 {
		t.Fatalf("%d rotations, want 1", n)
	}
}

// Two Services whose outboxes list their seal keys in different orders
// (a key rotation in progress) compute the same cooldown key: a public
// request through each, seconds apart, sends one email.
func TestCooldownKeyIndependentOfSealKeys(t *testing.T) {
	k2 := outbox.SealKey{ID: "k2", Key: bytes.Repeat([]byte{0x17}, 32)}
	a := newEnv(t, func(_ *reset.Config, o *outbox.Options) { o.Keys = []outbox.SealKey{testKey, k2} })
	b := newEnv(t, func(c *reset.Config, o *outbox.Options) {
		c.Store, c.Users, c.Mailer, c.Now = a.store, a.users, a.mailer, a.clock.Now
		o.Keys = []outbox.SealKey{k2, testKey}
	})
	if err := a.svc.Request(t.Context(), userEmail, ""); err != nil {
		t.Fatal(err)
	}
	a.drain(t)
	a.clock.Advance(10 * time.Second)
	if err := b.svc.Request(t.Context(), userEmail, ""); err != nil {
		t.Fatal(err)
	}
	b.drain(t)
	if n := len(a.mailer.delivered()); n != 1 {
		t.Fatalf("%d emails for two requests 10 s apart through two instances, want 1", n)
	}
}

func TestRun(t *testing.T) {
	e := newEnv(t)
	rec := &resettest.Mailer{}
	e.mailer.fail = func(m reset.Message, _ int) error { return rec.Send(context.Background(), m) }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- e.ob.Run(ctx) }()
	for _, addr := range []string{userEmail, "second@anywhere.com"} {
		if err := e.svc.Request(t.Context(), addr, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rec.Wait(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := e.report(t); r.Pending != 0 || r.Dead != 0 {
		t.Fatalf("Report after Run: %+v", r)
	}
}

// An outbox that nobody runs is a visible mistake: a minute after the
// first Put, a process that started no Run or Drain logs a warning when
// the oldest envelope has waited that long. One that drains stays quiet.
func TestNotRunIsReported(t *testing.T) {
	for _, drained := range []bool{false, true} {
		t.Run(fmt.Sprint("drained=", drained), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, func(c *reset.Config, _ *outbox.Options) { c.Now = nil })
				if drained {
					e.drain(t)
				}
				if _, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail}); err != nil {
					t.Fatal(err)
				}
				time.Sleep(2 * time.Minute)
				synctest.Wait()
				warned := strings.Contains(e.logs.String(), "runs no workers")
				if warned == drained {
					t.Fatalf("warning logged = %v for drained = %v:\n%s", warned, drained, e.logs.String())
				}
			})
		})
	}
}

// A database outage does not flood the log: the workers' failed claims
// are written once a minute with a count, and the outbox's figures reach
// the log every minute without an OnEvent.
func TestOutageLoggedOncePerMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, func(c *reset.Config, _ *outbox.Options) { c.Now = nil; c.OnEvent = nil })
		if _, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail}); err != nil {
			t.Fatal(err)
		}
		e.store.failClaim.Store(true)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- e.ob.Run(ctx) }()
		time.Sleep(10*time.Minute + time.Second)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		out := e.logs.String()
		claims := strings.Count(out, "outbox: claim failed")
		if claims < 10 || claims > 12 || !strings.Contains(out, "repeated=") {
			t.Fatalf("%d claim-failed lines in 10 minutes of outage (2 workers polling every second), want one a minute with a count:\n%s", claims, out)
		}
		figures := 0
		for line := range strings.Lines(out) {
			if strings.Contains(line, `msg="outbox figures"`) && strings.Contains(line, "pending=1 dead=0") && strings.Contains(line, "level=INFO") {
				figures++
			}
		}
		if figures != 10 {
			t.Fatalf("%d figures lines in 10 minutes, want 10:\n%s", figures, out)
		}
	})
}

// Stopping Run while a claim waits on the database is not an error.
func TestCancelDuringClaimIsNotAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, func(c *reset.Config, _ *outbox.Options) { c.Now = nil })
		e.store.blockClaim.Store(true)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- e.ob.Run(ctx) }()
		synctest.Wait() // both workers wait in Claim
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if out := e.logs.String(); strings.Contains(out, "level=ERROR") || strings.Contains(out, "level=WARN") {
			t.Fatalf("stopping Run during a claim logged:\n%s", out)
		}
	})
}
