package reset_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

var testKey = reset.SealKey{ID: "k1", Key: bytes.Repeat([]byte{0x42}, 32)}

// countingStore counts the calls a Service makes on its store.
type countingStore struct {
	*memstore.Store
	mu       sync.Mutex
	calls    map[string]int
	failSave atomic.Int64 // fail this many Save calls with hold=true
}

func (c *countingStore) count(name string) {
	c.mu.Lock()
	c.calls[name]++
	c.mu.Unlock()
}

func (c *countingStore) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]int{}
	for k, v := range c.calls {
		m[k] = v
	}
	return m
}

func (c *countingStore) Rotate(ctx context.Context, r reset.Record) error {
	c.count("Rotate")
	return c.Store.Rotate(ctx, r)
}
func (c *countingStore) Cooldown(ctx context.Context, k reset.Hash, owner string, now, until time.Time) (bool, error) {
	c.count("Cooldown")
	return c.Store.Cooldown(ctx, k, owner, now, until)
}
func (c *countingStore) Enqueue(ctx context.Context, e reset.Envelope) error {
	c.count("Enqueue")
	return c.Store.Enqueue(ctx, e)
}
func (c *countingStore) Save(ctx context.Context, w string, e reset.Envelope, hold bool) error {
	if hold && c.failSave.Add(-1) >= 0 {
		return errors.New("store went away")
	}
	return c.Store.Save(ctx, w, e, hold)
}

// countingUsers counts lookups.
type countingUsers struct {
	*resettest.Users
	lookups atomic.Int64
}

func (u *countingUsers) LookupEmail(ctx context.Context, email string) (reset.User, error) {
	u.lookups.Add(1)
	return u.Users.LookupEmail(ctx, email)
}

// scriptedMailer fails while fail returns an error, and records each
// accepted message once per idempotency key, as a provider would.
type scriptedMailer struct {
	mu       sync.Mutex
	attempts []reset.Message
	accepted map[string]reset.Message
	order    []string
	fail     func(m reset.Message, attempt int) error
}

func (m *scriptedMailer) Send(ctx context.Context, msg reset.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts = append(m.attempts, msg)
	if m.fail != nil {
		if err := m.fail(msg, len(m.attempts)); err != nil {
			return err
		}
	}
	if m.accepted == nil {
		m.accepted = map[string]reset.Message{}
	}
	if prev, ok := m.accepted[msg.IdempotencyKey()]; ok {
		if prev.Text != msg.Text {
			return fmt.Errorf("%w: 409 invalid_idempotent_request", reset.ErrPermanent)
		}
		return nil
	}
	m.accepted[msg.IdempotencyKey()] = msg
	m.order = append(m.order, msg.IdempotencyKey())
	return nil
}

func (m *scriptedMailer) delivered() []reset.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []reset.Message
	for _, k := range m.order {
		out = append(out, m.accepted[k])
	}
	return out
}

type outboxEnv struct {
	svc    *reset.Service
	store  *countingStore
	users  *countingUsers
	mailer *scriptedMailer
	clock  *resettest.Clock
	events *eventLog
}

func newOutboxEnv(t *testing.T, edit ...func(*reset.Config)) *outboxEnv {
	t.Helper()
	e := &outboxEnv{
		store:  &countingStore{Store: memstore.New(), calls: map[string]int{}},
		users:  &countingUsers{Users: &resettest.Users{}},
		mailer: &scriptedMailer{},
		clock:  resettest.NewClock(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)),
		events: &eventLog{},
	}
	e.users.Add(userID, userEmail, oldPass)
	e.users.Add("u2", "second@anywhere.com", oldPass)
	cfg := reset.Config{
		Store: e.store, Users: e.users, Mailer: e.mailer, Now: e.clock.Now,
		ResetURL: "https://app.example.com/auth/reset", AllowedLinks: []string{"https://anywhere.com/"},
		Outbox:  &reset.OutboxOptions{Keys: []reset.SealKey{testKey}, PollInterval: time.Millisecond},
		Logger:  discardLogger(),
		OnEvent: e.events.add,
	}
	for _, f := range edit {
		f(&cfg)
	}
	svc, err := reset.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	return e
}

func (e *outboxEnv) drain(t *testing.T) int {
	t.Helper()
	n, err := e.svc.DrainOutbox(t.Context())
	if err != nil {
		t.Fatalf("DrainOutbox: %v", err)
	}
	return n
}

