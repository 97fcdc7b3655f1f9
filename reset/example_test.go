package reset_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/passreset/passreset/mailer/logmailer"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

// Wiring the core with the in-memory store and the development mailer.
// A real program passes its own [reset.Users]; here resettest's in-memory
// users stand in.
func Example() {
	users := &resettest.Users{}
	users.Add("42", "jborder@anywhere.com", "old password")
	var outbox bytes.Buffer // emails are written here, and printed at the end

	svc, err := reset.New(reset.Config{
		Store:    memstore.New(),
		Users:    users,
		Mailer:   logmailer.New(&outbox),
		ResetURL: "https://app.example.com/reset",
		Product:  "Example",
		Logger:   slog.New(slog.DiscardHandler),
		// Your session store: sign the user out everywhere after a reset.
		EndSessions: users.EndSessions,
		// Fixed randomness and time, for the output below only.
		Rand: strings.NewReader(strings.Repeat("\x00", 64)),
		Now:  func() time.Time { return time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC) },
	})
	if err != nil {
		panic(err)
	}
	defer svc.Shutdown(context.Background())

	ctx := context.Background()
	issued, err := svc.RequestTrusted(ctx, reset.TrustedRequest{Email: "jborder@anywhere.com", SkipSend: true})
	if err != nil {
		panic(err)
	}
	fmt.Println(issued.Link)

	token := resettest.Token(issued.Link)
	userID, err := svc.Complete(ctx, reset.Completion{Token: token, Password: "a new long password"})
	fmt.Println(userID, err, users.Password("42"))

	_, err = svc.Complete(ctx, reset.Completion{Token: token, Password: "and once more, longer"})
	fmt.Println(err)
	svc.Shutdown(ctx) // waits for the "password changed" notice
	fmt.Print(outbox.String())
	// Output:
	// https://app.example.com/reset?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
	// 42 <nil> a new long password
	// reset: invalid token: unknown, used or replaced
	// ----- email 00000000000000000000000000000000 (password_changed)
	// To: jborder@anywhere.com
	// Subject: Your Example password was changed
	//
	// Hello,
	//
	// The password of the Example account for jborder@anywhere.com was changed on 27 November 2026 at 09:30 UTC.
	//
	// If you did this, you need do nothing. If you did not, reset your password at once and contact support: someone else may have access to your email.
	// ----- end of email
}

// A public "forgot password" form calls Request: its answer and its
// timing are the same whether or not the address has an account. The
// work runs in the background; Shutdown waits for it.
func ExampleService_Request() {
	users := &resettest.Users{}
	users.Add("42", "jborder@anywhere.com", "old password")
	var outbox bytes.Buffer // written by the background worker
	svc, err := reset.New(reset.Config{
		KeepSessions: true,
		Store:        memstore.New(),
		Users:        users,
		Mailer:       logmailer.New(&outbox),
		ResetURL:     "https://app.example.com/reset",
		Product:      "Example",
		Logger:       slog.New(slog.DiscardHandler),
		Rand:         strings.NewReader(strings.Repeat("\x01", 64)),
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	fmt.Println(svc.Request(ctx, "jborder@anywhere.com", ""))
	fmt.Println(svc.Request(ctx, "nobody@anywhere.com", ""))
	svc.Shutdown(ctx) // waits for the queued work
	fmt.Print(outbox.String())
	// Output:
	// <nil>
	// <nil>
	// ----- email 01010101010101010101010101010101 (password_reset)
	// To: jborder@anywhere.com
	// Subject: Reset your Example password
	//
	// Hello,
	//
	// Someone asked to reset the password of the Example account for jborder@anywhere.com.
	// To choose a new password, open this link within 1 hour:
	//
	// https://app.example.com/reset?token=AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE
	//
	// The link works once. If you did not ask for this, ignore this email: your password stays as it is.
	// ----- end of email
}
