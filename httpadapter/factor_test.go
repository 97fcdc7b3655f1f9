package httpadapter

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/passreset/passreset/reset"
)

// withFactor gives u1 a second factor whose code is code, and makes the
// Service end sessions through the test users.
func withFactor(code string) envOption {
	return func(c *reset.Config, _ *Options) {
		u := c.Users.(interface {
			SetSecondFactor(id, code string)
			EndSessions(ctx context.Context, id string) error
			Factor() reset.SecondFactor
		})
		u.SetSecondFactor("u1", code)
		c.Users = struct {
			reset.Users
			reset.SecondFactor
		}{c.Users, u.Factor()}
		c.KeepSessions, c.EndSessions = false, u.EndSessions
	}
}

func TestAPISecondFactor(t *testing.T) {
	e := newEnv(t, withFactor("246810"))
	tok := e.issue()
	w := e.post(public, CheckPath, `{"confirmationToken":"`+tok+`"}`)
	if res := decodeJSON[CheckResult](t, w); w.Code != 200 || !res.SecondFactorRequired || !res.EndsSessions {
		t.Fatalf("check: %d %s, want secondFactorRequired and endsSessions", w.Code, w.Body)
	}
	body := func(extra string) string {
		return `{"confirmationToken":"` + tok + `","newPassword":"a new password 1"` + extra + `}`
	}
	// The body of a client that knows nothing of second factors.
	wantError(t, e.post(public, PasswordResetPath, body("")), 400, CodeSecondFactorRequired, "secondFactorCode")
	for i := 1; i < reset.MaxSecondFactorFailures; i++ {
		wantError(t, e.post(public, PasswordResetPath, body(`,"secondFactorCode":"000000"`)), 400, CodeSecondFactorInvalid, "secondFactorCode")
	}
	if e.users.Password("u1") != oldPassword || e.users.Ended("u1") != 0 {
		t.Fatal("a refused completion changed something")
	}
	wantError(t, e.post(public, PasswordResetPath, body(`,"secondFactorCode":"000000"`)), 400, CodeInvalidToken, "confirmationToken")
	wantError(t, e.post(public, PasswordResetPath, body(`,"secondFactorCode":"246810"`)), 400, CodeInvalidToken, "confirmationToken")

	tok = e.issue()
	if w := e.post(public, PasswordResetPath, body(`,"secondFactorCode":"246810"`)); w.Code != 200 {
		t.Fatalf("with the code: %d %s", w.Code, w.Body)
	}
	if e.users.Password("u1") != "a new password 1" || e.users.Ended("u1") != 1 {
		t.Fatalf("password %q, sessions ended %d times; want changed and 1", e.users.Password("u1"), e.users.Ended("u1"))
	}
	tok = e.issue()
	if w := e.post(public, PasswordResetPath, body(`,"secondFactorCode":"246810","endSessions":"disabled"`)); w.Code != 200 {
		t.Fatalf("endSessions disabled: %d %s", w.Code, w.Body)
	}
	if e.users.Ended("u1") != 1 {
		t.Fatalf(`endSessions "disabled" ended sessions`)
	}
	wantError(t, e.post(public, PasswordResetPath, body(`,"endSessions":"yes"`)), 400, CodeInvalidData, "endSessions")
}

// An account without a second factor completes with the body it always
// sent; the check says no code is needed.
func TestAPINoSecondFactor(t *testing.T) {
	e := newEnv(t)
	tok := e.issue()
	w := e.post(public, CheckPath, `{"confirmationToken":"`+tok+`"}`)
	if res := decodeJSON[CheckResult](t, w); w.Code != 200 || res.SecondFactorRequired || res.EndsSessions {
		t.Fatalf("check: %d %s", w.Code, w.Body)
	}
	if w := e.post(public, PasswordResetPath, `{"confirmationToken":"`+tok+`","newPassword":"a new password 1"}`); w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestPageSecondFactorAndSessions(t *testing.T) {
	e := newEnv(t, withFactor("246810"))
	tok := e.issue()
	w, _ := e.openLink(tok)
	body := w.Body.String()
	for _, want := range []string{
		`<label for="secondFactorCode">`,
		`id="secondFactorCode" name="secondFactorCode" type="text" inputmode="numeric" autocomplete="one-time-code" required`,
		`<input type="hidden" name="sessions" value="choice">`,
		`id="endSessions" name="endSessions" type="checkbox" value="enabled" checked><label for="endSessions">Sign out of all devices</label>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s\n%s", want, body)
		}
	}
	post := func(v url.Values) string {
		t.Helper()
		v.Set("sessions", "choice")
		w := e.postForm(PagePath, v)
		return fmt.Sprint(w.Code, " ", w.Body)
	}
	v := form(tok, "a new password 1", "a new password 1")
	if got := post(v); !strings.HasPrefix(got, "400") || !strings.Contains(got, "Type the code from your authenticator app.") ||
		!strings.Contains(got, `aria-describedby="secondFactorCode-hint form-error" aria-invalid="true"`) {
		t.Fatalf("without a code: %s", got)
	}
	v.Set("secondFactorCode", "111111") // and the box unchecked: absent
	if got := post(v); !strings.HasPrefix(got, "400") || !strings.Contains(got, "This code is not valid.") ||
		!strings.Contains(got, `type="checkbox" value="enabled"><label`) {
		t.Fatalf("wrong code: %s", got)
	}
	v.Set("secondFactorCode", "246810")
	if got := post(v); !strings.HasPrefix(got, "200") {
		t.Fatalf("right code: %s", got)
	}
	if e.users.Password("u1") != "a new password 1" || e.users.Ended("u1") != 0 {
		t.Fatalf("password %q, sessions ended %d times; want changed and kept (box unchecked)", e.users.Password("u1"), e.users.Ended("u1"))
	}
	tok = e.issue()
	v = form(tok, "a new password 2", "a new password 2")
	v.Set("secondFactorCode", "246810")
	v.Set("endSessions", "enabled")
	if got := post(v); !strings.HasPrefix(got, "200") || e.users.Ended("u1") != 1 {
		t.Fatalf("box checked: %s; sessions ended %d times, want 1", got, e.users.Ended("u1"))
	}
}
