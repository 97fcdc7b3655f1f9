package resendtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"
)

// WebhookSecret is a signing secret in Resend's form ("whsec_" and
// base64), for tests that need one.
const WebhookSecret = "whsec_cmVzZW5kdGVzdCB3ZWJob29rIHNpZ25pbmcga2V5IQ=="

// WebhookPost is one webhook event the server queued or posted.
type WebhookPost struct {
	ID      string // the svix-id: "msg_" and random characters, unique per event
	Type    string // such as "email.delivered"
	EmailID string // the id the server answered for the email
	To      string // the recipient the event is about
	Body    []byte // the JSON body, as Resend documents it
	Status  int    // the status the receiver answered; 0 before it was posted
}

// webhooks is what a Server keeps for its webhook.
type webhooks struct {
	url     string
	secret  string
	client  *http.Client
	pending []WebhookPost
}

// SetWebhook makes the server queue, for every email it accepts from now
// on, the events Resend would post to url, signed with secret (a
// "whsec_" secret such as [WebhookSecret]); an empty url stops it. The
// events depend on the recipient, like Resend's test addresses (a
// "+label" after the local part is allowed):
//
//	bounced@resend.dev     email.sent, email.bounced (type Permanent, subType General)
//	complained@resend.dev  email.sent, email.delivered, email.complained
//	any other address      email.sent, email.delivered
//
// One event per recipient of the email (to, cc and bcc). Nothing is posted
// until [Server.DeliverWebhooks].
func (s *Server) SetWebhook(url, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks.url, s.hooks.secret = url, secret
	if s.hooks.client == nil {
		s.hooks.client = &http.Client{Timeout: 10 * time.Second}
	}
}

// PendingWebhooks returns the events queued and not yet posted, in order.
func (s *Server) PendingWebhooks() []WebhookPost {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]WebhookPost(nil), s.hooks.pending...)
}

// DeliverWebhooks posts every queued event, in order, each signed at the
// time of its post, and returns them with the status the receiver
// answered. An event is posted once: like a receiver's failure, one it
// refused is not queued again (post it again with [Server.PostWebhook]).
// It stops at the first post that fails without an answer, returning the
// error; the events not posted stay queued.
func (s *Server) DeliverWebhooks(ctx context.Context) ([]WebhookPost, error) {
	s.mu.Lock()
	url, secret, client := s.hooks.url, s.hooks.secret, s.hooks.client
	s.mu.Unlock()
	var done []WebhookPost
	for {
		s.mu.Lock()
		if len(s.hooks.pending) == 0 {
			s.mu.Unlock()
			return done, nil
		}
		p := s.hooks.pending[0]
		s.mu.Unlock()
		status, err := postWebhook(ctx, client, url, secret, p, time.Now())
		if err != nil {
			return done, err
		}
		s.mu.Lock()
		s.hooks.pending = s.hooks.pending[1:]
		s.mu.Unlock()
		p.Status = status
		done = append(done, p)
	}
}

// PostWebhook posts p to the webhook's URL, signed with the webhook's
// secret at the time at, and returns the status answered: to post an
// event again (a replay), or signed at another time (a stale one).
func (s *Server) PostWebhook(ctx context.Context, p WebhookPost, at time.Time) (int, error) {
	s.mu.Lock()
	url, secret, client := s.hooks.url, s.hooks.secret, s.hooks.client
	s.mu.Unlock()
	if url == "" {
		return 0, errors.New("resendtest: no webhook set")
	}
	return postWebhook(ctx, client, url, secret, p, at)
}

func postWebhook(ctx context.Context, client *http.Client, url, secret string, p WebhookPost, at time.Time) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(p.Body))
	if err != nil {
		return 0, err
	}
	h, err := SignWebhook(secret, p.ID, at, p.Body)
	if err != nil {
		return 0, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Svix-Webhooks/1.0 (resendtest)")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// SignWebhook returns the headers Svix sends with a webhook post of body
// under the message ID id, at the time at, signed with secret (a
// "whsec_" secret): svix-id, svix-timestamp (Unix seconds) and
// svix-signature ("v1," and the base64 HMAC-SHA-256 of
// "id.timestamp.body" under the decoded secret).
func SignWebhook(secret, id string, at time.Time, body []byte) (http.Header, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || !strings.HasPrefix(secret, "whsec_") {
		return nil, errors.New(`resendtest: the webhook secret must be "whsec_" and base64`)
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%s.%s", id, ts, body)
	h := http.Header{}
	h.Set("svix-id", id)
	h.Set("svix-timestamp", ts)
	h.Set("svix-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	return h, nil
}

// queueWebhooks queues the events of emails. s.mu is held.
func (s *Server) queueWebhooks(emails []Email) {
	if s.hooks.url == "" {
		return
	}
	for _, e := range emails {
		for _, to := range slices.Concat(e.To, e.Cc, e.Bcc) {
			at := s.now().UTC()
			types := []string{"email.sent", "email.delivered"}
			switch testAddress(to) {
			case "bounced":
				types = []string{"email.sent", "email.bounced"}
			case "complained":
				types = []string{"email.sent", "email.delivered", "email.complained"}
			}
			for i, typ := range types {
				s.hooks.pending = append(s.hooks.pending, WebhookPost{
					ID:      "msg_" + rand.Text(),
					Type:    typ,
					EmailID: e.ID,
					To:      to,
					Body:    webhookBody(typ, e, to, at, at.Add(time.Duration(i)*time.Millisecond)),
				})
			}
		}
	}
}

// testAddress returns "bounced", "complained" or "delivered" for Resend's
// test addresses (with or without a +label), and "" for others.
func testAddress(to string) string {
	if a, err := mail.ParseAddress(to); err == nil {
		to = a.Address
	}
	local, domain, ok := strings.Cut(strings.ToLower(to), "@")
	if !ok || domain != "resend.dev" {
		return ""
	}
	local, _, _ = strings.Cut(local, "+")
	return local
}

// webhookBody is the JSON of one event, shaped as Resend's OpenAPI
// description documents it: type, created_at and data, with
// data.bounce for email.bounced.
func webhookBody(typ string, e Email, to string, created, at time.Time) []byte {
	tags := map[string]string{}
	for _, t := range e.Tags {
		tags[t.Name] = t.Value
	}
	data := map[string]any{
		"email_id":   e.ID,
		"created_at": created.Format("2006-01-02T15:04:05.000Z07:00"),
		"from":       e.From,
		"to":         []string{to},
		"subject":    e.Subject,
		"tags":       tags,
	}
	if typ == "email.bounced" {
		data["bounce"] = map[string]any{
			"diagnosticCode": []string{"smtp; 550 5.1.1 user unknown"},
			"message":        "The recipient's mail server permanently rejected the email.",
			"subType":        "General",
			"type":           "Permanent",
		}
	}
	b, _ := json.Marshal(map[string]any{
		"type":       typ,
		"created_at": at.Format("2006-01-02T15:04:05.000Z07:00"),
		"data":       data,
	})
	return b
}
