package reset_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

// inviteNewUser sends the invitation of an account the application has
// just made: an email whose link works for 7 days and opens the hosted
// page's "Choose your password" form.
func inviteNewUser(ctx context.Context, svc *reset.Service, email string) (reset.Issued, error) {
	return svc.RequestTrusted(ctx, reset.TrustedRequest{
		Email:    email,
		Purpose:  reset.PurposeInvite,
		Lifetime: 7 * 24 * time.Hour, // at most Config.MaxInviteLifetime (7 days)
	})
}

// An invitation: a link with its own purpose, lifetime and email, asked
// for by a trusted caller. Completing it sets the first password, and
// Config.EmailVerified learns that the address is the person's.
func ExampleService_RequestTrusted_invitation() {
	users := &resettest.Users{}
	users.Add("42", "jborder@anywhere.com", "")
	mailer := &resettest.Mailer{}
	clock := resettest.NewClock(time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC))
	svc, err := reset.New(reset.Config{
		KeepSessions:         true,
		Store:                memstore.New(),
		Users:                users,
		Mailer:               mailer,
		ResetURL:             "https://app.example.com/reset",
		Product:              "Example",
		Logger:               slog.New(slog.DiscardHandler),
		DisableChangedNotice: true,
		EmailVerified: func(ctx context.Context, userID, email string) error {
			fmt.Println("verified:", userID, email) // mark the address verified
			return nil
		},
		// Fixed randomness and time, for the output below only.
		Rand: strings.NewReader(strings.Repeat("\x00", 64)),
		Now:  clock.Now,
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	defer svc.Shutdown(ctx)

	issued, err := inviteNewUser(ctx, svc, "jborder@anywhere.com")
	if err != nil {
		panic(err)
	}
	sent, err := mailer.Wait(ctx, 1)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: %s\n%s", sent[0].Kind, sent[0].Subject, sent[0].Text)

	clock.Advance(6 * 24 * time.Hour) // day 6: the link still works
	token := resettest.Token(issued.Link)
	info, err := svc.Inspect(ctx, token)
	fmt.Println(info.Purpose, info.ExpiresAt, err)
	_, err = svc.Complete(ctx, reset.Completion{Token: token, Password: "violet harbour lantern 1"})
	fmt.Println(err)

	// Longer than Config.MaxInviteLifetime: refused, not cut.
	_, err = svc.RequestTrusted(ctx, reset.TrustedRequest{Email: "jborder@anywhere.com", Purpose: reset.PurposeInvite, Lifetime: 8 * 24 * time.Hour})
	fmt.Println(err)
	// Output:
	// invitation: You have been invited to Example: choose your password
	// Hello,
	//
	// You have been invited to Example with the address jborder@anywhere.com.
	// To choose your password, open this link within 7 days:
	//
	// https://app.example.com/reset?token=inv.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
	//
	// The link works once. If you did not expect this invitation, ignore this email: nothing happens without you.
	// invite 2026-12-04 09:30:00 +0000 UTC <nil>
	// verified: 42 jborder@anywhere.com
	// <nil>
	// reset: invalid lifetime: must be at most 168h0m0s for purpose "invite"
}
