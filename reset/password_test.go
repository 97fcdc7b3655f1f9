package reset_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
)

// check runs the default policy for the test account.
func check(pw string, multiFactor bool) error {
	return reset.DefaultPasswordPolicy(context.Background(), reset.PasswordCheck{
		Password: pw, UserID: userID, Email: "jane.doe+shop@mail.example.org",
		Product: "Acme Cloud", Host: "auth.acmecloud.io", MultiFactor: multiFactor,
	})
}

// wantCode reports whether err is a *PasswordError with code ("" = nil).
func wantCode(t *testing.T, pw string, err error, code string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Errorf("%q: %v, want accepted", pw, err)
		}
		return
	}
	pe, ok := errors.AsType[*reset.PasswordError](err)
	if !ok || pe.Code != code || !errors.Is(err, reset.ErrPasswordRejected) || pe.Reason == "" {
		t.Errorf("%q: %v, want a *PasswordError with code %q", pw, err, code)
	}
}

// NIST SP 800-63B-4: 15 characters alone, 8 with a second factor, at
// least 64 characters of any script allowed, counted in code points.
func TestDefaultPolicyLengths(t *testing.T) {
	for _, tc := range []struct {
		pw          string
		multiFactor bool
		code        string
	}{
		{"zebra kettle 9", false, reset.PasswordTooShort},                 // 14
		{"zebra kettle 93", false, ""},                                    // 15
		{"zebra k9", true, ""},                                            // 8 with a second factor
		{"zebra 9", true, reset.PasswordTooShort},                         // 7
		{strings.Repeat("ключ", 16), false, ""},                           // 64 Cyrillic characters, 128 bytes
		{strings.Repeat("密码很长", 16), false, ""},                           // 64 Chinese characters, 192 bytes
		{strings.Repeat("é", 14), false, reset.PasswordTooShort},          // 14 precomposed
		{strings.Repeat("e\u0301", 8), false, ""},                         // 8 letters with a combining accent: 16 code points
		{strings.Repeat("zq7", 341) + "zq", false, reset.PasswordTooLong}, // 1025
		{strings.Repeat("zq7", 341) + "z", false, ""},                     // 1024
		{"zebra kettle \xff93", false, reset.PasswordInvalidText},
		{"zebra kettle \x0093", false, reset.PasswordInvalidText},
	} {
		err := check(tc.pw, tc.multiFactor)
		wantCode(t, tc.pw, err, tc.code)
		if pe, ok := errors.AsType[*reset.PasswordError](err); ok && pe.Code == reset.PasswordTooShort {
			if want := map[bool]int{false: reset.MinPassword, true: reset.MinPasswordMultiFactor}[tc.multiFactor]; pe.Limit != want {
				t.Errorf("%q: Limit %d, want %d", tc.pw, pe.Limit, want)
			}
		}
	}
}

// ASVS 6.2.4 and 6.2.11: common passwords and context words are refused.
func TestDefaultPolicyScreens(t *testing.T) {
	for pw, code := range map[string]string{
		"password1234567":              reset.PasswordCommon,  // "password" plus digits
		"Password1234567!":             reset.PasswordCommon,  // case and trailing punctuation do not help
		"123456789012345":              "",                    // not on the list (all digits are not a rule)
		"qwertyuiopasdfgh":             reset.PasswordCommon,  // on the list as it is
		"iloveyou":                     reset.PasswordCommon,  // with a second factor, 8 is long enough but it is common
		"my name is JANE.DOE ok":       reset.PasswordContext, // the email's local part
		"doe doe doe doe doe!":         "",                    // "doe" is shorter than 4: not a context word
		"jane likes long walks":        reset.PasswordContext, // a part of the local part
		"love my acme cloud a lot":     reset.PasswordContext, // the product name
		"acmecloud rocks forever":      reset.PasswordContext, // a label of the host
		"forever shopping spree":       reset.PasswordContext, // "shop", a part of the local part
		"correct horse battery staple": "",
	} {
		wantCode(t, pw, check(pw, true), code)
	}
	// A tiny address must not ban every password.
	err := reset.DefaultPasswordPolicy(context.Background(), reset.PasswordCheck{Password: "a wholly unrelated phrase", Email: "a@b.c", Host: "b.c", Product: "b.c"})
	wantCode(t, "a@b.c", err, "")
}

