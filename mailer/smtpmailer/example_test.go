package smtpmailer_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/passreset/passreset/mailer/smtpmailer"
	"github.com/passreset/passreset/reset"
)

// A Mailer from a URL kept in the environment, such as
// SMTP_URL=smtps://apikey:secret@smtp.example.com (implicit TLS on 465).
func Example() {
	m, err := smtpmailer.NewFromURL(os.Getenv("SMTP_URL"), smtpmailer.Options{
		From:    "Acme <security@acme.example>",
		ReplyTo: "support@acme.example",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	// reset.Config{Mailer: m, ...} is how a Service uses it; here one
	// message is sent by hand.
	err = m.Send(context.Background(), reset.Message{
		ID: "5e1f0c2a", Kind: reset.KindReset, To: "ada@example.com",
		Subject: "Reset your Acme password",
		Text:    "Open https://acme.example/reset?token=... to choose a new password.",
	})
	var se *smtpmailer.Error
	switch {
	case errors.As(err, &se):
		log.Printf("the server refused %s: %d %s (permanent: %v)", se.Command, se.Code, se.Text, errors.Is(err, reset.ErrPermanent))
	case err != nil:
		log.Print(err)
	}
}

// Every setting, for a provider's STARTTLS submission port.
func ExampleNew() {
	m, err := smtpmailer.New(smtpmailer.Options{
		Host:     "smtp.example.com",
		Port:     587,
		TLS:      smtpmailer.TLSStartTLS,
		Username: "apikey",
		Password: os.Getenv("SMTP_PASSWORD"),
		Auth:     smtpmailer.AuthPlain,
		From:     "Acme <security@acme.example>",
		Timeout:  10 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	fmt.Println("ready")
	// Output: ready
}

// Errors say which part of the URL is wrong without quoting any of it: a
// password with an unencoded "/" makes net/url read its digits as a port.
func ExampleNewFromURL() {
	_, err := smtpmailer.NewFromURL("smtp://apikey:1234567/abc@smtp.example.com", smtpmailer.Options{From: "security@acme.example"})
	fmt.Println(err)
	_, err = smtpmailer.NewFromURL("smtp+plain://apikey:hunter2@smtp.example.com", smtpmailer.Options{From: "security@acme.example"})
	fmt.Println(err)
	// Output:
	// smtpmailer: URL: the port is not a number from 1 to 65535 (a user name or password that holds / ? # @ : % or a space must be percent-encoded: %2F %3F %23 %40 %3A %25 %20)
	// smtpmailer: invalid options: TLS is TLSNone (smtp+plain://) but Host is not loopback: credentials and reset links would cross the network in plain text (set AllowInsecureRemote to accept that)
}
