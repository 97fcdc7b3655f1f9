package reset_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
)

const (
	day       = 24 * time.Hour
	firstPass = "violet harbour lantern 1"
)

// TestInvitationWorksOnDay6FailsOnDay8 is the case: an invitation
// that lives 7 days opens and completes on day 6, and another one is
// refused as expired on day 8.
func TestInvitationWorksOnDay6FailsOnDay8(t *testing.T) {
	e := newEnv(t, func(c *reset.Config) { c.Product = "Acme" })
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, Purpose: reset.PurposeInvite, Lifetime: 7 * day, Wait: true})
	if want := e.clock.Now().Add(7 * day); !iss.ExpiresAt.Equal(want) {
		t.Fatalf("ExpiresAt %v, want %v", iss.ExpiresAt, want)
	}
	m := e.mailer.Messages()[0]
	if m.Kind != reset.KindInvite || m.Subject != "You have been invited to Acme: choose your password" ||
		!strings.Contains(m.Text, "within 7 days") || !strings.Contains(m.Text, iss.Link) || !strings.Contains(m.HTML, "Choose your password") {
		t.Fatalf("invitation email: %s %q\n%s", m.Kind, m.Subject, m.Text)
	}

	e.clock.Advance(6 * day)
	info, err := e.svc.Inspect(t.Context(), token(iss.Link))
	if err != nil || info.Purpose != reset.PurposeInvite || info.UserID != userID {
		t.Fatalf("Inspect on day 6: %+v, %v", info, err)
	}
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: token(iss.Link), Password: firstPass}); err != nil {
		t.Fatalf("Complete on day 6: %v", err)
	}
	if got := e.users.Password(userID); got != firstPass {
		t.Fatalf("password %q after the invitation", got)
	}

	late := e.request(t, reset.TrustedRequest{Email: userEmail, Purpose: reset.PurposeInvite, Lifetime: 7 * day, SkipSend: true})
	e.clock.Advance(8 * day)
	if _, err := e.svc.Inspect(t.Context(), token(late.Link)); !errors.Is(err, reset.ErrExpiredToken) {
		t.Fatalf("Inspect on day 8: %v", err)
	}
	_, err = e.svc.Complete(t.Context(), reset.Completion{Token: token(late.Link), Password: "amber meadow compass 2"})
	if !errors.Is(err, reset.ErrExpiredToken) || e.users.Password(userID) != firstPass {
		t.Fatalf("Complete on day 8: %v; password %q", err, e.users.Password(userID))
	}
}

// TestInvitationDefaultsToTheMaximum: an invitation with no lifetime works
// for Config.MaxInviteLifetime; a reset with none for TokenTTL, and its
// token says so.
func TestInvitationDefaultsToTheMaximum(t *testing.T) {
	e := newEnv(t, func(c *reset.Config) { c.MaxInviteLifetime = 3 * day })
	now := e.clock.Now()
	inv := e.request(t, reset.TrustedRequest{Email: userEmail, Purpose: reset.PurposeInvite, SkipSend: true})
	if !inv.ExpiresAt.Equal(now.Add(3 * day)) {
		t.Fatalf("invitation ExpiresAt %v", inv.ExpiresAt)
	}
	rst := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	if !rst.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("reset ExpiresAt %v", rst.ExpiresAt)
	}
	info, err := e.svc.Inspect(t.Context(), token(rst.Link))
	if err != nil || info.Purpose != reset.PurposeReset {
		t.Fatalf("Inspect of a reset: %+v, %v", info, err)
	}
	// The reset replaced the invitation: one token per user.
	if _, err := e.svc.Inspect(t.Context(), token(inv.Link)); !errors.Is(err, reset.ErrInvalidToken) {
		t.Fatalf("the replaced invitation: %v", err)
	}
}

// TestLifetimeRefusedNotCut: a lifetime beyond the purpose's maximum, a
// negative or tiny one and an unknown purpose are each an InputError
// naming the field, and change nothing: no mail, and the older link works.
func TestLifetimeRefusedNotCut(t *testing.T) {
	e := newEnv(t)
	old := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	for _, tc := range []struct {
		r     reset.TrustedRequest
		field string
	}{
		{reset.TrustedRequest{Purpose: reset.PurposeInvite, Lifetime: 7*day + time.Second}, "lifetime"},
		{reset.TrustedRequest{Lifetime: time.Hour + time.Minute}, "lifetime"},
		{reset.TrustedRequest{Purpose: reset.PurposeReset, Lifetime: 2 * day}, "lifetime"},
		{reset.TrustedRequest{Lifetime: -time.Hour}, "lifetime"},
		{reset.TrustedRequest{Purpose: reset.PurposeInvite, Lifetime: time.Second}, "lifetime"},
		{reset.TrustedRequest{Purpose: "admin"}, "purpose"},
	} {
		tc.r.Email, tc.r.Wait = userEmail, true
		iss, err := e.svc.RequestTrusted(t.Context(), tc.r)
		ie, ok := errors.AsType[*reset.InputError](err)
		if !ok || ie.Field != tc.field || iss.Link != "" {
			t.Errorf("%+v: %v, %+v; want an InputError for %q", tc.r, err, iss, tc.field)
		}
	}
	if n := len(e.mailer.Messages()); n != 0 {
		t.Errorf("%d emails sent", n)
	}
	if _, err := e.svc.Inspect(t.Context(), token(old.Link)); err != nil {
		t.Fatalf("the older link stopped working: %v", err)
	}
	// A shorter reset lifetime is honoured.
	short := e.request(t, reset.TrustedRequest{Email: userEmail, Lifetime: 10 * time.Minute, Wait: true})
	if !strings.Contains(e.mailer.Messages()[0].Text, "within 10 minutes") {
		t.Errorf("a 10-minute reset says:\n%s", e.mailer.Messages()[0].Text)
	}
	e.clock.Advance(10 * time.Minute)
	if _, err := e.svc.Inspect(t.Context(), token(short.Link)); !errors.Is(err, reset.ErrExpiredToken) {
		t.Fatalf("a 10-minute reset after 10 minutes: %v", err)
	}
}

