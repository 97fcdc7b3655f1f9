package reset_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/password"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

const (
	userID    = "u1"
	userEmail = "jborder@anywhere.com"
	oldPass   = "old password"
)

type env struct {
	svc    *reset.Service
	store  *memstore.Store
	users  *resettest.Users
	mailer *resettest.Mailer
	clock  *resettest.Clock
	logs   *bytes.Buffer
	events *eventLog
}

type eventLog struct {
	mu   sync.Mutex
	cond *sync.Cond
	ev   []reset.Event
}

func (l *eventLog) add(e reset.Event) {
	l.mu.Lock()
	l.ev = append(l.ev, e)
	if l.cond != nil {
		l.cond.Broadcast()
	}
	l.mu.Unlock()
}

// wait blocks until n events of kind k have been seen.
func (l *eventLog) wait(k reset.EventKind, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cond == nil {
		l.cond = sync.NewCond(&l.mu)
	}
	for l.countLocked(k) < n {
		l.cond.Wait()
	}
}

func (l *eventLog) countLocked(k reset.EventKind) int {
	n := 0
	for _, e := range l.ev {
		if e.Kind == k {
			n++
		}
	}
	return n
}

func (l *eventLog) count(k reset.EventKind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.countLocked(k)
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

func newEnv(t *testing.T, edit ...func(*reset.Config)) *env {
	t.Helper()
	e := &env{store: memstore.New(), users: &resettest.Users{}, mailer: &resettest.Mailer{},
		clock: resettest.NewClock(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)), events: &eventLog{}}
	e.users.Add(userID, userEmail, oldPass)
	logs := &safeBuffer{}
	cfg := reset.Config{
		KeepSessions: true,
		Store:        e.store, Users: e.users, Mailer: e.mailer, Now: e.clock.Now,
		ResetURL:     "https://app.example.com/auth/reset",
		AllowedLinks: []string{"https://anywhere.com/", "http://127.0.0.1:8080/app/reset"},
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnEvent:      e.events.add,
	}
	for _, f := range edit {
		f(&cfg)
	}
	svc, err := reset.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		svc.Shutdown(context.Background())
		logs.mu.Lock()
		defer logs.mu.Unlock()
		// Nothing secret is ever logged.
		out := logs.String()
		for _, m := range e.mailer.Messages() {
			if tok := resettest.Token(m.Text); tok != "" && strings.Contains(out, tok) {
				t.Errorf("a token was logged:\n%s", out)
			}
		}
		if strings.Contains(out, userEmail) || strings.Contains(out, "token=") {
			t.Errorf("an address or a link was logged:\n%s", out)
		}
	})
	e.svc = svc
	e.logs = &logs.Buffer
	return e
}

func (e *env) request(t *testing.T, r reset.TrustedRequest) reset.Issued {
	t.Helper()
	iss, err := e.svc.RequestTrusted(t.Context(), r)
	if err != nil {
		t.Fatalf("Request(%+v): %v", r, err)
	}
	return iss
}

func token(link string) string { return resettest.Token(link) }

