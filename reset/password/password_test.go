package password_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/reset/password"
)

// userID is the test account's ID.
const userID = "u1"

// check runs the default policy for the test account.
func check(pw string, multiFactor bool) error {
	return password.DefaultPolicy(context.Background(), password.Check{
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
	pe, ok := errors.AsType[*password.Error](err)
	if !ok || pe.Code != code || !errors.Is(err, password.ErrRejected) || pe.Reason == "" {
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
		{"zebra kettle 9", false, password.TooShort},                 // 14
		{"zebra kettle 93", false, ""},                               // 15
		{"zebra k9", true, ""},                                       // 8 with a second factor
		{"zebra 9", true, password.TooShort},                         // 7
		{strings.Repeat("ключ", 16), false, ""},                      // 64 Cyrillic characters, 128 bytes
		{strings.Repeat("密码很长", 16), false, ""},                      // 64 Chinese characters, 192 bytes
		{strings.Repeat("é", 14), false, password.TooShort},          // 14 precomposed
		{strings.Repeat("e\u0301", 8), false, ""},                    // 8 letters with a combining accent: 16 code points
		{strings.Repeat("zq7", 341) + "zq", false, password.TooLong}, // 1025
		{strings.Repeat("zq7", 341) + "z", false, ""},                // 1024
		{"zebra kettle \xff93", false, password.InvalidText},
		{"zebra kettle \x0093", false, password.InvalidText},
	} {
		err := check(tc.pw, tc.multiFactor)
		wantCode(t, tc.pw, err, tc.code)
		if pe, ok := errors.AsType[*password.Error](err); ok && pe.Code == password.TooShort {
			if want := map[bool]int{false: password.Min, true: password.MinMultiFactor}[tc.multiFactor]; pe.Limit != want {
				t.Errorf("%q: Limit %d, want %d", tc.pw, pe.Limit, want)
			}
		}
	}
}

// ASVS 6.2.4 and 6.2.11: common passwords and context words are refused.
func TestDefaultPolicyScreens(t *testing.T) {
	for pw, code := range map[string]string{
		"password1234567":              password.Common,  // "password" plus digits
		"Password1234567!":             password.Common,  // case and trailing punctuation do not help
		"123456789012345":              "",               // not on the list (all digits are not a rule)
		"qwertyuiopasdfgh":             password.Common,  // on the list as it is
		"iloveyou":                     password.Common,  // with a second factor, 8 is long enough but it is common
		"my name is JANE.DOE ok":       password.Context, // the email's local part
		"doe doe doe doe doe!":         "",               // "doe" is shorter than 4: not a context word
		"jane likes long walks":        password.Context, // a part of the local part
		"love my acme cloud a lot":     password.Context, // the product name
		"acmecloud rocks forever":      password.Context, // a label of the host
		"forever shopping spree":       password.Context, // "shop", a part of the local part
		"correct horse battery staple": "",
	} {
		wantCode(t, pw, check(pw, true), code)
	}
	// A tiny address must not ban every password.
	err := password.DefaultPolicy(context.Background(), password.Check{Password: "a wholly unrelated phrase", Email: "a@b.c", Host: "b.c", Product: "b.c"})
	wantCode(t, "a@b.c", err, "")
}

// The embedded list: over 100,000 entries, sorted, unpacked once.
func TestCommonListSize(t *testing.T) {
	if n := password.CommonCount(); n < 100_000 {
		t.Errorf("the list has %d entries, want at least 100,000", n)
	}
}

// BenchmarkDefaultPolicy measures one check of a password that
// passes every rule (the slowest path) and reports the p99 of single
// checks. The list is unpacked before the timer starts.
func BenchmarkDefaultPolicy(b *testing.B) {
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
func ExampleDefaultPolicy() {
	policy := func(ctx context.Context, c password.Check) error {
		if strings.Contains(strings.ToLower(c.Password), "winter") {
			return &password.Error{Reason: "must not mention the season"}
		}
		return password.DefaultPolicy(ctx, c) // keep the default screening
	}
	for _, pw := range []string{"password1234567", "jane likes long walks", "a long winter evening", "a quiet harbour at dawn"} {
		err := policy(context.Background(), password.Check{Password: pw, Email: "jane@example.org", Product: "Acme"})
		fmt.Printf("%q: %v\n", pw, err)
	}
	// Output:
	// "password1234567": reset: password rejected: is too common: it is on a list of passwords that attackers try first
	// "jane likes long walks": reset: password rejected: must not contain your email address, your name in it, or the name of this service or site
	// "a long winter evening": reset: password rejected: must not mention the season
	// "a quiet harbour at dawn": <nil>
}