// The embedded list: over 100,000 entries, sorted, unpacked once.
func TestCommonListSize(t *testing.T) {
	if n := reset.CommonPasswordCount(); n < 100_000 {
		t.Errorf("the list has %d entries, want at least 100,000", n)
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
	var seen []reset.PasswordCheck
	e := newEnv(t, func(c *reset.Config) {
		c.Product = "Acme Cloud"
		c.BreachedPasswords = b
		c.PasswordPolicy = func(ctx context.Context, pc reset.PasswordCheck) error {
			seen = append(seen, pc)
			return reset.DefaultPasswordPolicy(ctx, pc)
		}
	})
	iss := e.request(t, reset.TrustedRequest{Email: userEmail, SkipSend: true})
	tok := token(iss.Link)
	for pw, code := range map[string]string{
		"password1234567":            reset.PasswordCommon,
		"jborder is my name, right?": reset.PasswordContext,
		"my acme cloud passphrase":   reset.PasswordContext,
		"the example passphrase":     reset.PasswordContext, // a label of the reset host
		"a breached passphrase":      reset.PasswordBreached,
		"short":                      reset.PasswordTooShort,
	} {
		_, err := e.svc.Complete(t.Context(), reset.Completion{Token: tok, Password: pw})
		wantCode(t, pw, err, code)
	}
	want := reset.PasswordCheck{Password: "short", UserID: userID, Email: userEmail, Product: "Acme Cloud", Host: "app.example.com"}
	if i := slices.IndexFunc(seen, func(c reset.PasswordCheck) bool { return c.Password == "short" }); i < 0 || seen[i] != want {
		t.Errorf("the policy saw %+v, want %+v", seen, want)
	}
	b.err = errors.New("range API down")
	if _, err := e.svc.Complete(t.Context(), reset.Completion{Token: tok, Password: "a fine new passphrase"}); !errors.Is(err, b.err) || errors.Is(err, reset.ErrPasswordRejected) {
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
		{func(*reset.Config) {}, reset.MinPassword},
		{func(c *reset.Config) { c.MultiFactor = true }, reset.MinPasswordMultiFactor},
		{func(c *reset.Config) {
			c.PasswordPolicy = func(_ context.Context, pc reset.PasswordCheck) error {
				if len(pc.Password) < 20 {
					return &reset.PasswordError{Reason: "too short"}
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

// BenchmarkDefaultPasswordPolicy measures one check of a password that
// passes every rule (the slowest path) and reports the p99 of single
// checks. The list is unpacked before the timer starts.
func BenchmarkDefaultPasswordPolicy(b *testing.B) {
	pws := []string{"correct horse battery staple", "Password1234567!", "zebra kettle 93 lamp", strings.Repeat("ключ", 16)}
	_ = check(pws[0], false)
	var times []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		_ = check(pws[i%len(pws)], false)
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)*99/100].Nanoseconds()), "p99-ns/check")
}

// A custom policy that adds a rule and keeps the default screening.
func ExampleDefaultPasswordPolicy() {
	policy := func(ctx context.Context, c reset.PasswordCheck) error {
		if strings.Contains(strings.ToLower(c.Password), "winter") {
			return &reset.PasswordError{Reason: "must not mention the season"}
		}
		return reset.DefaultPasswordPolicy(ctx, c) // keep the default screening
	}
	for _, pw := range []string{"password1234567", "jane likes long walks", "a long winter evening", "a quiet harbour at dawn"} {
		err := policy(context.Background(), reset.PasswordCheck{Password: pw, Email: "jane@example.org", Product: "Acme"})
		fmt.Printf("%q: %v\n", pw, err)
	}
	// Output:
	// "password1234567": reset: password rejected: is too common: it is on a list of passwords that attackers try first
	// "jane likes long walks": reset: password rejected: must not contain your email address, your name in it, or the name of this service or site
	// "a long winter evening": reset: password rejected: must not mention the season
	// "a quiet harbour at dawn": <nil>
}
