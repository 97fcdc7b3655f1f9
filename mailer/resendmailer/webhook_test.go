package resendmailer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/feedback"
	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/store/memstore"
)

func newWebhook(t testing.TB, max int64) (*resendmailer.Webhook, *feedback.Feedback) {
	t.Helper()
	fb, err := feedback.New(feedback.Options{Store: memstore.New(), Key: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	wh, err := resendmailer.NewWebhook(resendmailer.WebhookOptions{Secret: resendtest.WebhookSecret, Feedback: fb, MaxBody: max})
	if err != nil {
		t.Fatal(err)
	}
	return wh, fb
}

// post sends body to wh signed now under a new ID and returns the status.
func post(t testing.TB, wh http.Handler, id, body string) int {
	t.Helper()
	h, err := resendtest.SignWebhook(resendtest.WebhookSecret, id, time.Now(), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	for k, v := range h {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	wh.ServeHTTP(w, r)
	return w.Code
}

func TestNewWebhookNamesEveryProblem(t *testing.T) {
	_, err := resendmailer.NewWebhook(resendmailer.WebhookOptions{MaxBody: -1})
	for _, want := range []string{"Secret is required", "Feedback is required", "MaxBody"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	for _, s := range []string{"c2VjcmV0", "whsec_not base64!"} {
		_, err := resendmailer.NewWebhook(resendmailer.WebhookOptions{Secret: s})
		if err == nil || !strings.Contains(err.Error(), "whsec_") || strings.Contains(err.Error(), s) {
			t.Errorf("NewWebhook with secret %q: %v, want a whsec_ error that does not quote it", s, err)
		}
	}
}

func TestWebhookEvents(t *testing.T) {
	wh, fb := newWebhook(t, 0)
	ctx := context.Background()
	// An event type it does not record: acknowledged, nothing changes.
	opened := `{"type":"email.opened","created_at":"2026-12-04T10:00:00.000Z","data":{"email_id":"e1","to":["a@example.com"],"created_at":"2026-12-04T10:00:00.000Z","from":"x@example.com","subject":"s"}}`
	if got := post(t, wh, "msg_open", opened); got != http.StatusNoContent {
		t.Errorf("email.opened: %d, want 204", got)
	}
	if evs, _ := fb.Last(ctx, "a@example.com", 10); len(evs) != 0 {
		t.Errorf("email.opened recorded %d events", len(evs))
	}
	// A soft bounce to two recipients: one event each, not suppressed.
	soft := `{"type":"email.bounced","created_at":"2026-12-04T10:00:01.5Z","data":{"email_id":"e2","to":["a@example.com","B <b@example.com>"],"created_at":"2026-12-04T10:00:00.000Z","from":"x@example.com","subject":"s","tags":{"message_id":"M2"},"bounce":{"type":"Transient","subType":"MailboxFull","message":"full","diagnosticCode":["smtp; 452 4.2.2 a@example.com full"]}}}`
	if got := post(t, wh, "msg_soft", soft); got != http.StatusNoContent {
		t.Fatalf("soft bounce: %d", got)
	}
	for _, to := range []string{"a@example.com", "b@example.com"} {
		evs, err := fb.Last(ctx, to, 10)
		if err != nil || len(evs) != 1 {
			t.Fatalf("Last(%s) = %v, %v", to, evs, err)
		}
		e := evs[0]
		if e.Type != feedback.Bounced || e.Bounce != feedback.Soft || e.Detail != "MailboxFull" || e.MessageID != "M2" || e.ProviderID != "e2" ||
			!e.Time.Equal(time.Date(2026, 12, 4, 10, 0, 1, 5e8, time.UTC)) {
			t.Errorf("event for %s: %+v", to, e)
		}
		if held, _ := fb.Suppressed(ctx, to); held {
			t.Errorf("a soft bounce suppressed %s", to)
		}
	}
	// Signed, but not an event it can read: 400, nothing recorded.
	for name, body := range map[string]string{
		"not JSON":         `{"type":`,
		"no recipient":     `{"type":"email.delivered","created_at":"2026-12-04T10:00:00Z","data":{"email_id":"e3","to":[]}}`,
		"no time":          `{"type":"email.delivered","data":{"email_id":"e3","to":["c@example.com"]}}`,
		"bounce no kind":   `{"type":"email.bounced","created_at":"2026-12-04T10:00:00Z","data":{"email_id":"e3","to":["c@example.com"]}}`,
		"empty body":       ``,
		"year 1":           `{"type":"email.delivered","created_at":"0001-01-01T00:00:00Z","data":{"email_id":"e3","to":["c@example.com"]}}`,
		"provider ID long": `{"type":"email.delivered","created_at":"2026-12-04T10:00:00Z","data":{"email_id":"` + strings.Repeat("x", 256) + `","to":["c@example.com"]}}`,
	} {
		if got := post(t, wh, "msg_bad_"+strings.ReplaceAll(name, " ", "_"), body); got != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, got)
		}
	}
	if evs, _ := fb.Last(ctx, "c@example.com", 10); len(evs) != 0 {
		t.Errorf("a refused post recorded %d events", len(evs))
	}
	// A message_id tag no passreset ID can be is left out.
	long := `{"type":"email.delivered","created_at":"2026-12-04T10:00:00Z","data":{"email_id":"e4","to":["d@example.com"],"tags":{"message_id":"` + strings.Repeat("x", 65) + `"}}}`
	if got := post(t, wh, "msg_long", long); got != http.StatusNoContent {
		t.Errorf("a long message_id tag: %d, want 204", got)
	}
	if evs, _ := fb.Last(ctx, "d@example.com", 10); len(evs) != 1 || evs[0].MessageID != "" {
		t.Errorf("events %+v, want one without a message ID", evs)
	}
}

func TestWebhookBodyLimit(t *testing.T) {
	wh, _ := newWebhook(t, 64)
	body := `{"type":"email.delivered","created_at":"2026-12-04T10:00:00Z","data":{"email_id":"e1","to":["a@example.com"]}}`
	if got := post(t, wh, "msg_big", body); got != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over MaxBody: %d, want 413", got)
	}
}

func TestMessageTag(t *testing.T) {
	srv := newServer(t)
	m := newMailer(t, srv, nil)
	// An ID that cannot be a tag value is sent without the tag.
	msg := message("not/a tag")
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	for _, tag := range srv.Emails()[0].Tags {
		if tag.Name == resendmailer.MessageTag {
			t.Errorf("tag %v for an ID that is no tag value", tag)
		}
	}
	_, err := resendmailer.New(resendmailer.Options{APIKey: "k", From: "a@example.com", Tags: []resendmailer.Tag{{Name: "message_id", Value: "x"}}})
	if err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("a tag named message_id: %v, want reserved", err)
	}
}

// FuzzWebhook posts correctly signed bodies of any shape: the handler
// never panics and answers 204 or 400, recording only what it accepted.
func FuzzWebhook(f *testing.F) {
	f.Add(`{"type":"email.bounced","created_at":"2026-12-04T10:00:00Z","data":{"email_id":"e","to":["a@example.com"],"tags":{"message_id":"M"},"bounce":{"type":"Permanent","subType":"General"}}}`)
	f.Add(`{"type":"email.complained","created_at":"2026-12-04T10:00:00Z","data":{"to":["a@example.com","b@example.com"]}}`)
	f.Add(`{"type":"email.delivered","created_at":"x","data":{"to":[""]}}`)
	f.Add(`[]`)
	wh, _ := newWebhook(f, 0)
	f.Fuzz(func(t *testing.T, body string) {
		switch got := post(t, wh, "msg_"+rand.Text(), body); got {
		case http.StatusNoContent, http.StatusBadRequest:
		default:
			t.Errorf("status %d for %q", got, body)
		}
	})
}