func TestNewNamesMissingParts(t *testing.T) {
	_, err := reset.New(reset.Config{KeepSessions: true})
	if err == nil {
		t.Fatal("New accepted an empty Config")
	}
	for _, want := range []string{"Store", "Users", "Mailer", "ResetURL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	bad := []struct {
		name string
		edit func(*reset.Config)
		want string
	}{
		{"relative ResetURL", func(c *reset.Config) { c.ResetURL = "/reset" }, "ResetURL"},
		{"http ResetURL", func(c *reset.Config) { c.ResetURL = "http://example.com/reset" }, "ResetURL"},
		{"bad allowlist", func(c *reset.Config) { c.AllowedLinks = []string{"https://user@x.com/"} }, "AllowedLinks"},
		{"negative TTL", func(c *reset.Config) { c.TokenTTL = -time.Second }, "TokenTTL"},
		{"subject injection", func(c *reset.Config) { c.Templates = &reset.Templates{ResetSubject: "a\r\nBcc: x@y"} }, "line break"},
		{"sessions unsaid", func(c *reset.Config) { c.KeepSessions = false }, "EndSessions is required to end the user's other sessions after a reset; set KeepSessions: true"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			cfg := reset.Config{KeepSessions: true, Store: memstore.New(), Users: &resettest.Users{}, Mailer: &resettest.Mailer{}, ResetURL: "https://a.example/reset"}
			tc.edit(&cfg)
			if _, err := reset.New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestRequestIssuesLinkAndMails(t *testing.T) {
	e := newEnv(t)
	// The typed variant differs in case: mail goes to the account's own address.
	iss := e.request(t, reset.TrustedRequest{Email: "JBorder@Anywhere.com", Wait: true})
	if !strings.HasPrefix(iss.Link, "https://app.example.com/auth/reset?token=") {
		t.Fatalf("link %q", iss.Link)
	}
	if want := e.clock.Now().Add(time.Hour); !iss.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", iss.ExpiresAt, want)
	}
	msgs := e.mailer.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.To != userEmail || m.Kind != reset.KindReset || m.ID != iss.MessageID {
		t.Errorf("message %+v", m)
	}
	if m.Subject != "Reset your app.example.com password" {
		t.Errorf("subject %q", m.Subject)
	}
	for _, body := range []string{m.Text, m.HTML} {
		if !strings.Contains(body, "1 hour") || !strings.Contains(body, "did not ask") {
			t.Errorf("body lacks expiry or the ignore line:\n%s", body)
		}
	}
	if !strings.Contains(m.Text, iss.Link) || token(m.HTML) != token(iss.Link) {
		t.Errorf("bodies do not carry the link")
	}
	if strings.Contains(m.IdempotencyKey(), token(iss.Link)) || m.IdempotencyKey() != "password_reset/"+m.ID {
		t.Errorf("idempotency key %q", m.IdempotencyKey())
	}
	// Only a hash is stored.
	raw, err := base64.RawURLEncoding.DecodeString(token(iss.Link))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Lookup(t.Context(), sha256.Sum256(raw)); err != nil {
		t.Errorf("store has no record under the token's SHA-256: %v", err)
	}
	if e.events.count(reset.EventRequested) != 1 || e.events.count(reset.EventSent) != 1 {
		t.Errorf("events: %+v", e.events.ev)
	}
}

func TestTokenKeyHashesWithHMAC(t *testing.T) {
	e := newEnv(t, func(c *reset.Config) { c.TokenKey = []byte("0123456789abcdef0123456789abcdef") })
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	raw, _ := base64.RawURLEncoding.DecodeString(token(iss.Link))
	if _, err := e.store.Lookup(t.Context(), sha256.Sum256(raw)); !errors.Is(err, reset.ErrNotFound) {
		t.Errorf("with TokenKey, a plain SHA-256 finds the record: %v", err)
	}
	if _, err := e.svc.Inspect(t.Context(), token(iss.Link)); err != nil {
		t.Errorf("Inspect: %v", err)
	}
}

func TestRequestUnknownUser(t *testing.T) {
	e := newEnv(t)
	_, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: "nobody@anywhere.com", Wait: true})
	if !errors.Is(err, reset.ErrUnknownUser) {
		t.Fatalf("err = %v, want ErrUnknownUser", err)
	}
	if e.store.Len() != 0 || len(e.mailer.Messages()) != 0 {
		t.Error("an unknown address changed something")
	}
}

