package resettest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
)

// testInvitation: a 7-day invitation, stored and read back by the store,
// works on day 6 and is expired on day 8; a reset token of the same
// user, and the invitation with its purpose prefix taken off, are not
// mistaken for each other.
func testInvitation(t *testing.T, s reset.Store, u func(string) string) {
	svc, users, _, clock := newService(t, s, u)
	email := u("a") + "@example.com"
	week := 7 * 24 * time.Hour
	iss, err := svc.RequestTrusted(ctx(t), reset.TrustedRequest{Email: email, Purpose: reset.PurposeInvite, Lifetime: week, SkipSend: true})
	if err != nil {
		t.Fatalf("RequestTrusted: %v", err)
	}
	tok := Token(iss.Link)
	if _, err := svc.Inspect(ctx(t), strings.TrimPrefix(tok, "inv.")); !errors.Is(err, reset.ErrInvalidToken) {
		t.Fatalf("the invitation without its purpose prefix: %v, want ErrInvalidToken", err)
	}
	clock.Advance(6 * 24 * time.Hour)
	info, err := svc.Inspect(ctx(t), tok)
	if err != nil || info.Purpose != reset.PurposeInvite || !info.ExpiresAt.Truncate(time.Microsecond).Equal(base.Add(week)) {
		t.Fatalf("Inspect on day 6: %+v, %v", info, err)
	}
	if _, err := svc.Complete(ctx(t), reset.Completion{Token: tok, Password: "new passphrase for tests"}); err != nil {
		t.Fatalf("Complete on day 6: %v", err)
	}
	if users.Password(u("a")) != "new passphrase for tests" {
		t.Fatal("the invitation did not set the password")
	}

	late, err := svc.RequestTrusted(ctx(t), reset.TrustedRequest{Email: email, Purpose: reset.PurposeInvite, Lifetime: week, SkipSend: true})
	if err != nil {
		t.Fatalf("RequestTrusted: %v", err)
	}
	clock.Advance(8 * 24 * time.Hour)
	if _, err := svc.Complete(ctx(t), reset.Completion{Token: Token(late.Link), Password: "another passphrase for tests"}); !errors.Is(err, reset.ErrExpiredToken) {
		t.Fatalf("Complete on day 8: %v, want ErrExpiredToken", err)
	}
}