// TestPurposeBoundIntoToken: the purpose is part of what the stored hash
// covers, so a link whose purpose prefix is removed, added or changed
// names no token, with or without a TokenKey.
func TestPurposeBoundIntoToken(t *testing.T) {
	for _, key := range [][]byte{nil, []byte("0123456789abcdef0123456789abcdef")} {
		e := newEnv(t, func(c *reset.Config) { c.TokenKey = key })
		inv := token(e.request(t, reset.TrustedRequest{Email: userEmail, Purpose: reset.PurposeInvite, SkipSend: true}).Link)
		bare, ok := strings.CutPrefix(inv, "inv.")
		if !ok {
			t.Fatalf("invitation token %q has no purpose prefix", inv)
		}
		for _, forged := range []string{bare, "rst." + bare, "inv.inv." + bare, "INV." + bare} {
			if _, err := e.svc.Inspect(t.Context(), forged); !errors.Is(err, reset.ErrInvalidToken) {
				t.Errorf("key %v: Inspect(%q) = %v, want ErrInvalidToken", key != nil, forged, err)
			}
		}
		rst := token(e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true}).Link)
		if _, err := e.svc.Inspect(t.Context(), "inv."+rst); !errors.Is(err, reset.ErrInvalidToken) {
			t.Errorf("key %v: a reset token with the invitation prefix: %v", key != nil, err)
		}
		if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: "inv." + rst, Password: firstPass}); !errors.Is(err, reset.ErrInvalidToken) {
			t.Errorf("key %v: Complete with a forged prefix: %v", key != nil, err)
		}
		if info, err := e.svc.Inspect(t.Context(), rst); err != nil || info.Purpose != reset.PurposeReset {
			t.Errorf("key %v: the reset token after the forgeries: %+v, %v", key != nil, info, err)
		}
	}
}

// TestInvitationQueued: without Wait, the invitation goes through the
// queue as its own email.
func TestInvitationQueued(t *testing.T) {
	e := newEnv(t, func(c *reset.Config) { c.Product = "Acme" })
	e.users.SetLocale(userEmail, "de")
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, Purpose: reset.PurposeInvite, Lifetime: 2 * day})
	msgs, err := e.mailer.Wait(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if m.ID != iss.MessageID || m.Kind != reset.KindInvite || m.Subject != "Sie wurden zu Acme eingeladen: Wählen Sie Ihr Passwort" ||
		!strings.Contains(m.Text, "innerhalb von 2 Tagen") || !strings.Contains(m.Text, iss.Link) {
		t.Fatalf("queued invitation: %+v", m)
	}
}

// verified records Config.EmailVerified's calls.
type verified struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (v *verified) hook(ctx context.Context, userID, email string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls = append(v.calls, userID+" "+email)
	return v.err
}

func (v *verified) got() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.calls...)
}

// TestEmailVerifiedAfterCompletion: Config.EmailVerified hears of the
// address the link went to after a completed invitation and a completed
// reset, never after a refused completion; its failure is reported and
// leaves the password changed.
func TestEmailVerifiedAfterCompletion(t *testing.T) {
	v := &verified{}
	e := newEnv(t, func(c *reset.Config) { c.EmailVerified = v.hook })
	inv := e.request(t, reset.TrustedRequest{Email: userEmail, Purpose: reset.PurposeInvite, SkipSend: true})
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: token(inv.Link), Password: "short"}); err == nil {
		t.Fatal("a short password was accepted")
	}
	if got := v.got(); len(got) != 0 {
		t.Fatalf("EmailVerified called after a refused completion: %v", got)
	}
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: token(inv.Link), Password: firstPass}); err != nil {
		t.Fatal(err)
	}
	rst := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	v.mu.Lock()
	v.err = errors.New("directory down")
	v.mu.Unlock()
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: token(rst.Link), Password: "amber meadow compass 2"}); err != nil {
		t.Fatalf("a failing EmailVerified failed the reset: %v", err)
	}
	want := userID + " " + userEmail
	if got := v.got(); len(got) != 2 || got[0] != want || got[1] != want {
		t.Fatalf("EmailVerified calls %v, want two of %q", got, want)
	}
	if e.users.Password(userID) != "amber meadow compass 2" {
		t.Fatal("the password did not stay changed")
	}
	e.events.wait(reset.EventAfterResetFailed, 1)
}