func TestRequestRejectsBadInput(t *testing.T) {
	cases := []struct {
		email, link, field string
		sentinel           error
	}{
		{"", "", "email", reset.ErrInvalidInput},
		{"not-an-address", "", "email", reset.ErrInvalidInput},
		{"Jo <jborder@anywhere.com>", "", "email", reset.ErrInvalidInput},
		{"jborder@anywhere.com\r\nBcc: x@evil.com", "", "email", reset.ErrInvalidInput},
		{strings.Repeat("a", 250) + "@b.com", "", "email", reset.ErrInvalidInput},
		{userEmail, "https://evil.com/reset", "link", reset.ErrLinkNotAllowed},
		{userEmail, "http://anywhere.com/reset", "link", reset.ErrLinkNotAllowed},
		{userEmail, "https://anywhere.com.evil.com/", "link", reset.ErrLinkNotAllowed},
		{userEmail, "https://user:pw@anywhere.com/reset", "link", reset.ErrLinkNotAllowed},
		{userEmail, "https://anywhere.com/reset#frag", "link", reset.ErrLinkNotAllowed},
		{userEmail, "//anywhere.com/reset", "link", reset.ErrLinkNotAllowed},
		{userEmail, "https://anywhere.com/../x", "link", reset.ErrLinkNotAllowed},
		{userEmail, "http://127.0.0.1:8080/app/resetx", "link", reset.ErrLinkNotAllowed},
		{userEmail, "javascript:alert(1)", "link", reset.ErrLinkNotAllowed},
		{userEmail, "https://anywhere.com/re set", "link", reset.ErrLinkNotAllowed},
	}
	e := newEnv(t)
	for _, c := range cases {
		for _, public := range []bool{false, true} {
			var err error
			if public {
				err = e.svc.Request(t.Context(), c.email, c.link)
			} else {
				_, err = e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: c.email, Link: c.link})
			}
			var ie *reset.InputError
			if !errors.As(err, &ie) || ie.Field != c.field || !errors.Is(err, c.sentinel) || !errors.Is(err, reset.ErrInvalidInput) {
				t.Errorf("(%q, %q, public=%v): err = %v, want InputError for %s", c.email, c.link, public, err, c.field)
			}
		}
	}
	e.svc.Shutdown(t.Context())
	if e.store.Len() != 0 || len(e.mailer.Messages()) != 0 {
		t.Error("bad input changed something")
	}
}

func TestRequestCustomLink(t *testing.T) {
	e := newEnv(t)
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, Link: "https://anywhere.com/reset?lang=fr", SkipSend: true})
	if !strings.HasPrefix(iss.Link, "https://anywhere.com/reset?lang=fr&token=") {
		t.Errorf("link %q does not keep its own query", iss.Link)
	}
	iss = e.request(t, reset.TrustedRequest{Email: userEmail, Link: "http://127.0.0.1:8080/app/reset/x?token=attacker", SkipSend: true})
	if strings.Contains(iss.Link, "attacker") || !strings.HasPrefix(iss.Link, "http://127.0.0.1:8080/app/reset/x?token=") {
		t.Errorf("link %q", iss.Link)
	}
	if err := reset.CheckLink(e.svc, "https://anywhere.com/"); err != nil {
		t.Errorf("CheckLink: %v", err)
	}
}

func TestRotationInvalidatesOlderTokens(t *testing.T) {
	e := newEnv(t)
	first := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	second := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	if first.Link == second.Link {
		t.Fatal("two requests gave the same link")
	}
	if _, err := e.svc.Inspect(t.Context(), token(first.Link)); !errors.Is(err, reset.ErrInvalidToken) {
		t.Errorf("older token: %v, want ErrInvalidToken", err)
	}
	if _, err := e.svc.Inspect(t.Context(), token(second.Link)); err != nil {
		t.Errorf("newer token: %v", err)
	}
	if e.store.Len() != 1 {
		t.Errorf("store holds %d records, want 1", e.store.Len())
	}
}

