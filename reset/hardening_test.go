package reset_test

// Regression tests for the defects of the adversarial review (issue 11)
// and of the first adopting team (issue 12). Each fails on the code before
// the fix.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/password"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

// #1, #2, #3: links that a browser would send elsewhere, or that a
// linkifier would split, are refused.
func TestLinkAllowlistHardening(t *testing.T) {
	e := newEnv(t, func(c *reset.Config) {
		c.AllowedLinks = []string{"https://shopify.com/account/", "https://app.example.com/reset/"}
	})
	refused := []string{
		"https://shop\u0130fy.com/account/x",      // İ lower-cases to i in Go, to a punycode domain in a browser
		"https://shop%C4%B0fy.com/account/x",      // the same, percent-encoded
		"https://SHOP\u0130FY.com/account/x",      // upper case too
		"https://shop\u212Aify.com/account/x",     // KELVIN SIGN lower-cases to k
		"https://shopify.com\u3002/account/x",     // ideographic full stop
		"https://app.example.com/reset//evil.com", // empty segment
		"https://app.example.com/reset/x;jsessionid=1",
		"https://app.example.com/reset/%252e%252e/admin", // double encoding
		"https://app.example.com/reset/%2F%2Fevil.com",
		"https://app.example.com/reset/x?a=<b>",
		`https://app.example.com/reset/x?a="b"`,
		"https://app.example.com/reset/x?a=b%zz",
		"https://app.example.com/reset/x?next=https://evil.com/%20x y",
		"https://app.example.com/reset/x?a=\u00e9",
		"https://[::1%25eth0]/reset/",
	}
	for _, link := range refused {
		err := reset.CheckLink(e.svc, link)
		if !errors.Is(err, reset.ErrLinkNotAllowed) {
			t.Errorf("CheckLink(%q) = %v, want ErrLinkNotAllowed", link, err)
		}
		if err := e.svc.Request(t.Context(), userEmail, link); !errors.Is(err, reset.ErrLinkNotAllowed) {
			t.Errorf("Request with link %q = %v, want ErrLinkNotAllowed", link, err)
		}
	}
	accepted := []string{
		"https://shopify.com/account/x",
		"https://SHOPIFY.com/account/x",
		"https://app.example.com/reset/x?lang=fr&next=%2Fhome",
		"https://app.example.com/reset/a/b?x=1;y=2",
	}
	for _, link := range accepted {
		if err := reset.CheckLink(e.svc, link); err != nil {
			t.Errorf("CheckLink(%q) = %v, want nil", link, err)
		}
	}
	// An allowlist entry with a non-ASCII host is refused at New.
	_, err := reset.New(reset.Config{KeepSessions: true, Store: memstore.New(), Users: &resettest.Users{}, Mailer: &resettest.Mailer{},
		ResetURL: "https://app.example.com/r", AllowedLinks: []string{"https://b\u00fccher.example/"}})
	if err == nil || !strings.Contains(err.Error(), "ASCII") {
		t.Fatalf("New with a non-ASCII allowlist host: %v", err)
	}
	// The public request's mail never went out for the refused links.
	e.svc.Shutdown(t.Context())
	if n := len(e.mailer.Messages()); n != 0 {
		t.Fatalf("%d emails sent for refused links", n)
	}
}

// #4: with the in-process queue, a flood of public requests gets the same
// sequence of answers whether or not the addresses exist, even when mail
// is slow and the queue fills.
func TestPublicAnswersDoNotDependOnTheAddressWhenTheQueueFills(t *testing.T) {
	answers := func(known bool) []string {
		bm := &blockingMailer{started: make(chan struct{}, 100), release: make(chan struct{})}
		e := newEnv(t, func(c *reset.Config) { c.Mailer = bm; c.QueueSize = 2; c.Workers = 1; c.Cooldown = -1 })
		var out []string
		for i := range 20 {
			addr := fmt.Sprintf("nobody%d@anywhere.com", i)
			if known {
				addr = fmt.Sprintf("user%d@anywhere.com", i)
				e.users.Add(fmt.Sprintf("id%d", i), addr, oldPass)
			}
			out = append(out, fmt.Sprint(e.svc.Request(t.Context(), addr, "")))
		}
		close(bm.release)
		if err := e.svc.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		return out
	}
	k, u := answers(true), answers(false)
	if strings.Join(k, ",") != strings.Join(u, ",") {
		t.Fatalf("answers differ:\nknown   %v\nunknown %v", k, u)
	}
	for _, a := range k {
		if a != "<nil>" {
			t.Fatalf("a public request answered %s", a)
		}
	}
}

