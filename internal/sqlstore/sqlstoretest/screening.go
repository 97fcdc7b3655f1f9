package sqlstoretest

import (
	"errors"
	"testing"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/password"
	"github.com/passreset/passreset/reset/resettest"
)

// The default password screening, through the real store: a common
// password and one containing the address's local part are refused for
// the token's account (read back from the store), the row stays, and the
// link then works.
func testPasswordScreening(t *testing.T, h Harness) {
	s := h.NewStore(t, h.DB(t), 0)
	svc, users, _ := NewService(t, s, "screened", nil)
	iss, err := svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: "screened@example.com", SkipSend: true})
	if err != nil {
		t.Fatal(err)
	}
	tok := resettest.Token(iss.Link)
	for pw, code := range map[string]string{
		"password1234567":          password.Common,
		"screened and safe, right": password.Context,
	} {
		_, err := svc.Complete(t.Context(), reset.Completion{Token: tok, Password: pw})
		if pe, ok := errors.AsType[*password.Error](err); !ok || pe.Code != code {
			t.Errorf("Complete(%q) = %v, want a PasswordError %q", pw, err, code)
		}
	}
	if _, err := svc.Inspect(t.Context(), tok); err != nil {
		t.Fatalf("a refused password used the token: %v", err)
	}
	if _, err := svc.Complete(t.Context(), reset.Completion{Token: tok, Password: "a quiet harbour at dawn"}); err != nil {
		t.Fatal(err)
	}
	if users.Password("screened") != "a quiet harbour at dawn" {
		t.Error("password not changed")
	}
}