func TestConcurrentRequestsLeaveOneToken(t *testing.T) {
	e := newEnv(t)
	links := make([]string, 64)
	var wg sync.WaitGroup
	for i := range links {
		wg.Go(func() {
			iss, err := e.svc.RequestTrusted(context.Background(), reset.TrustedRequest{Email: userEmail, SkipSend: true})
			if err != nil {
				t.Error(err)
			}
			links[i] = iss.Link
		})
	}
	wg.Wait()
	valid := 0
	for _, l := range links {
		if _, err := e.svc.Inspect(t.Context(), token(l)); err == nil {
			valid++
		}
	}
	if valid != 1 {
		t.Fatalf("%d valid tokens after concurrent requests, want 1", valid)
	}
}

func TestThrottle(t *testing.T) {
	e := newEnv(t)
	first := e.request(t, reset.TrustedRequest{Email: userEmail, Throttle: true, Wait: true})
	_, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: "JBORDER@anywhere.com", Throttle: true, Wait: true})
	if !errors.Is(err, reset.ErrThrottled) {
		t.Fatalf("second request in cooldown: %v, want ErrThrottled", err)
	}
	if _, err := e.svc.Inspect(t.Context(), token(first.Link)); err != nil {
		t.Errorf("a throttled request replaced the first token: %v", err)
	}
	// Without Throttle (a trusted caller) the cooldown does not apply.
	e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	e.clock.Advance(time.Minute) // the default cooldown
	e.request(t, reset.TrustedRequest{Email: userEmail, Throttle: true, Wait: true})
	if n := len(e.mailer.Messages()); n != 2 {
		t.Errorf("%d mails, want 2", n)
	}
	if e.events.count(reset.EventThrottled) != 1 {
		t.Errorf("throttled events: %d", e.events.count(reset.EventThrottled))
	}
}

func TestCooldownWithoutStoreSupport(t *testing.T) {
	// A Store without Cooldowner gets the in-process cooldown.
	type plain struct{ reset.Store }
	e := newEnv(t, func(c *reset.Config) { c.Store = plain{memstore.New()} })
	e.request(t, reset.TrustedRequest{Email: userEmail, Throttle: true, SkipSend: true})
	if _, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail, Throttle: true}); !errors.Is(err, reset.ErrThrottled) {
		t.Fatalf("err = %v, want ErrThrottled", err)
	}
}

func TestRequest(t *testing.T) {
	e := newEnv(t)
	for _, addr := range []string{userEmail, "nobody@anywhere.com", userEmail} {
		if err := e.svc.Request(t.Context(), addr, ""); err != nil {
			t.Fatalf("Request(%q): %v", addr, err)
		}
	}
	if err := e.svc.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	msgs := e.mailer.Messages()
	if len(msgs) != 1 || msgs[0].To != userEmail {
		t.Fatalf("messages %+v: want exactly one to the account (the third request is in cooldown)", msgs)
	}
	if e.events.count(reset.EventUnknown) != 1 || e.events.count(reset.EventThrottled) != 1 {
		t.Errorf("events %+v", e.events.ev)
	}
	if _, err := e.svc.Inspect(t.Context(), token(msgs[0].Text)); err != nil {
		t.Errorf("mailed token: %v", err)
	}
	if err := e.svc.Request(t.Context(), userEmail, ""); !errors.Is(err, reset.ErrClosed) {
		t.Errorf("after Shutdown: %v, want ErrClosed", err)
	}
}

func TestRequestPublicBackendFailureIsReported(t *testing.T) {
	e := newEnv(t)
	e.users.SetErr(errors.New("users table down"))
	if err := e.svc.Request(t.Context(), userEmail, ""); err != nil {
		t.Fatal(err)
	}
	e.svc.Shutdown(t.Context())
	if e.events.count(reset.EventFailed) != 1 {
		t.Errorf("no failure event for a back end error: %+v", e.events.ev)
	}
}

// blockingMailer blocks every Send until release is closed.
type blockingMailer struct {
	started chan struct{}
	release chan struct{}
	sent    atomic.Int64
}