// #7: what follows a saved password runs to its end even when the
// request's context ends meanwhile.
func TestCompleteFinishesAfterTheClientLeaves(t *testing.T) {
	var hookErr error
	hookRan := false
	var cancel context.CancelFunc
	users := &resettest.Users{}
	users.Add(userID, userEmail, oldPass)
	e := newEnv(t, func(c *reset.Config) {
		c.Users = reset.UsersFuncs{
			Lookup: users.LookupEmail,
			Set: func(_ context.Context, id, pw string) error {
				cancel() // the client disconnects while the password is saved
				return users.SetPassword(context.Background(), id, pw)
			},
		}
		c.AfterReset = func(ctx context.Context, userID string) error {
			hookRan, hookErr = true, ctx.Err()
			if _, ok := ctx.Deadline(); !ok {
				hookErr = errors.New("no deadline")
			}
			return nil
		}
	})
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	cancel = stop
	if _, err := e.svc.Complete(ctx, reset.Completion{Token: token(iss.Link), Password: "new passphrase for tests"}); err != nil {
		t.Fatal(err)
	}
	if !hookRan || hookErr != nil {
		t.Fatalf("AfterReset ran %v with ctx error %v; want it run on a live context with a deadline", hookRan, hookErr)
	}
	if n := e.events.count(reset.EventFailed); n != 0 {
		t.Fatalf("%d failures after the password was saved (RevokeAll on a cancelled context?)", n)
	}
	if msgs, err := e.mailer.Wait(t.Context(), 1); err != nil || msgs[0].Kind != reset.KindChanged {
		t.Fatalf("notice: %v %v", msgs, err)
	}
}

// #8: the "password changed" notice is never dropped, even when a flood
// has filled the queue.
func TestNoticeIsNeverDropped(t *testing.T) {
	bm := &blockingMailer{started: make(chan struct{}, 100), release: make(chan struct{})}
	e := newEnv(t, func(c *reset.Config) { c.Mailer = bm; c.QueueSize = 1; c.Workers = 1; c.Cooldown = -1 })
	// Fill the queue: one send in the worker, one queued.
	e.users.Add("u2", "second@anywhere.com", oldPass)
	e.request(t, reset.TrustedRequest{Email: "second@anywhere.com"})
	<-bm.started
	e.request(t, reset.TrustedRequest{Email: "second@anywhere.com"})
	if _, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: "second@anywhere.com"}); !errors.Is(err, reset.ErrQueueFull) {
		t.Fatalf("queue not full: %v", err)
	}
	last := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: token(last.Link), Password: "new passphrase for tests"}); err != nil {
		t.Fatal(err)
	}
	close(bm.release)
	if err := e.svc.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := bm.sent.Load(); n != 3 { // two reset emails and the notice
		t.Fatalf("sent %d, want 3 (the notice included)", n)
	}
	if e.events.count(reset.EventSendFailed) != 0 {
		t.Fatal("the notice was reported as failed")
	}
}

// The cooldown key is keyed: whoever reads the store cannot confirm a
// guessed address against it.
type keyCapture struct {
	*memstore.Store
	mu   sync.Mutex
	keys []reset.Hash
}

func (k *keyCapture) Cooldown(ctx context.Context, key reset.Hash, owner string, now, until time.Time) (bool, error) {
	k.mu.Lock()
	k.keys = append(k.keys, key)
	k.mu.Unlock()
	return k.Store.Cooldown(ctx, key, owner, now, until)
}

// keyless is a Store without a cooldown of its own: the Service keeps
// cooldowns in process memory.
type keyless struct{ reset.Store }

// Issue 22 #4: no configuration stores an unkeyed hash of an address as
// a cooldown key, and the key comes from the store's own secret.
func TestCooldownKeyIsKeyed(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*reset.Config)
	}{
		{"Plain", func(c *reset.Config) {}},
		{"TokenKey", func(c *reset.Config) { c.TokenKey = []byte("0123456789abcdef0123456789abcdef") }},
		{"MixedCase", func(c *reset.Config) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &keyCapture{Store: memstore.New()}
			e := newEnv(t, func(c *reset.Config) { c.Store = st; tc.edit(c) })
			addr := userEmail
			if tc.name == "MixedCase" {
				addr = strings.ToUpper(userEmail)
				e.users.Add("u-upper", addr, oldPass)
			}
			if _, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: addr, SkipSend: true, Throttle: true}); err != nil {
				t.Fatal(err)
			}
			secret, err := st.CooldownSecret(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, unkeyed := range []string{addr, strings.ToLower(addr), "passreset/cooldown\x00" + strings.ToLower(addr)} {
				if h := sha256.Sum256([]byte(unkeyed)); len(st.keys) != 1 || st.keys[0] == h {
					t.Fatalf("cooldown keys %x: an unkeyed SHA-256 of the address", st.keys)
				}
			}
			m := hmac.New(sha256.New, secret)
			m.Write([]byte("passreset/cooldown\x00" + strings.ToLower(addr)))
			if want := m.Sum(nil); !bytes.Equal(st.keys[0][:], want) {
				t.Fatalf("cooldown key %x, want HMAC-SHA-256 under the store's secret %x", st.keys[0], want)
			}
		})
	}
	// Without a Cooldowner the cooldown stays in the process, keyed by a
	// secret of its own: it still holds.
	e := newEnv(t, func(c *reset.Config) { c.Store = keyless{memstore.New()} })
	for i, want := range []error{nil, reset.ErrThrottled} {
		if _, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail, SkipSend: true, Throttle: true}); !errors.Is(err, want) && err != want {
			t.Fatalf("request %d: %v, want %v", i, err, want)
		}
	}
}

