package httpadapter

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
)

// invite issues an invitation for email without mail and returns its token.
func (e *env) invite(email string) string {
	e.t.Helper()
	iss, err := e.svc.RequestTrusted(context.Background(), reset.TrustedRequest{Email: email, Purpose: reset.PurposeInvite, SkipSend: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return resettest.Token(iss.Link)
}

// TestPublicInvitationForbidden: a public password-lost that carries a
// purpose or a lifetime, whatever their values, gets 403 naming the
// field, the same for a known and an unknown address, and changes
// nothing.
func TestPublicInvitationForbidden(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ extra, field string }{
		{`"purpose":"invite"`, "purpose"},
		{`"purpose":"reset"`, "purpose"},
		{`"purpose":"admin"`, "purpose"},
		{`"lifetime":"168h"`, "lifetime"},
		{`"lifetime":"not a duration"`, "lifetime"},
		{`"purpose":"invite","lifetime":"1h"`, "purpose"},
	} {
		var first ErrorResponse
		for i, email := range []string{knownEmail, "nobody@anywhere.com"} {
			w := e.post(public, PasswordLostPath, `{"email":"`+email+`",`+tc.extra+`}`)
			er := wantError(t, w, http.StatusForbidden, CodeForbidden, tc.field)
			er.ID = ""
			if i == 0 {
				first = er
			} else if er.Message != first.Message || er.Details[0] != first.Details[0] {
				t.Errorf("%s: the answer depends on the address: %+v vs %+v", tc.extra, er, first)
			}
		}
	}
	e.shutdown()
	if n, m := e.store.Len(), len(e.mail.Messages()); n != 0 || m != 0 {
		t.Fatalf("%d tokens, %d emails after refused public requests", n, m)
	}
}

// TestTrustedInvitation: a trusted caller asks for a 7-day invitation;
// the check operation tells its purpose and expiry, the hosted page shows
// the invitation's texts (in English and in German), and the password is
// set on day 6.
func TestTrustedInvitation(t *testing.T) {
	e := newEnv(t, func(c *reset.Config, _ *Options) { c.Product = "Acme" })
	w := e.post(trusted, PasswordLostPath, `{"email":"jborder@anywhere.com","purpose":"invite","lifetime":"168h","skipSend":"enabled"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d %s", w.Code, w.Body)
	}
	tok := resettest.Token(decodeJSON[struct{ Link string }](t, w).Link)
	check := decodeJSON[CheckResult](t, e.post(public, CheckPath, `{"confirmationToken":"`+tok+`"}`))
	if check.Purpose != reset.PurposeInvite || !check.ExpiresAt.Equal(e.clock.Now().Add(7*24*time.Hour)) {
		t.Fatalf("check: %+v", check)
	}
	e.clock.Advance(6 * 24 * time.Hour)
	for _, lang := range []string{"en", "de"} {
		texts := PageMessages()[lang]
		r := httpGet(PagePath, lang, tok)
		page := e.do(public, r).Body.String()
		for _, k := range []string{"invitation.title", "invitation.new", "invitation.submit"} {
			if !strings.Contains(page, texts[k]) {
				t.Errorf("%s: the invitation page lacks %s %q:\n%s", lang, k, texts[k], page)
			}
		}
		if strings.Contains(page, texts["form.title"]) || strings.Contains(page, texts["form.footer"]) {
			t.Errorf("%s: the invitation page shows the reset texts:\n%s", lang, page)
		}
	}
	done := e.postForm(PagePath, form(tok, "violet harbour lantern 1", "violet harbour lantern 1")).Body.String()
	if !strings.Contains(done, PageMessages()["en"]["invitation.done"]) || e.users.Password("u1") != "violet harbour lantern 1" {
		t.Fatalf("done page:\n%s\npassword %q", done, e.users.Password("u1"))
	}
}

// httpGet is a GET of path in lang with the token cookie a link sets.
func httpGet(path, lang, tok string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://example.com"+path, nil)
	r.Header.Set("Accept-Language", lang)
	r.AddCookie(&http.Cookie{Name: plainCookieName, Value: tok})
	return r
}

// TestResetCheckSaysReset: a reset link's check tells its purpose too.
func TestResetCheckSaysReset(t *testing.T) {
	e := newEnv(t)
	check := decodeJSON[CheckResult](t, e.post(public, CheckPath, `{"confirmationToken":"`+e.issue()+`"}`))
	if check.Purpose != reset.PurposeReset {
		t.Fatalf("check: %+v", check)
	}
}

// TestTrustedInvitationBadFields: a lifetime longer than the purpose's
// maximum, unparsable or not positive, and an unknown purpose, are each a
// 400 naming the field; nothing is issued or sent.
func TestTrustedInvitationBadFields(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ extra, field string }{
		{`"purpose":"invite","lifetime":"169h"`, "lifetime"},
		{`"lifetime":"2h"`, "lifetime"},
		{`"purpose":"reset","lifetime":"61m"`, "lifetime"},
		{`"purpose":"invite","lifetime":"7 days"`, "lifetime"},
		{`"purpose":"invite","lifetime":"0s"`, "lifetime"},
		{`"purpose":"invite","lifetime":"-1h"`, "lifetime"},
		{`"purpose":"invite","lifetime":"30s"`, "lifetime"},
		{`"purpose":"admin"`, "purpose"},
		{`"purpose":"invite","lifetime":604800}`, "lifetime"},
	} {
		body := `{"email":"jborder@anywhere.com",` + tc.extra
		if !strings.HasSuffix(body, "}") {
			body += "}"
		}
		wantError(t, e.post(trusted, PasswordLostPath, body), http.StatusBadRequest, CodeInvalidData, tc.field)
	}
	e.shutdown()
	if n, m := e.store.Len(), len(e.mail.Messages()); n != 0 || m != 0 {
		t.Fatalf("%d tokens, %d emails after refused requests", n, m)
	}
}

// TestBrowserInvitation: an invitation's link opens the form with the
// invitation's texts and sets the password, each state axe-clean, in
// three languages.
func TestBrowserInvitation(t *testing.T) {
	for _, lang := range []string{"en", "de", "ar"} {
		t.Run(lang, func(t *testing.T) {
			b := newBrowserEnv(t, lang)
			texts := PageMessages()[lang]
			b.open(b.invite(knownEmail))
			if got := b.text("h1"); got != texts["invitation.title"] {
				t.Errorf("title %q, want %q", got, texts["invitation.title"])
			}
			if got := b.text("label[for=newPassword]"); got != texts["invitation.new"] {
				t.Errorf("label %q, want %q", got, texts["invitation.new"])
			}
			var title string
			b.run(chromedp.Title(&title))
			if !strings.HasPrefix(title, texts["invitation.title"]) {
				t.Errorf("document title %q", title)
			}
			b.check("invitation form", lang)

			b.submit("violet harbour lantern 1", "violet harbour lantern 2", "#form-error")
			if got := b.text("h1"); got != texts["invitation.title"] {
				t.Errorf("after a mismatch, title %q", got)
			}
			b.check("invitation mismatch", lang)

			b.submit("violet harbour lantern 1", "violet harbour lantern 1", "h1")
			if got := b.text("h1"); got != texts["invitation.done"] {
				t.Errorf("done: %q, want %q", got, texts["invitation.done"])
			}
			b.check("invitation done", lang)
			if got := b.users.Password("u1"); got != "violet harbour lantern 1" {
				t.Fatalf("password %q", got)
			}
		})
	}
}