func (b *blockingMailer) Send(ctx context.Context, m reset.Message) error {
	b.started <- struct{}{}
	select {
	case <-b.release:
		b.sent.Add(1)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestQueueFullChangesNothing(t *testing.T) {
	bm := &blockingMailer{started: make(chan struct{}, 10), release: make(chan struct{})}
	e := newEnv(t, func(c *reset.Config) { c.Mailer = bm; c.QueueSize = 1; c.Workers = 1 })
	e.request(t, reset.TrustedRequest{Email: userEmail}) // taken by the worker, which blocks
	<-bm.started
	queued := e.request(t, reset.TrustedRequest{Email: userEmail}) // fills the queue
	_, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail})
	if !errors.Is(err, reset.ErrQueueFull) {
		t.Fatalf("err = %v, want ErrQueueFull", err)
	}
	// The public answer does not change: the request is dropped, counted.
	if err := e.svc.Request(t.Context(), userEmail, ""); err != nil {
		t.Fatalf("public: err = %v, want nil", err)
	}
	e.events.wait(reset.EventDropped, 1)
	if e.svc.Dropped() != 1 {
		t.Errorf("Dropped = %d, want 1", e.svc.Dropped())
	}
	if _, err := e.svc.Inspect(t.Context(), token(queued.Link)); err != nil {
		t.Errorf("a refused request rotated the token: %v", err)
	}
	// SkipSend needs no queue.
	e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	close(bm.release)
	if err := e.svc.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if bm.sent.Load() != 2 {
		t.Errorf("sent %d, want the 2 accepted mails", bm.sent.Load())
	}
}

func TestShutdownDeadline(t *testing.T) {
	bm := &blockingMailer{started: make(chan struct{}, 10), release: make(chan struct{})}
	e := newEnv(t, func(c *reset.Config) { c.Mailer = bm; c.Workers = 1 })
	e.request(t, reset.TrustedRequest{Email: userEmail})
	<-bm.started
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := e.svc.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown with an ended context: %v", err)
	}
	if err := e.svc.Shutdown(t.Context()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestWaitReportsMailerError(t *testing.T) {
	e := newEnv(t)
	e.mailer.SetErr(errors.New("provider down"))
	_, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail, Wait: true})
	if err == nil || !strings.Contains(err.Error(), "provider down") {
		t.Fatalf("err = %v", err)
	}
	if e.events.count(reset.EventSendFailed) != 1 {
		t.Error("no send_failed event")
	}
}

func TestInspect(t *testing.T) {
	e := newEnv(t)
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	info, err := e.svc.Inspect(t.Context(), token(iss.Link))
	if err != nil || info.UserID != userID || info.Email != userEmail || !info.ExpiresAt.Equal(iss.ExpiresAt) {
		t.Fatalf("Inspect = %+v, %v", info, err)
	}
	// Inspect twice: nothing consumed.
	if _, err := e.svc.Inspect(t.Context(), token(iss.Link)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "short", strings.Repeat("A", 43), strings.Repeat("!", 43), token(iss.Link) + "A"} {
		if _, err := e.svc.Inspect(t.Context(), bad); !errors.Is(err, reset.ErrInvalidToken) {
			t.Errorf("Inspect(%q) = %v, want ErrInvalidToken", bad, err)
		}
	}
	e.clock.Advance(time.Hour)
	if _, err := e.svc.Inspect(t.Context(), token(iss.Link)); !errors.Is(err, reset.ErrExpiredToken) {
		t.Errorf("expired: %v", err)
	}
}