// Two Services that share a store agree on every cooldown key, whatever
// their other keys: a public request through either one meets the same
// cooldown.
func TestCooldownSharedAcrossServices(t *testing.T) {
	st := &keyCapture{Store: memstore.New()}
	a := newEnv(t, func(c *reset.Config) { c.Store = st; c.TokenKey = []byte("0123456789abcdef0123456789abcdef") })
	b := newEnv(t, func(c *reset.Config) { c.Store = st })
	b.users.Add(userID, userEmail, oldPass)
	if _, err := a.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail, SkipSend: true, Throttle: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail, SkipSend: true, Throttle: true}); !errors.Is(err, reset.ErrThrottled) {
		t.Fatalf("second Service: %v, want ErrThrottled (one cooldown for both)", err)
	}
	if len(st.keys) != 2 || st.keys[0] != st.keys[1] {
		t.Fatalf("cooldown keys %x differ", st.keys)
	}
}

// Issue 12 #2: a password the application's SetPassword refuses reaches
// the person as a *PasswordError, and the link still works.
func TestSetPasswordRefusalIsAPasswordError(t *testing.T) {
	users := &resettest.Users{}
	users.Add(userID, userEmail, oldPass)
	e := newEnv(t, func(c *reset.Config) {
		c.Users = reset.UsersFuncs{Lookup: users.LookupEmail, Set: func(ctx context.Context, id, pw string) error {
			if len(pw) > 72 {
				return &password.Error{Reason: "must be at most 72 bytes long"}
			}
			return users.SetPassword(ctx, id, pw)
		}}
	})
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	long := strings.Repeat("é", 40) // 40 characters, 80 bytes
	_, err := e.svc.Complete(t.Context(), reset.Completion{Token: token(iss.Link), Password: long})
	var pe *password.Error
	if !errors.As(err, &pe) || !errors.Is(err, password.ErrRejected) || !strings.Contains(pe.Reason, "72") {
		t.Fatalf("Complete = %v, want the application's *PasswordError", err)
	}
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: token(iss.Link), Password: "short enough passphrase"}); err != nil {
		t.Fatalf("the link stopped working after a refused password: %v", err)
	}
	if users.Password(userID) != "short enough passphrase" {
		t.Fatal("password not changed")
	}
}

// Issue 12 #5: misconfigurations are refused by New, zero values work,
// and a wrong "not found" from Users is explained in the log.
func TestMisconfigurationsFailEarly(t *testing.T) {
	base := func() reset.Config {
		return reset.Config{KeepSessions: true, Store: memstore.New(), Mailer: &resettest.Mailer{}, ResetURL: "https://a.example/r"}
	}
	for name, users := range map[string]reset.Users{
		"nil Lookup": reset.UsersFuncs{Set: func(context.Context, string, string) error { return nil }},
		"nil Set":    reset.UsersFuncs{Lookup: func(context.Context, string) (reset.User, error) { return reset.User{}, nil }},
		"nil ptr":    (*reset.UsersFuncs)(nil),
	} {
		cfg := base()
		cfg.Users = users
		if _, err := reset.New(cfg); err == nil || !strings.Contains(err.Error(), "UsersFuncs") {
			t.Errorf("%s: New = %v, want an error naming UsersFuncs", name, err)
		}
	}
	// The zero memstore.Store is ready to use.
	var st memstore.Store
	cfg := base()
	cfg.Store, cfg.Users = &st, &resettest.Users{}
	svc, err := reset.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Shutdown(t.Context())
	if _, err := svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: "a@b.example", SkipSend: true}); !errors.Is(err, reset.ErrUnknownUser) {
		t.Fatalf("zero memstore: %v", err)
	}
	// sql.ErrNoRows from LookupEmail: a 503 for the caller, and a log line
	// that says what to return.
	var logs safeBuffer
	cfg = base()
	cfg.Users = reset.UsersFuncs{
		Lookup: func(context.Context, string) (reset.User, error) {
			return reset.User{}, fmt.Errorf("query: %w", sql.ErrNoRows)
		},
		Set: func(context.Context, string, string) error { return nil },
	}
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	svc2, err := reset.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer svc2.Shutdown(t.Context())
	_, err = svc2.RequestTrusted(t.Context(), reset.TrustedRequest{Email: "a@b.example", SkipSend: true})
	if err == nil || errors.Is(err, reset.ErrUnknownUser) {
		t.Fatalf("RequestTrusted = %v", err)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if !strings.Contains(logs.String(), "reset.ErrUnknownUser") {
		t.Fatalf("the log does not say what to return:\n%s", logs.String())
	}
}

