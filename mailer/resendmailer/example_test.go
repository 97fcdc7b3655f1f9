package resendmailer_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
)

func Example() {
	// A local fake of the Resend API; in production leave BaseURL empty
	// and read the key from the environment (os.Getenv("RESEND_API_KEY")).
	srv := resendtest.NewServer()
	defer srv.Close()

	m, err := resendmailer.New(resendmailer.Options{
		APIKey:  resendtest.APIKey,
		From:    "Acme <security@acme.example>",
		ReplyTo: "support@acme.example",
		BaseURL: srv.URL,
	})
	if err != nil {
		log.Fatal(err)
	}
	// reset.Config{Mailer: m, ...} is how a Service uses it; here we send
	// one message by hand.
	msg := reset.Message{
		ID:      "5e1f0c2a",
		Kind:    reset.KindReset,
		To:      "ada@example.com",
		Subject: "Reset your Acme password",
		Text:    "Open https://acme.example/reset#... to choose a new password.",
	}
	if err := m.Send(context.Background(), msg); err != nil {
		log.Fatal(err)
	}

	e := srv.Emails()[0]
	fmt.Println(e.From, e.To, e.ReplyTo)
	fmt.Println(e.Subject)
	fmt.Println(e.IdempotencyKey)
	fmt.Println(e.Tags)
	// Output:
	// Acme <security@acme.example> [ada@example.com] [support@acme.example]
	// Reset your Acme password
	// password_reset/5e1f0c2a
	// [{category password_reset} {kind password_reset} {message_id 5e1f0c2a}]
}

func ExampleError() {
	srv := resendtest.NewServer()
	defer srv.Close()
	m, err := resendmailer.New(resendmailer.Options{
		APIKey:  "re_revoked",
		From:    "Acme <security@acme.example>",
		BaseURL: srv.URL,
	})
	if err != nil {
		log.Fatal(err)
	}
	err = m.Send(context.Background(), reset.Message{
		ID: "5e1f0c2b", Kind: reset.KindReset, To: "ada@example.com",
		Subject: "Reset your Acme password", Text: "...",
	})

	var re *resendmailer.Error
	if errors.As(err, &re) {
		fmt.Println(re.StatusCode, re.Name)
	}
	fmt.Println("permanent:", errors.Is(err, resendmailer.ErrPermanent))
	fmt.Println("requests:", len(srv.Requests()))
	// Output:
	// 403 invalid_api_key
	// permanent: true
	// requests: 1
}

func ExampleMailer_SendBatch() {
	srv := resendtest.NewServer()
	defer srv.Close()
	// A recipient Resend refuses, to show a per-message error.
	srv.SetRejectRecipient(func(to string) bool { return to == "nobody@example.com" })

	m, err := resendmailer.New(resendmailer.Options{
		APIKey:  resendtest.APIKey,
		From:    "Acme <security@acme.example>",
		BaseURL: srv.URL,
	})
	if err != nil {
		log.Fatal(err)
	}
	var msgs []reset.Message
	for i, to := range []string{"ada@example.com", "nobody@example.com", "grace@example.com"} {
		msgs = append(msgs, reset.Message{
			ID: fmt.Sprintf("5e1f0c3%d", i), Kind: reset.KindReset, To: to,
			Subject: "Reset your Acme password", Text: "...",
		})
	}
	// The key names this exact batch: a retry after an error for the
	// whole call uses the same key and the same messages.
	per, err := m.SendBatch(context.Background(), "batch/7f3a", msgs)
	if err != nil {
		log.Fatal(err) // unknown outcome: retry the same batch with the same key
	}
	for i, err := range per {
		fmt.Println(msgs[i].ID, err == nil, errors.Is(err, reset.ErrPermanent))
	}
	st := srv.Stats()
	fmt.Println("calls:", st.Calls, "emails:", st.Emails)
	// Output:
	// 5e1f0c30 true false
	// 5e1f0c31 false true
	// 5e1f0c32 true false
	// calls: 1 emails: 2
}