func TestComplete(t *testing.T) {
	var after []string
	e := newEnv(t, func(c *reset.Config) {
		c.AfterReset = func(_ context.Context, id string) error { after = append(after, id); return nil }
	})
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	id, err := e.svc.Complete(t.Context(), reset.Completion{Token: token(iss.Link), Password: "correct horse battery"})
	if err != nil || id != userID {
		t.Fatalf("Complete = %q, %v", id, err)
	}
	if got := e.users.Password(userID); got != "correct horse battery" {
		t.Errorf("password %q", got)
	}
	if len(after) != 1 || after[0] != userID {
		t.Errorf("AfterReset calls %v", after)
	}
	e.svc.Shutdown(t.Context())
	msgs := e.mailer.Messages()
	if len(msgs) != 1 || msgs[0].Kind != reset.KindChanged || msgs[0].To != userEmail ||
		!strings.Contains(msgs[0].Text, "was changed") || resettest.Token(msgs[0].Text) != "" {
		t.Fatalf("notice %+v", msgs)
	}
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: token(iss.Link), Password: "another one, long enough"}); !errors.Is(err, reset.ErrInvalidToken) {
		t.Errorf("reuse: %v, want ErrInvalidToken", err)
	}
	if e.users.Password(userID) != "correct horse battery" {
		t.Error("a used token changed the password")
	}
}

func TestCompleteNoticeCanBeDisabled(t *testing.T) {
	e := newEnv(t, func(c *reset.Config) { c.DisableChangedNotice = true })
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: token(iss.Link), Password: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	e.svc.Shutdown(t.Context())
	if n := len(e.mailer.Messages()); n != 0 {
		t.Errorf("%d messages with the notice off", n)
	}
}

func TestCompleteRejections(t *testing.T) {
	e := newEnv(t)
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	tok := token(iss.Link)
	for _, pw := range []string{"", "short", strings.Repeat("x", 1025), "bad\x00password", "\xff\xfe invalid utf8"} {
		_, err := e.svc.Complete(t.Context(), reset.Completion{Token: tok, Password: pw})
		var pe *password.Error
		if !errors.As(err, &pe) || !errors.Is(err, password.ErrRejected) {
			t.Errorf("password %q: %v, want PasswordError", pw, err)
		}
	}
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: tok, Password: "long enough passphrase", UserID: "someone-else"}); !errors.Is(err, reset.ErrInvalidToken) {
		t.Errorf("wrong user: %v", err)
	}
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: "", Password: "long enough passphrase"}); !errors.Is(err, reset.ErrInvalidToken) {
		t.Errorf("empty token: %v", err)
	}
	// None of the above used the token.
	if _, err := e.svc.Inspect(t.Context(), tok); err != nil {
		t.Fatalf("a refused completion consumed the token: %v", err)
	}
	if e.users.Password(userID) != oldPass {
		t.Fatal("a refused completion changed the password")
	}
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: tok, Password: "long enough passphrase", UserID: userID}); err != nil {
		t.Fatalf("matching UserID: %v", err)
	}
}

func TestCompleteExpired(t *testing.T) {
	e := newEnv(t, func(c *reset.Config) { c.TokenTTL = 15 * time.Minute })
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, Wait: true})
	if !strings.Contains(e.mailer.Messages()[0].Text, "15 minutes") {
		t.Error("mail does not state the lifetime")
	}
	e.clock.Advance(15 * time.Minute)
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: token(iss.Link), Password: "long enough passphrase"}); !errors.Is(err, reset.ErrExpiredToken) {
		t.Fatalf("err = %v, want ErrExpiredToken", err)
	}
	if e.users.Password(userID) != oldPass || e.events.count(reset.EventExpired) != 1 {
		t.Error("an expired token changed the password or was not reported")
	}
}

func TestCompleteUsersFailureKeepsToken(t *testing.T) {
	e := newEnv(t)
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	e.users.SetErr(errors.New("db down"))
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: token(iss.Link), Password: "long enough passphrase"}); err == nil || errors.Is(err, reset.ErrInvalidToken) {
		t.Fatalf("err = %v, want the back end's error", err)
	}
	e.users.SetErr(nil)
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: token(iss.Link), Password: "long enough passphrase"}); err != nil {
		t.Fatalf("retry with the same link: %v", err)
	}
}

