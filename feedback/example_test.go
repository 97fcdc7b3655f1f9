package feedback_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/passreset/passreset/feedback"
	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

// wireFeedback records Resend's webhooks in store and makes the Service
// configured by cfg send no reset email to an address that bounced for
// good or complained. key is 32 or more random bytes kept out of the
// database; secret is the webhook's "whsec_…" signing secret.
func wireFeedback(mux *http.ServeMux, cfg *reset.Config, store feedback.Store, key []byte, secret string) (*feedback.Feedback, error) {
	fb, err := feedback.New(feedback.Options{Store: store, Key: key})
	if err != nil {
		return nil, err
	}
	hook, err := resendmailer.NewWebhook(resendmailer.WebhookOptions{Secret: secret, Feedback: fb})
	if err != nil {
		return nil, err
	}
	mux.Handle("POST /webhooks/resend", hook) // give Resend this URL
	cfg.Suppressed = fb.Suppressed
	return fb, nil
}

// A hard bounce reported by Resend's webhook stops the next reset email
// to that address until the application clears it; a support tool asks
// what happened to the last emails.
func Example() {
	ctx := context.Background()
	api := resendtest.NewServer() // a local Resend
	defer api.Close()
	mailer, err := resendmailer.New(resendmailer.Options{APIKey: resendtest.APIKey, From: "Acme <security@acme.example>", BaseURL: api.URL})
	if err != nil {
		log.Fatal(err)
	}
	users := &resettest.Users{}
	users.Add("u1", "bounced@resend.dev", "old password") // Resend's address that bounces
	store := memstore.New()
	cfg := reset.Config{
		Store: store, Users: users, Mailer: mailer, KeepSessions: true,
		ResetURL: "https://app.example.com/reset",
		Logger:   slog.New(slog.DiscardHandler),
	}

	mux := http.NewServeMux()
	fb, err := wireFeedback(mux, &cfg, store, []byte("32 or more random bytes, not in the database"), resendtest.WebhookSecret)
	if err != nil {
		log.Fatal(err)
	}
	app := httptest.NewServer(mux)
	defer app.Close()
	api.SetWebhook(app.URL+"/webhooks/resend", resendtest.WebhookSecret)

	svc, err := reset.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Shutdown(ctx)
	if _, err := svc.RequestTrusted(ctx, reset.TrustedRequest{Email: "bounced@resend.dev", Wait: true}); err != nil {
		log.Fatal(err)
	}
	if _, err := api.DeliverWebhooks(ctx); err != nil { // Resend reports: sent, then bounced
		log.Fatal(err)
	}

	// Support: what happened to the last reset emails of this user?
	events, err := fb.Last(ctx, "bounced@resend.dev", 10)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range events {
		if e.Type == feedback.Bounced {
			fmt.Println(e.Type, e.Bounce, e.Detail)
		} else {
			fmt.Println(e.Type)
		}
	}
	_, err = svc.RequestTrusted(ctx, reset.TrustedRequest{Email: "bounced@resend.dev", Wait: true})
	fmt.Println("suppressed:", errors.Is(err, reset.ErrSuppressed))

	// The person fixed their mailbox: clear it, and mail flows again.
	if err := fb.Clear(ctx, "bounced@resend.dev"); err != nil {
		log.Fatal(err)
	}
	_, err = svc.RequestTrusted(ctx, reset.TrustedRequest{Email: "bounced@resend.dev", Wait: true})
	fmt.Println("after Clear:", err, len(api.Emails()), "emails")
	// Output:
	// bounced hard General
	// sent
	// suppressed: true
	// after Clear: <nil> 2 emails
}
