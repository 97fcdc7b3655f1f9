package resendtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/resend/resend-go/v2"

	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
)

// receiver records the posts it gets and verifies each with resend-go.
type receiver struct {
	mu    sync.Mutex
	posts []map[string]any
	errs  []error
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	err := (&resend.WebhooksSvcImpl{}).Verify(&resend.VerifyWebhookOptions{
		Payload:       string(body),
		WebhookSecret: resendtest.WebhookSecret,
		Headers: resend.WebhookHeaders{
			Id:        r.Header.Get("svix-id"),
			Timestamp: r.Header.Get("svix-timestamp"),
			Signature: r.Header.Get("svix-signature"),
		},
	})
	var ev map[string]any
	json.Unmarshal(body, &ev)
	rc.mu.Lock()
	rc.posts = append(rc.posts, ev)
	rc.errs = append(rc.errs, err)
	rc.mu.Unlock()
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func send(t *testing.T, srv *resendtest.Server, to string) {
	t.Helper()
	c := resend.NewClient(resendtest.APIKey)
	c.BaseURL = mustURL(t, srv.URL+"/")
	_, err := c.Emails.SendWithContext(t.Context(), &resend.SendEmailRequest{
		From: "a@example.com", To: []string{to}, Subject: "s", Text: "t",
		Tags: []resend.Tag{{Name: "message_id", Value: "M1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestWebhooksSignedAsResendVerifies(t *testing.T) {
	srv := resendtest.NewServer()
	defer srv.Close()
	rc := &receiver{}
	hs := httptest.NewServer(rc)
	defer hs.Close()
	send(t, srv, "nobody@example.com") // before SetWebhook: no events
	srv.SetWebhook(hs.URL, resendtest.WebhookSecret)
	send(t, srv, "ada@example.com")
	send(t, srv, "Bounced+x@Resend.dev")
	send(t, srv, "complained@resend.dev")
	if n := len(srv.PendingWebhooks()); n != 7 {
		t.Fatalf("%d events queued, want 7", n)
	}
	posts, err := srv.DeliverWebhooks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"email.sent", "email.delivered", "email.sent", "email.bounced", "email.sent", "email.delivered", "email.complained"}
	if len(posts) != len(want) || len(srv.PendingWebhooks()) != 0 {
		t.Fatalf("%d posts, %d still pending", len(posts), len(srv.PendingWebhooks()))
	}
	ids := map[string]bool{}
	for i, p := range posts {
		if p.Type != want[i] || p.Status != http.StatusOK || rc.errs[i] != nil {
			t.Errorf("post %d: %s answered %d (%v), want %s verified by resend-go", i, p.Type, p.Status, rc.errs[i], want[i])
		}
		ids[p.ID] = true
		ev := rc.posts[i]
		data, _ := ev["data"].(map[string]any)
		tags, _ := data["tags"].(map[string]any)
		if ev["type"] != p.Type || data["email_id"] != p.EmailID || tags["message_id"] != "M1" {
			t.Errorf("post %d body %v", i, ev)
		}
		if _, err := time.Parse(time.RFC3339Nano, ev["created_at"].(string)); err != nil {
			t.Errorf("post %d created_at: %v", i, err)
		}
	}
	if len(ids) != len(posts) {
		t.Error("svix-ids repeat")
	}
	bounce := rc.posts[3]["data"].(map[string]any)["bounce"].(map[string]any)
	if bounce["type"] != "Permanent" || bounce["subType"] != "General" {
		t.Errorf("bounce %v", bounce)
	}
	// Posted again, stale or under another secret: resend-go refuses it.
	if status, err := srv.PostWebhook(t.Context(), posts[0], time.Now().Add(-time.Hour)); err != nil || status != http.StatusBadRequest {
		t.Errorf("stale post: %d %v", status, err)
	}
	srv.SetWebhook(hs.URL, "whsec_"+"b3RoZXI=")
	if status, err := srv.PostWebhook(t.Context(), posts[0], time.Now()); err != nil || status != http.StatusBadRequest {
		t.Errorf("post under another secret: %d %v", status, err)
	}
}

func TestSignWebhookRefusesABadSecret(t *testing.T) {
	for _, s := range []string{"", "secret", "whsec_***"} {
		if _, err := resendtest.SignWebhook(s, "msg_1", time.Now(), []byte("{}")); err == nil {
			t.Errorf("SignWebhook(%q) accepted", s)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