func TestOutboxConfigErrors(t *testing.T) {
	type plain struct{ reset.Store }
	cases := []struct {
		name string
		edit func(*reset.Config)
		want string
	}{
		{"no key", func(c *reset.Config) { c.Outbox.Keys = nil }, "Outbox.Keys"},
		{"short key", func(c *reset.Config) { c.Outbox.Keys = []reset.SealKey{{ID: "a", Key: []byte("short")}} }, "32 bytes"},
		{"store without outbox", func(c *reset.Config) { c.Store = plain{memstore.New()} }, "OutboxStore"},
		{"lease too short", func(c *reset.Config) { c.Outbox.Lease = 500 * time.Millisecond }, "Lease"},
		{"lease shorter than a send", func(c *reset.Config) { c.Store = withoutRenewal(c.Store); c.Outbox.Lease = time.Second }, "Lease"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := reset.Config{Store: memstore.New(), Users: &resettest.Users{}, Mailer: &resettest.Mailer{},
				ResetURL: "https://a.example/r", Outbox: &reset.OutboxOptions{Keys: []reset.SealKey{testKey}}}
			tc.edit(&cfg)
			if _, err := reset.New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

// A public request does the same work whether or not the address has an
// account: one Enqueue, no lookup, nothing else.
func TestOutboxPublicRequestSameWork(t *testing.T) {
	e := newOutboxEnv(t)
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
	r, err := e.svc.OutboxReport(t.Context())
	if err != nil || r.Pending != 0 || r.Sent != 1 {
		t.Fatalf("OutboxReport = %+v, %v", r, err)
	}
}

// A retry sends the identical message with the same idempotency key, and
// does not rotate the token again; the sealed message holds no token.
func TestOutboxRetrySendsSameMessage(t *testing.T) {
	e := newOutboxEnv(t)
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
	envs, err := e.store.Store.Claim(t.Context(), "peek", e.clock.Now().Add(11*time.Second), e.clock.Now().Add(12*time.Second), 10)
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
	e.clock.Advance(20 * time.Second)
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
// token.
func TestOutboxPoisonIsolation(t *testing.T) {
	e := newOutboxEnv(t)
	e.mailer.fail = func(m reset.Message, _ int) error {
		if m.To == userEmail {
			return fmt.Errorf("%w: 422 validation_error", reset.ErrPermanent)
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
	dead, err := e.svc.DeadMessages(t.Context(), 10)
	if err != nil || len(dead) != 1 || !strings.Contains(dead[0].LastError, "422") {
		t.Fatalf("dead = %+v, %v: want one", dead, err)
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
	if err := e.svc.Revive(t.Context(), dead[0].ID); err != nil {
		t.Fatal(err)
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
	// The dead envelope kept the request, not the email: reviving it
	// issued a new token.
	if resettest.Token(got[1].Text) == first {
		t.Fatal("the revived email carries the token of the dead one")
	}
	if e.events.count(reset.EventDead) != 1 {
		t.Error("no dead event")
	}
}

// The provider fails for two minutes; afterwards every message goes out,
// none twice.
func TestOutboxProviderOutage(t *testing.T) {
	e := newOutboxEnv(t, func(c *reset.Config) { c.Outbox.RetryBase = time.Second; c.Cooldown = -1 })
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
	for range 200 {
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
	r, _ := e.svc.OutboxReport(t.Context())
	if r.Pending != 0 || r.Dead != 0 || r.Failed == 0 {
		t.Fatalf("report %+v", r)
	}
}

// A worker that dies after issuing the token but before saving the sealed
// message loses its lease; the next worker issues afresh, past the
// cooldown the dead worker started (with a lease longer than the
// cooldown), and the mail goes out once.
func TestOutboxWorkerDiesHoldingClaim(t *testing.T) {
	// A lease shorter than the cooldown: the envelope comes back while the
	// cooldown its first worker started still runs.
	const lease = 40 * time.Second
	e := newOutboxEnv(t, func(c *reset.Config) { c.Outbox.Lease = lease })
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

// A worker whose sends are slow stops working its batch when the lease
// left could end before a send times out: another worker may claim the
// rest by then, and issuing a token after it did would make its mailed
// link invalid. The rest waits for its lease to end. (With a Store that
// renews leases, the heartbeat keeps the claim instead.)
func TestOutboxBatchOutlivesLease(t *testing.T) {
	const send = 10 * time.Second
	e := newOutboxEnv(t, func(c *reset.Config) {
		c.Store = withoutRenewal(c.Store)
		c.SendTimeout, c.Outbox.Batch, c.Outbox.Lease = send, 3, 2*send+time.Second
	})
	e.mailer.fail = func(reset.Message, int) error {
		e.clock.Advance(send) // each send takes all of SendTimeout
		return nil
	}
	e.users.Add("u3", "third@anywhere.com", oldPass)
	for _, addr := range []string{userEmail, "second@anywhere.com", "third@anywhere.com"} {
		if err := e.svc.Request(t.Context(), addr, ""); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.drain(t); n != 2 {
		t.Fatalf("worked %d envelopes of a batch whose lease allowed 2", n)
	}
	if got := e.store.snapshot()["Rotate"]; got != 2 {
		t.Fatalf("%d tokens issued, want 2: the third was issued with too little lease left", got)
	}
	e.clock.Advance(time.Second) // the third envelope's lease ends
	if n := e.drain(t); n != 1 || len(e.mailer.delivered()) != 3 {
		t.Fatalf("after the lease ended: worked %d, delivered %d; want 1 and 3", n, len(e.mailer.delivered()))
	}
}

func TestOutboxTrustedRequestAndNotice(t *testing.T) {
	e := newOutboxEnv(t)
	iss, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail})
	if err != nil {
		t.Fatal(err)
	}
	e.drain(t)
	got := e.mailer.delivered()
	if len(got) != 1 || resettest.Token(got[0].Text) != resettest.Token(iss.Link) || got[0].ID != iss.MessageID {
		t.Fatalf("delivered %+v", got)
	}
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: resettest.Token(iss.Link), Password: "long enough"}); err != nil {
		t.Fatal(err)
	}
	e.drain(t)
	if got := e.mailer.delivered(); len(got) != 2 || got[1].Kind != reset.KindChanged {
		t.Fatalf("notice not delivered: %+v", got)
	}
}

func TestOutboxFullAndStoreDown(t *testing.T) {
	e := newOutboxEnv(t, func(c *reset.Config) { c.Outbox.MaxPending = 2 })
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
	if r, err := e.svc.OutboxReport(t.Context()); err != nil || r.Pending != 2 { // counts now
		t.Fatalf("OutboxReport = %+v, %v", r, err)
	}
	// Full: the public answer does not change, the request is dropped.
	if err := e.svc.Request(t.Context(), userEmail, ""); err != nil {
		t.Fatalf("public request to a full outbox: %v, want nil", err)
	}
	if e.svc.Dropped() != 1 || e.events.count(reset.EventDropped) != 1 {
		t.Fatalf("Dropped = %d, want 1", e.svc.Dropped())
	}
	// A trusted request is refused before anything changes: the user's
	// link still works (hardening #6).
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

func TestOutboxKeyRotation(t *testing.T) {
	e := newOutboxEnv(t)
	e.mailer.fail = func(reset.Message, int) error { return errors.New("timeout") }
	if err := e.svc.Request(t.Context(), userEmail, ""); err != nil {
		t.Fatal(err)
	}
	e.drain(t) // sealed with k1, then failed
	k2 := reset.SealKey{ID: "k2", Key: bytes.Repeat([]byte{0x17}, 32)}
	e.mailer.fail = nil
	svc2, err := reset.New(reset.Config{Store: e.store, Users: e.users, Mailer: e.mailer, Now: e.clock.Now,
		ResetURL: "https://app.example.com/auth/reset", Logger: discardLogger(),
		Outbox: &reset.OutboxOptions{Keys: []reset.SealKey{k2, testKey}}})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	if _, err := svc2.DrainOutbox(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(e.mailer.delivered()) != 1 {
		t.Fatal("a message sealed with the old key was not delivered after rotation")
	}
}

func TestRunOutbox(t *testing.T) {
	stats := make(chan *reset.OutboxReport, 100)
	e := newOutboxEnv(t, func(c *reset.Config) {
		c.Outbox.StatsInterval = time.Millisecond
		c.OnEvent = func(ev reset.Event) {
			if ev.Kind == reset.EventOutboxStats {
				select {
				case stats <- ev.Outbox:
				default:
				}
			}
		}
	})
	rec := &resettest.Mailer{}
	e.mailer.fail = func(m reset.Message, _ int) error { return rec.Send(context.Background(), m) }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- e.svc.RunOutbox(ctx) }()
	for _, addr := range []string{userEmail, "second@anywhere.com"} {
		if err := e.svc.Request(t.Context(), addr, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rec.Wait(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	// The figures are emitted while the workers run.
	for r := range stats {
		if r.Sent == 2 && r.Pending == 0 {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := (&reset.Service{}).RunOutbox(t.Context()); err == nil {
		t.Error("RunOutbox without an outbox succeeded")
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