func TestCompleteAfterResetFailureIsReported(t *testing.T) {
	e := newEnv(t, func(c *reset.Config) {
		c.AfterReset = func(context.Context, string) error { return errors.New("session store down") }
	})
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: token(iss.Link), Password: "long enough passphrase"}); err != nil {
		t.Fatal(err)
	}
	if e.events.count(reset.EventAfterResetFailed) != 1 {
		t.Error("no after_reset_failed event")
	}
}

func TestConcurrentCompletionsOneWinner(t *testing.T) {
	e := newEnv(t)
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	var wins, invalid atomic.Int64
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			_, err := e.svc.Complete(context.Background(), reset.Completion{Token: token(iss.Link), Password: fmt.Sprintf("concurrent passphrase %d", i)})
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, reset.ErrInvalidToken):
				invalid.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || invalid.Load() != 63 {
		t.Fatalf("%d wins, %d invalid; want 1 and 63", wins.Load(), invalid.Load())
	}
}

func TestRevokeAllAndPrune(t *testing.T) {
	e := newEnv(t)
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	if err := e.svc.RevokeAll(t.Context(), userID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Inspect(t.Context(), token(iss.Link)); !errors.Is(err, reset.ErrInvalidToken) {
		t.Errorf("revoked token: %v", err)
	}
	if err := e.svc.RevokeAll(t.Context(), ""); !errors.Is(err, reset.ErrInvalidInput) {
		t.Errorf("RevokeAll(\"\"): %v", err)
	}
	e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	e.clock.Advance(2 * time.Hour)
	if n, err := e.svc.Prune(t.Context()); err != nil || n.Tokens != 1 {
		t.Errorf("Prune = %+v, %v; want 1 token", n, err)
	}
}

func TestCustomTemplatesAndPolicy(t *testing.T) {
	e := newEnv(t, func(c *reset.Config) {
		c.Product = "Acme"
		c.Templates = &reset.Templates{ResetSubject: "{{.Product}}: new password"}
		c.PasswordPolicy = func(ctx context.Context, pc password.Check) error {
			if strings.Contains(pc.Password, "love") {
				return &password.Error{Reason: "must not be sentimental"}
			}
			return password.DefaultPolicy(ctx, pc)
		}
	})
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, Wait: true})
	if s := e.mailer.Messages()[0].Subject; s != "Acme: new password" {
		t.Errorf("subject %q", s)
	}
	_, err := e.svc.Complete(t.Context(), reset.Completion{Token: token(iss.Link), Password: "i love my long passphrase"})
	if !errors.Is(err, password.ErrRejected) || !strings.Contains(err.Error(), "sentimental") {
		t.Errorf("err = %v", err)
	}
}

// failingStore fails every call.
type failingStore struct{ err error }

func (f failingStore) Rotate(context.Context, reset.Record) error { return f.err }
func (f failingStore) Lookup(context.Context, reset.Hash) (reset.Record, error) {
	return reset.Record{}, f.err
}
func (f failingStore) Consume(context.Context, reset.Hash) (reset.Record, error) {
	return reset.Record{}, f.err
}
func (f failingStore) RevokeAll(context.Context, string) error { return f.err }

func TestStoreFailuresAreWrapped(t *testing.T) {
	down := errors.New("connection refused")
	e := newEnv(t, func(c *reset.Config) { c.Store = failingStore{down} })
	tok := strings.Repeat("A", reset.TokenLen)
	_, err1 := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail, SkipSend: true})
	_, err2 := e.svc.Inspect(t.Context(), tok)
	_, err3 := e.svc.Complete(t.Context(), reset.Completion{Token: tok, Password: "long enough passphrase"})
	err4 := e.svc.RevokeAll(t.Context(), userID)
	for i, err := range []error{err1, err2, err3, err4} {
		if !errors.Is(err, down) || errors.Is(err, reset.ErrInvalidToken) {
			t.Errorf("call %d: %v, want the store's error", i+1, err)
		}
	}
	if len(e.mailer.Messages()) != 0 {
		t.Error("mail sent although the store failed")
	}
}
