package reset_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/password"
)

// wantCode reports whether err is a *password.Error with code ("" = nil).
func wantCode(t *testing.T, pw string, err error, code string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Errorf("%q: %v, want accepted", pw, err)
		}
		return
	}
	pe, ok := errors.AsType[*password.Error](err)
	if !ok || pe.Code != code || !errors.Is(err, password.ErrRejected) || pe.Reason == "" {
		t.Errorf("%q: %v, want a *password.Error with code %q", pw, err, code)
	}
}

// breaches is a BreachChecker that knows some passwords, or fails.
type breaches struct {
	known map[string]bool
	err   error
	asked []string
}

func (b *breaches) Breached(_ context.Context, pw string) (bool, error) {
	b.asked = append(b.asked, pw)
	return b.known[pw], b.err
}

// A refused password (by the policy, a breach checker, or a failing
// checker) leaves the link working; the policy sees the token's account.
func TestCompleteScreensForTheAccount(t *testing.T) {
	b := &breaches{known: map[string]bool{"a breached passphrase": true}}
	var seen []password.Check
	e := newEnv(t, func(c *reset.Config) {
		c.Product = "Acme Cloud"
		c.BreachedPasswords = b
		c.PasswordPolicy = func(ctx context.Context, pc password.Check) error {
			seen = append(seen, pc)
			return password.DefaultPolicy(ctx, pc)
		}
	})
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	tok := token(iss.Link)
	for pw, code := range map[string]string{
		"password1234567":            password.Common,
		"jborder is my name, right?": password.Context,
		"my acme cloud passphrase":   password.Context,
		"the example passphrase":     password.Context, // a label of the reset host
		"a breached passphrase":      password.Breached,
		"short":                      password.TooShort,
	} {
		_, err := e.svc.Complete(t.Context(), reset.Completion{Token: tok, Password: pw})
		wantCode(t, pw, err, code)
	}
	want := password.Check{Password: "short", UserID: userID, Email: userEmail, Product: "Acme Cloud", Host: "app.example.com"}
	if i := slices.IndexFunc(seen, func(c password.Check) bool { return c.Password == "short" }); i < 0 || seen[i] != want {
		t.Errorf("the policy saw %+v, want %+v", seen, want)
	}
	b.err = errors.New("range API down")
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: tok, Password: "a fine new passphrase"}); !errors.Is(err, b.err) || errors.Is(err, password.ErrRejected) {
		t.Errorf("with a failing checker: %v, want its error", err)
	}
	b.err = nil
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: tok, Password: "a fine new passphrase"}); err != nil {
		t.Fatalf("the link stopped working after refused passwords: %v", err)
	}
	if e.users.Password(userID) != "a fine new passphrase" {
		t.Error("password not changed")
	}
}

// The default minimum follows MultiFactor; a custom policy's is found.
func TestMinPasswordLength(t *testing.T) {
	for _, tc := range []struct {
		edit func(*reset.Config)
		want int
	}{
		{func(*reset.Config) {}, password.Min},
		{func(c *reset.Config) { c.MultiFactor = true }, password.MinMultiFactor},
		{func(c *reset.Config) {
			c.PasswordPolicy = func(_ context.Context, pc password.Check) error {
				if len(pc.Password) < 20 {
					return &password.Error{Reason: "too short"}
				}
				return nil
			}
		}, 20},
	} {
		if got := newEnv(t, tc.edit).svc.MinPasswordLength(); got != tc.want {
			t.Errorf("MinPasswordLength = %d, want %d", got, tc.want)
		}
	}
}
