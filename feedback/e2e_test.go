package feedback_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/feedback"
	"github.com/passreset/passreset/httpadapter"
	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

const (
	bouncing = "bounced@resend.dev"
	healthy  = "ada@example.com"
)

var testKey = []byte("a feedback key of 32 bytes or more, for tests only")

// rig is a Service that sends through the resendmailer to a local Resend,
// whose webhook posts go to a resendmailer.Webhook that records them.
type rig struct {
	api   *resendtest.Server
	fb    *feedback.Feedback
	store *memstore.Store
	svc   *reset.Service
	http  http.Handler
	hook  string // the webhook's URL
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{api: resendtest.NewServer(), store: memstore.New()}
	t.Cleanup(r.api.Close)
	fb, err := feedback.New(feedback.Options{Store: r.store, Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	r.fb = fb
	wh, err := resendmailer.NewWebhook(resendmailer.WebhookOptions{Secret: resendtest.WebhookSecret, Feedback: fb})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(wh)
	t.Cleanup(hs.Close)
	r.hook = hs.URL
	r.api.SetWebhook(hs.URL, resendtest.WebhookSecret)

	m, err := resendmailer.New(resendmailer.Options{APIKey: resendtest.APIKey, From: "Acme <security@acme.example>", BaseURL: r.api.URL})
	if err != nil {
		t.Fatal(err)
	}
	users := &resettest.Users{}
	users.Add("u1", bouncing, "old password")
	users.Add("u2", healthy, "old password")
	r.svc, err = reset.New(reset.Config{
		KeepSessions: true,
		Store:        r.store,
		Users:        users,
		Mailer:       m,
		ResetURL:     "https://app.example.com/reset",
		Cooldown:     -1,
		DailyLimit:   -1,
		Suppressed:   fb.Suppressed,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.svc.Shutdown(context.Background()) })
	auth, err := httpadapter.BasicAuth("backend", "a long random secret for the backend")
	if err != nil {
		t.Fatal(err)
	}
	r.http, err = httpadapter.New(r.svc, httpadapter.Options{Authorize: auth})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// lost posts a password-lost request to the JSON API and returns the
// status and the body.
func (r *rig) lost(t *testing.T, email string, trusted bool) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest("POST", "/users/password-lost", strings.NewReader(`{"email": "`+email+`"}`))
	req.Header.Set("Content-Type", "application/json")
	if trusted {
		req.SetBasicAuth("backend", "a long random secret for the backend")
	}
	w := httptest.NewRecorder()
	r.http.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

// deliver posts the local Resend's pending webhooks and checks that each
// was accepted.
func (r *rig) deliver(t *testing.T) []resendtest.WebhookPost {
	t.Helper()
	posts, err := r.api.DeliverWebhooks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range posts {
		if p.Status != http.StatusNoContent {
			t.Fatalf("the webhook answered %d to %s for %s", p.Status, p.Type, p.To)
		}
	}
	return posts
}

func (r *rig) last(t *testing.T, email string) []feedback.Event {
	t.Helper()
	evs, err := r.fb.Last(t.Context(), email, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func (r *rig) suppressed(t *testing.T, email string) bool {
	t.Helper()
	ok, err := r.fb.Suppressed(t.Context(), email)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestHardBounceSuppressesSilently(t *testing.T) {
	r := newRig(t)
	// A first reset email to each address, through the public API.
	status, first := r.lost(t, bouncing, false)
	if status != http.StatusAccepted {
		t.Fatalf("public password-lost = %d %s", status, first)
	}
	if _, err := r.api.WaitEmails(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	sent := r.api.Emails()[0]
	posts := r.deliver(t)
	if len(posts) != 2 || posts[0].Type != "email.sent" || posts[1].Type != "email.bounced" {
		t.Fatalf("webhook posts %+v, want email.sent and email.bounced", posts)
	}
	if !r.suppressed(t, bouncing) || r.suppressed(t, healthy) {
		t.Fatal("the hard bounce did not suppress its address alone")
	}
	evs := r.last(t, bouncing)
	if len(evs) != 2 || evs[0].Type != feedback.Bounced || evs[0].Bounce != feedback.Hard || evs[0].Detail != "General" || evs[1].Type != feedback.Sent {
		t.Fatalf("Last = %+v, want the hard bounce, then sent", evs)
	}
	var msgID string
	for _, tag := range sent.Tags {
		if tag.Name == resendmailer.MessageTag {
			msgID = tag.Value
		}
	}
	if msgID == "" || evs[0].MessageID != msgID || evs[0].ProviderID != sent.ID {
		t.Errorf("the bounce is about message %q, email %q; want %q, %q", evs[0].MessageID, evs[0].ProviderID, msgID, sent.ID)
	}

	// Now the suppressed address and a healthy one: byte-identical
	// answers, and an email only to the healthy one.
	_, again := r.lost(t, bouncing, false)
	_, other := r.lost(t, healthy, false)
	if !bytes.Equal(again, first) || !bytes.Equal(other, first) {
		t.Fatalf("public answers differ:\nfirst      %s\nsuppressed %s\nhealthy    %s", first, again, other)
	}
	if err := r.svc.Shutdown(t.Context()); err != nil { // carries out the queued requests
		t.Fatal(err)
	}
	emails := r.api.Emails()
	if len(emails) != 2 || emails[1].To[0] != healthy {
		t.Fatalf("emails after the bounce: %d, the last to %v; want one more, to %s", len(emails), emails[len(emails)-1].To, healthy)
	}
	if got := r.last(t, bouncing); len(got) != 2 {
		t.Errorf("the suppressed address has %d events, want still 2", len(got))
	}
}

func TestTrustedRequestSeesSuppression(t *testing.T) {
	r := newRig(t)
	if _, err := r.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: bouncing, Wait: true}); err != nil {
		t.Fatal(err)
	}
	r.deliver(t)
	status, body := r.lost(t, bouncing, true)
	if status != http.StatusBadRequest || !strings.Contains(string(body), `"target":"email"`) || !strings.Contains(string(body), "suppressed") {
		t.Fatalf("trusted password-lost of a suppressed address = %d %s", status, body)
	}
	// Cleared by the application: mail flows again, until it bounces again.
	if err := r.fb.Clear(t.Context(), bouncing); err != nil {
		t.Fatal(err)
	}
	if r.suppressed(t, bouncing) {
		t.Fatal("still suppressed after Clear")
	}
	if status, body := r.lost(t, bouncing, true); status != http.StatusOK {
		t.Fatalf("trusted password-lost after Clear = %d %s", status, body)
	}
	if err := r.svc.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(r.api.Emails()); n != 2 {
		t.Fatalf("%d emails, want 2", n)
	}
	r.deliver(t)
	if !r.suppressed(t, bouncing) {
		t.Error("a bounce after Clear did not suppress again")
	}
}

func TestComplaintSuppresses(t *testing.T) {
	r := newRig(t)
	// Straight through the mailer: the complaint comes back as events.
	m, err := resendmailer.New(resendmailer.Options{APIKey: resendtest.APIKey, From: "security@acme.example", BaseURL: r.api.URL})
	if err != nil {
		t.Fatal(err)
	}
	msg := reset.Message{ID: "m1", Kind: reset.KindReset, To: "complained+1@resend.dev", Subject: "s", Text: "t"}
	if err := m.Send(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	posts := r.deliver(t)
	if len(posts) != 3 || posts[2].Type != "email.complained" {
		t.Fatalf("posts %+v", posts)
	}
	if !r.suppressed(t, "Complained+1@Resend.dev") {
		t.Error("a complaint did not suppress the address (compared normalised)")
	}
	if evs := r.last(t, "complained+1@resend.dev"); len(evs) != 3 || evs[0].Type != feedback.Complained || evs[0].MessageID != "m1" {
		t.Errorf("Last = %+v", evs)
	}
}

// post sends body with headers h to the webhook and returns the status.
func (r *rig) post(t *testing.T, body []byte, h http.Header) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", r.hook, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestForgedStaleAndReplayedPostsChangeNothing(t *testing.T) {
	r := newRig(t)
	if _, err := r.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: healthy, Wait: true}); err != nil {
		t.Fatal(err)
	}
	posts := r.deliver(t)
	if len(posts) != 2 {
		t.Fatalf("%d posts", len(posts))
	}
	before := r.last(t, healthy)
	// A bounce for the healthy address, built from its delivered event.
	bounce := []byte(strings.Replace(string(posts[1].Body), `"type":"email.delivered"`,
		`"type":"email.bounced"`, 1))
	bounce = bytes.Replace(bounce, []byte(`"data":{`), []byte(`"data":{"bounce":{"type":"Permanent","subType":"General","message":"m","diagnosticCode":[]},`), 1)
	if bytes.Equal(bounce, posts[1].Body) {
		t.Fatal("the forged body is the original")
	}
	now := time.Now()
	otherSecret := "whsec_" + "b3RoZXIgc2VjcmV0IG9mIHRoZSBhdHRhY2tlcg=="
	signed := func(secret, id string, at time.Time, body []byte) http.Header {
		h, err := resendtest.SignWebhook(secret, id, at, body)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	good := signed(resendtest.WebhookSecret, "msg_forged1", now, bounce)
	tampered := signed(resendtest.WebhookSecret, "msg_forged2", now, posts[1].Body) // signature of another body
	idSwap := signed(resendtest.WebhookSecret, "msg_forged3", now, bounce)
	idSwap.Set("svix-id", "msg_forged4")
	cases := []struct {
		name string
		h    http.Header
		want int
	}{
		{"unsigned", http.Header{}, http.StatusBadRequest},
		{"no signature", http.Header{"Svix-Id": {"msg_x"}, "Svix-Timestamp": good["Svix-Timestamp"]}, http.StatusBadRequest},
		{"wrong secret", signed(otherSecret, "msg_forged5", now, bounce), http.StatusBadRequest},
		{"signature of another body", tampered, http.StatusBadRequest},
		{"signature of another id", idSwap, http.StatusBadRequest},
		{"stale", signed(resendtest.WebhookSecret, "msg_forged6", now.Add(-resendmailer.WebhookTolerance-time.Minute), bounce), http.StatusBadRequest},
		{"from the future", signed(resendtest.WebhookSecret, "msg_forged7", now.Add(resendmailer.WebhookTolerance+time.Minute), bounce), http.StatusBadRequest},
		{"bad timestamp", http.Header{"Svix-Id": {"msg_forged1"}, "Svix-Timestamp": {"soon"}, "Svix-Signature": good["Svix-Signature"]}, http.StatusBadRequest},
	}
	for _, c := range cases {
		if got := r.post(t, bounce, c.h); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	// Replays of genuine posts, as captured (same headers) or signed
	// again at a fresh time, are refused.
	for _, p := range posts {
		if got, err := r.api.PostWebhook(t.Context(), p, now); err != nil || got != http.StatusConflict {
			t.Errorf("replay of %s: %d %v, want 409", p.Type, got, err)
		}
	}
	if got := r.post(t, posts[0].Body, signed(resendtest.WebhookSecret, posts[0].ID, now.Add(-time.Minute), posts[0].Body)); got != http.StatusConflict {
		t.Errorf("replay a minute later: %d, want 409", got)
	}
	get, err := http.Get(r.hook)
	if err != nil {
		t.Fatal(err)
	}
	get.Body.Close()
	if get.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", get.StatusCode)
	}
	after := r.last(t, healthy)
	if len(after) != len(before) || r.suppressed(t, healthy) {
		t.Fatalf("refused posts changed something: %d events before, %d after; suppressed %v", len(before), len(after), r.suppressed(t, healthy))
	}
	// The genuine forged-body post, correctly signed, is what the
	// secret's holder could send: it is recorded (the check is the
	// signature, not the content).
	if got := r.post(t, bounce, good); got != http.StatusNoContent {
		t.Errorf("a correctly signed bounce: %d, want 204", got)
	}
	if !r.suppressed(t, healthy) {
		t.Error("a correctly signed hard bounce did not suppress")
	}
}
