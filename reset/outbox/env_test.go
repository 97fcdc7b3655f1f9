package outbox_test

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
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

const (
	userID    = "u1"
	userEmail = "jborder@anywhere.com"
	oldPass   = "old password"
)

var testKey = outbox.SealKey{ID: "k1", Key: bytes.Repeat([]byte{0x42}, 32)}

// eventLog records a Service's events.
type eventLog struct {
	mu sync.Mutex
	ev []reset.Event
}

func (l *eventLog) add(e reset.Event) {
	l.mu.Lock()
	l.ev = append(l.ev, e)
	l.mu.Unlock()
}

func (l *eventLog) count(k reset.EventKind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.ev {
		if e.Kind == k {
			n++
		}
	}
	return n
}

// safeBuffer is a bytes.Buffer safe for the concurrent writes of loggers.
type safeBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.String()
}

// countingStore counts the calls made on its store.
type countingStore struct {
	*memstore.Store
	mu       sync.Mutex
	calls    map[string]int
	failSave atomic.Int64 // fail this many Save calls with hold=true

	onReserve   func()      // called after each Reserve
	failReserve atomic.Bool // Reserve fails
	failClaim   atomic.Bool // Claim fails, as in a database outage
	blockClaim  atomic.Bool // Claim waits for its ctx to end
}

func (c *countingStore) Claim(ctx context.Context, worker string, now, leaseUntil time.Time, max int) ([]outbox.Envelope, error) {
	switch {
	case c.blockClaim.Load():
		<-ctx.Done()
		return nil, fmt.Errorf("memstore: claim: %w", ctx.Err())
	case c.failClaim.Load():
		return nil, errors.New("dial tcp 10.0.0.1:5432: connect: connection refused")
	}
	return c.Store.Claim(ctx, worker, now, leaseUntil, max)
}

func (c *countingStore) Reserve(ctx context.Context, key string, now time.Time, interval time.Duration, burst int) (time.Time, error) {
	if c.failReserve.Load() {
		return time.Time{}, errors.New("budget table unreachable")
	}
	at, err := c.Store.Reserve(ctx, key, now, interval, burst)
	if c.onReserve != nil {
		c.onReserve()
	}
	return at, err
}

func newCountingStore() *countingStore {
	return &countingStore{Store: memstore.New(), calls: map[string]int{}}
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

func (c *countingStore) Enqueue(ctx context.Context, e outbox.Envelope) error {
	c.count("Enqueue")
	return c.Store.Enqueue(ctx, e)
}

func (c *countingStore) Save(ctx context.Context, w string, e outbox.Envelope, hold bool) error {
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
	// lose, when set, is asked after the provider accepted a message:
	// a non-nil error replaces the answer (the answer was lost).
	lose func(m reset.Message, attempt int) error
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
	} else {
		m.accepted[msg.IdempotencyKey()] = msg
		m.order = append(m.order, msg.IdempotencyKey())
	}
	if m.lose != nil {
		return m.lose(msg, len(m.attempts))
	}
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

func (m *scriptedMailer) attemptCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.attempts)
}

type env struct {
	svc    *reset.Service
	ob     *outbox.Outbox
	store  *countingStore
	users  *countingUsers
	mailer *scriptedMailer
	clock  *resettest.Clock
	events *eventLog
	logs   *safeBuffer
}

// newEnv makes a Service whose Queue is an Outbox over a counting
// memstore. edit may change the Config (its Store must then be an
// outbox.Store too) and the Options.
func newEnv(t *testing.T, edit ...func(*reset.Config, *outbox.Options)) *env {
	t.Helper()
	e := &env{
		store:  newCountingStore(),
		users:  &countingUsers{Users: &resettest.Users{}},
		mailer: &scriptedMailer{},
		clock:  resettest.NewClock(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)),
		events: &eventLog{},
		logs:   &safeBuffer{},
	}
	e.users.Add(userID, userEmail, oldPass)
	e.users.Add("u2", "second@anywhere.com", oldPass)
	cfg := reset.Config{
		KeepSessions: true,
		Store:        e.store, Users: e.users, Mailer: e.mailer, Now: e.clock.Now,
		ResetURL: "https://app.example.com/auth/reset", AllowedLinks: []string{"https://anywhere.com/"},
		Logger:  slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnEvent: e.events.add,
	}
	opt := outbox.Options{Keys: []outbox.SealKey{testKey}}
	for _, f := range edit {
		f(&cfg, &opt)
	}
	ob, err := outbox.New(cfg.Store.(outbox.Store), opt)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Queue = ob
	svc, err := reset.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc, e.ob = svc, ob
	t.Cleanup(func() {
		svc.Shutdown(context.Background())
		// Nothing secret is ever logged.
		out := e.logs.String()
		for _, m := range e.mailer.delivered() {
			if tok := resettest.Token(m.Text); tok != "" && strings.Contains(out, tok) {
				t.Errorf("a token was logged:\n%s", out)
			}
		}
		if strings.Contains(out, userEmail) || strings.Contains(out, "token=") {
			t.Errorf("an address or a link was logged:\n%s", out)
		}
	})
	return e
}

func (e *env) drain(t *testing.T) int {
	t.Helper()
	n, err := e.ob.Drain(t.Context())
	if err != nil {
		t.Fatalf("Drain: %v", err)
	}
	return n
}

func (e *env) report(t *testing.T) outbox.Report {
	t.Helper()
	r, err := e.ob.Report(t.Context())
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	return r
}
