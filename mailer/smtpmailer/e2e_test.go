package smtpmailer_test

// The whole flow through a real SMTP server: a reset.Service on memstore,
// the HTTP handler on a test server, this Mailer to Mailpit. Requests go
// through the HTTP API (the public password-lost request), so these tests
// depend on the core only through reset.Config and the outbox's Drain,
// Report and Dead.

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passreset/passreset/httpadapter"
	"github.com/passreset/passreset/mailer/smtpmailer"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

const mount = "/api/directory"

// e2e is a Service and its HTTP handler, mailing through Mailpit.
type e2e struct {
	svc   *reset.Service
	srv   *httptest.Server
	users *resettest.Users
}

// newE2E starts a Service with cfg (Store, Users, Mailer and ResetURL
// filled in) behind httpadapter on a test server, as examples/basic does.
func newE2E(t *testing.T, m reset.Mailer, cfg reset.Config) *e2e {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	users := &resettest.Users{}
	if cfg.Store == nil {
		cfg.Store = memstore.New()
	}
	cfg.Users, cfg.Mailer = users, m
	cfg.ResetURL = srv.URL + mount + httpadapter.PagePath
	cfg.Product = "Acme"
	cfg.Logger = slog.New(slog.DiscardHandler)
	svc, err := reset.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Shutdown(background(t)) })
	h, err := httpadapter.New(svc, httpadapter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle(mount+"/", http.StripPrefix(mount, h))
	return &e2e{svc: svc, srv: srv, users: users}
}

// post sends body as JSON to the API path and returns the status.
func (e *e2e) post(t *testing.T, path string, body any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(e.srv.URL+mount+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

var linkRE = regexp.MustCompile(`https?://[^\s"<>]+`)

func TestEndToEndResetThroughMailpit(t *testing.T) {
	mp := plainMailpit(t)
	m := newMailer(t, mp, smtpmailer.Options{})
	sent := make(chan string, 4)
	e := newE2E(t, m, reset.Config{KeepSessions: true, OnEvent: func(ev reset.Event) {
		if ev.Kind == reset.EventSent {
			sent <- ev.MailKind
		}
	}})
	to := recipient("e2e")
	e.users.Add("u1", to, "old password 1")

	if got := e.post(t, httpadapter.PasswordLostPath, map[string]string{"email": to}); got != http.StatusAccepted {
		t.Fatalf("password-lost: %d, want 202", got)
	}
	if kind := <-sent; kind != reset.KindReset {
		t.Fatalf("sent %s, want %s", kind, reset.KindReset)
	}
	mail := mp.only(t, to)
	link := linkRE.FindString(mail.Text)
	if !strings.HasPrefix(link, e.srv.URL+mount+httpadapter.PagePath+"?") {
		t.Fatalf("text part's link %q does not point to the reset page", link)
	}
	if !strings.Contains(html.UnescapeString(mail.HTML), link) {
		t.Errorf("HTML part lacks the text part's link %q", link)
	}

	// Follow the link as a browser does (it keeps the cookie the page
	// moves the token into): the page opens and does not consume the token.
	jar, _ := cookiejar.New(nil)
	resp, err := (&http.Client{Jar: jar}).Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the link: %d", resp.StatusCode)
	}
	u, _ := url.Parse(link)
	token := u.Query().Get("token")
	if got := e.post(t, httpadapter.PasswordResetPath, map[string]string{
		"confirmationToken": token, "newPassword": "correct horse battery staple",
	}); got != http.StatusOK {
		t.Fatalf("password-reset: %d, want 200", got)
	}
	if pw := e.users.Password("u1"); pw != "correct horse battery staple" {
		t.Errorf("password is %q", pw)
	}
	if kind := <-sent; kind != reset.KindChanged {
		t.Fatalf("sent %s, want %s", kind, reset.KindChanged)
	}
	if n := len(mp.search(t, to)); n != 2 {
		t.Errorf("%d messages to the user, want the link and the notice", n)
	}
}

func TestDurableOutboxDeliversOnceOrMovesAside(t *testing.T) {
	mp := plainMailpit(t)
	// Half the recipients are refused for a while (451, transient); the
	// refused.example ones always (550, permanent: moved aside at once).
	mp.chaos(t, `{"Recipient": {"ErrorCode": 451, "Probability": 50}}`)
	m := newMailer(t, mp, smtpmailer.Options{}) // one attempt per Send: the outbox retries
	key := make([]byte, 32)
	rand.Read(key)
	clock := resettest.NewClock(time.Now())
	store := memstore.New()
	ob, err := outbox.New(store, outbox.Options{Keys: []outbox.SealKey{{ID: "test", Key: key}}})
	if err != nil {
		t.Fatal(err)
	}
	var sent, failed atomic.Int64
	e := newE2E(t, m, reset.Config{KeepSessions: true, Now: clock.Now, Store: store, Queue: ob, OnEvent: func(ev reset.Event) {
		switch ev.Kind {
		case reset.EventSent:
			sent.Add(1)
		case reset.EventRetry:
			failed.Add(1)
		}
	}})
	var addrs []string
	for i := range 12 {
		a := recipient("outbox")
		if i%6 == 5 {
			a = strings.Replace(a, "@example.com", "@refused.example", 1)
		}
		e.users.Add(fmt.Sprint("u", i), a, "old password 1")
		addrs = append(addrs, a)
		if got := e.post(t, httpadapter.PasswordLostPath, map[string]string{"email": a}); got != http.StatusAccepted {
			t.Fatalf("password-lost: %d", got)
		}
	}

	ctx := background(t)
	for round := 0; ; round++ {
		if _, err := ob.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		r, err := ob.Report(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r.Pending == 0 {
			t.Logf("after %d rounds: sent %d, transient failures %d, dead %d", round+1, sent.Load(), failed.Load(), r.Dead)
			if int(sent.Load())+r.Dead != len(addrs) {
				t.Errorf("sent %d + dead %d, want %d messages", sent.Load(), r.Dead, len(addrs))
			}
			break
		}
		if round > 100 {
			t.Fatalf("%d messages still pending", r.Pending)
		}
		clock.Advance(15 * time.Minute) // the longest backoff: every retry is due
	}
	dead, err := ob.Dead(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	// Dead envelopes are sealed: count them against the addresses that
	// got nothing.
	undelivered := 0
	for _, a := range addrs {
		var n int
		if strings.HasSuffix(a, "@example.com") {
			n = len(mp.search(t, a))
		}
		switch {
		case n > 1:
			t.Errorf("%s received %d messages, want at most 1", a, n)
		case n == 0:
			undelivered++
		}
	}
	if len(dead) != undelivered {
		t.Errorf("%d messages moved aside, %d addresses got nothing: want them equal", len(dead), undelivered)
	}
}