// Both emails speak the account's language (User.Locale), the notice too.
func TestEmailsInTheAccountsLanguage(t *testing.T) {
	e := newEnv(t, func(c *reset.Config) { c.Product = "Acme" })
	e.users.SetLocale(userEmail, "de")
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, Wait: true})
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: token(iss.Link), Password: "new passphrase for tests"}); err != nil {
		t.Fatal(err)
	}
	msgs, err := e.mailer.Wait(t.Context(), 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"Setzen Sie Ihr Acme-Passwort zurück", "Ihr Acme-Passwort wurde geändert"} {
		if msgs[i].Subject != want {
			t.Errorf("email %d: subject %q, want %q", i, msgs[i].Subject, want)
		}
	}
}

// In the HTML emails the address and the product name are isolated
// (<bdi>), so that a right-to-left text keeps them whole, and escaped.
func TestHTMLEmailIsolatesAndEscapesValues(t *testing.T) {
	const addr = "o'neil&co@anywhere.com"
	e := newEnv(t, func(c *reset.Config) { c.Product = `Acme <b>"Shop"</b>` })
	e.users.Add("u9", addr, oldPass)
	e.users.SetLocale(addr, "ar")
	if _, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: addr, Wait: true}); err != nil {
		t.Fatal(err)
	}
	html := e.mailer.Messages()[0].HTML
	for _, want := range []string{
		"<bdi>o&#39;neil&amp;co@anywhere.com</bdi>",
		"<bdi>Acme &lt;b&gt;&#34;Shop&#34;&lt;/b&gt;</bdi>",
		`dir="rtl"`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML email lacks %s:\n%s", want, html)
		}
	}
	if strings.Contains(html, "<b>") {
		t.Error("the product name's markup reached the HTML email")
	}
}

// Issue 22 #1: the reset link is written so that no linkifier can end it
// early and start a second link carrying the token (linkify-it ended
// "?x=)https://evil.example/?" at the parenthesis). The linkifiers
// themselves read it in TestTextEmailLinkIsOneLinkForEveryLinkifier.
func TestLinkIsRewrittenForLinkifiers(t *testing.T) {
	e := newEnv(t, func(c *reset.Config) {
		c.AllowedLinks = append(c.AllowedLinks, "https://app.example.com/auth/reset")
	})
	for link, want := range map[string]string{
		"https://app.example.com/auth/reset?x=)https://evil.example/?":  "https://app.example.com/auth/reset?x=%29https%3A%2F%2Fevil.example%2F%3F&token=",
		"https://app.example.com/auth/reset/a(b)/c!*$',:@?q=a'b&r=x+y":  "https://app.example.com/auth/reset/a%28b%29/c%21%2A%24%27%2C%3A%40?q=a%27b&r=x%20y&token=",
		"https://app.example.com/auth/reset?x=a..-evil.com&y=...":       "https://app.example.com/auth/reset?x=a%2E%2E-evil.com&y=%2E%2E%2E&token=",
		"https://app.example.com/auth/reset/v1..2/?a.b=c.d":             "https://app.example.com/auth/reset/v1%2E%2E2/?a.b=c.d&token=",
		"https://app.example.com/auth/reset?token=attacker&x=1&tok%65n": "https://app.example.com/auth/reset?x=1&token=",
		"https://app.example.com/auth/reset?b=2&a=1&a=0&flag&=e":        "https://app.example.com/auth/reset?b=2&a=1&a=0&flag&=e&token=",
		"https://app.example.com/auth/reset?x=1;y=2&z=%7e%2b%41":        "https://app.example.com/auth/reset?x=1%3By%3D2&z=~%2BA&token=",
		"https://APP.example.com/auth/reset?":                           "https://app.example.com/auth/reset?token=",
	} {
		iss := e.request(t, reset.TrustedRequest{Email: userEmail, Link: link, SkipSend: true})
		if tok := iss.Link[len(iss.Link)-reset.TokenLen:]; iss.Link != want+tok {
			t.Errorf("link %q\n  gave %q\n  want %q", link, iss.Link, want+"<token>")
		}
	}
}
