package httpadapter

import (
	"context"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
)

func (e *env) getPage(path string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.do(public, httptest.NewRequest(http.MethodGet, path, nil))
}

// postForm posts a form as a same-origin browser would.
func (e *env) postForm(path string, v url.Values, hdr ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("Origin", "http://example.com") // httptest's Host
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	return e.do(public, r)
}

// openLink opens a reset link as a browser does: the link's GET answers
// 303 to the clean URL with the token in a cookie, and the clean URL
// shows the page. It returns the page and the cookie.
func (e *env) openLink(tok string) (*httptest.ResponseRecorder, *http.Cookie) {
	e.t.Helper()
	w := e.getPage(PagePath + "?token=" + tok)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "reset" {
		e.t.Fatalf("link GET: %d Location %q", w.Code, w.Header().Get("Location"))
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 || cs[0].Name != plainCookieName {
		e.t.Fatalf("link GET cookies %v", cs)
	}
	r := httptest.NewRequest(http.MethodGet, PagePath, nil)
	r.AddCookie(&http.Cookie{Name: cs[0].Name, Value: cs[0].Value})
	return e.do(public, r), cs[0]
}

// linkPage is the page a reset link ends on.
func (e *env) linkPage(tok string) *httptest.ResponseRecorder {
	e.t.Helper()
	w, _ := e.openLink(tok)
	return w
}

func form(token, pw, confirm string) url.Values {
	return url.Values{"token": {token}, "newPassword": {pw}, "confirmPassword": {confirm}}
}

var nonceAttr = regexp.MustCompile(`<style nonce="([^"]+)">`)

// checkPageHeaders checks the security headers of a hosted page and that
// its CSP nonce is the style's.
func checkPageHeaders(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	h := w.Header()
	want := map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          "no-store",
		"Referrer-Policy":        "same-origin",
		"X-Frame-Options":        "DENY",
		"X-Content-Type-Options": "nosniff",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	csp := h.Get("Content-Security-Policy")
	for _, part := range []string{"default-src 'none'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, part) {
			t.Errorf("CSP %q lacks %q", csp, part)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q allows too much", csp)
	}
	body := w.Body.String()
	m := nonceAttr.FindStringSubmatch(body)
	if m == nil || !strings.Contains(csp, "style-src 'nonce-"+m[1]+"'") {
		t.Errorf("style nonce %v not in CSP %q", m, csp)
	}
	if strings.Contains(body, "<script") || strings.Contains(body, " style=") {
		t.Error("page has a script or an inline style attribute")
	}
	if !strings.Contains(body, `<meta name="referrer" content="same-origin">`) && strings.Contains(body, "<head>") {
		t.Error("page lacks the referrer meta tag")
	}
	for _, c := range w.Result().Cookies() {
		if c.MaxAge >= 0 {
			t.Errorf("page sets cookie %v", c)
		}
	}
}

func TestPageForm(t *testing.T) {
	e := newEnv(t)
	tok := e.issue()
	for range 2 { // a mail scanner, then the person
		w, _ := e.openLink(tok)
		if w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		checkPageHeaders(t, w)
		body := w.Body.String()
		for _, want := range []string{
			`<form method="post" action="reset">`,
			`<label for="newPassword">`, `<label for="confirmPassword">`,
			`id="newPassword" name="newPassword" type="password" autocomplete="new-password" required minlength="15"`,
			`id="confirmPassword" name="confirmPassword" type="password" autocomplete="new-password"`,
			`autocomplete="username" value="jborder@anywhere.com"`,
			`<html lang="en" dir="ltr">`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %s\n%s", want, body)
			}
		}
		if strings.Contains(body, tok) {
			t.Error("the page holds the token")
		}
	}
	if _, err := e.svc.Inspect(context.Background(), tok); err != nil {
		t.Fatalf("GET consumed the token: %v", err)
	}
	if w := e.do(public, httptest.NewRequest(http.MethodHead, PagePath+"?token="+tok, nil)); w.Code != http.StatusSeeOther {
		t.Errorf("HEAD: %d", w.Code)
	}
}

func TestPageMismatchedAndWeak(t *testing.T) {
	e := newEnv(t)
	tok := e.issue()
	for _, c := range []struct{ pw, confirm, reason string }{
		{"a new long password", "a new long passwort", "not the same"},
		{"short", "short", "at least 15 characters"},
		{"", "", "Type a new password"},
	} {
		w := e.postForm(PagePath, form(tok, c.pw, c.confirm))
		if w.Code != 400 {
			t.Fatalf("%q: %d %s", c.pw, w.Code, w.Body)
		}
		checkPageHeaders(t, w)
		body := w.Body.String()
		if !strings.Contains(body, c.reason) || !strings.Contains(body, `role="alert"`) {
			t.Errorf("%q: no reason %q in\n%s", c.pw, c.reason, body)
		}
		if strings.Contains(body, c.pw) && c.pw != "" {
			t.Errorf("%q: the password was echoed back", c.pw)
		}
	}
	if e.users.Password("u1") != oldPassword {
		t.Fatal("password changed")
	}
	if _, err := e.svc.Inspect(context.Background(), tok); err != nil {
		t.Fatalf("a refused form consumed the token: %v", err)
	}
}

func TestPageSuccessThenUsed(t *testing.T) {
	e := newEnv(t, func(_ *reset.Config, o *Options) { o.SignInURL = "https://app.example.com/login" })
	tok := e.issue()
	w := e.postForm(PagePath, form(tok, "correct horse battery", "correct horse battery"))
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	checkPageHeaders(t, w)
	body := w.Body.String()
	if !strings.Contains(body, "Your password has been changed") || !strings.Contains(body, "not been signed in") ||
		!strings.Contains(body, `href="https://app.example.com/login"`) {
		t.Errorf("success page:\n%s", body)
	}
	if strings.Contains(body, tok) {
		t.Error("success page repeats the token")
	}
	if got := e.users.Password("u1"); got != "correct horse battery" {
		t.Fatalf("password %q", got)
	}
	// The used link is refused, by GET and by POST.
	for _, w := range []*httptest.ResponseRecorder{
		e.linkPage(tok),
		e.postForm(PagePath, form(tok, "another long password", "another long password")),
	} {
		if w.Code != 400 || !strings.Contains(w.Body.String(), "This link does not work") {
			t.Errorf("used link: %d\n%s", w.Code, w.Body)
		}
		if !strings.Contains(w.Body.String(), `<form method="post" action="forgot">`) {
			t.Error("the invalid page does not offer a new link")
		}
		checkPageHeaders(t, w)
	}
	if got := e.users.Password("u1"); got != "correct horse battery" {
		t.Fatalf("password %q after reuse", got)
	}
}

func TestPageInvalidAndExpired(t *testing.T) {
	e := newEnv(t, func(_ *reset.Config, o *Options) { o.ForgotURL = "https://app.example.com/forgot" })
	for _, q := range []string{"", "none", "abc", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", strings.Repeat("A", 1000)} {
		var w *httptest.ResponseRecorder
		switch q {
		case "none":
			w = e.getPage(PagePath)
		default:
			w = e.linkPage(q)
		}
		if w.Code != 400 || !strings.Contains(w.Body.String(), "This link does not work") {
			t.Errorf("%q: %d\n%s", q, w.Code, w.Body)
		}
		if !strings.Contains(w.Body.String(), `href="https://app.example.com/forgot"`) {
			t.Errorf("%q: no link to ForgotURL", q)
		}
	}
	tok := e.issue()
	e.clock.Advance(time.Hour)
	w := e.linkPage(tok)
	if w.Code != 400 || !strings.Contains(w.Body.String(), "This link has expired") {
		t.Errorf("expired: %d\n%s", w.Code, w.Body)
	}
	w = e.postForm(PagePath, form(tok, "a new long password", "a new long password"))
	if w.Code != 400 || !strings.Contains(w.Body.String(), "This link has expired") {
		t.Errorf("expired POST: %d\n%s", w.Code, w.Body)
	}
}

func TestPageCrossOrigin(t *testing.T) {
	e := newEnv(t)
	tok := e.issue()
	v := form(tok, "a new long password", "a new long password")
	for _, hdr := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
		{"Sec-Fetch-Site", "", "Origin", "https://evil.example"},
	} {
		w := e.postForm(PagePath, v, hdr...)
		if w.Code != 403 {
			t.Errorf("%v: %d", hdr, w.Code)
		}
		checkPageHeaders(t, w)
		w = e.postForm(ForgotPath, url.Values{"email": {knownEmail}}, hdr...)
		if w.Code != 403 {
			t.Errorf("forgot %v: %d", hdr, w.Code)
		}
	}
	e.shutdown()
	if e.users.Password("u1") != oldPassword || e.store.Len() != 1 || len(e.mail.Messages()) != 0 {
		t.Fatal("a cross-origin POST changed something")
	}
	if _, err := e.svc.Inspect(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
}

func TestPageRefusals(t *testing.T) {
	e := newEnv(t, func(_ *reset.Config, o *Options) { o.RateLimit = 2 })
	tok := e.issue()
	r := httptest.NewRequest(http.MethodPost, PagePath, strings.NewReader(`{"token":"x"}`))
	r.Header.Set("Content-Type", "application/json")
	if w := e.do(public, r); w.Code != 415 {
		t.Errorf("JSON to the page: %d", w.Code)
	}
	big := form(tok, strings.Repeat("a", MaxBodyBytes), "x")
	if w := e.postForm(PagePath, big); w.Code != 413 {
		t.Errorf("large form: %d", w.Code)
	}
	w := e.getPage(PagePath + "?token=" + tok)
	if w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Errorf("over the limit: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	checkPageHeaders(t, w)
	if e.users.Password("u1") != oldPassword {
		t.Fatal("password changed")
	}
}

func TestPageBackendFailure(t *testing.T) {
	e := newEnv(t)
	tok := e.issue()
	e.users.SetErr(errFake)
	w := e.postForm(PagePath, form(tok, "a new long password", "a new long password"))
	if w.Code != 503 || strings.Contains(w.Body.String(), errFake.Error()) {
		t.Fatalf("%d\n%s", w.Code, w.Body)
	}
	if id := w.Header().Get("Correlation-Id"); !strings.Contains(w.Body.String(), id) || !strings.Contains(e.logs.String(), id) {
		t.Errorf("correlation id %q not on the page and in the log", id)
	}
	e.users.SetErr(nil)
	// The core puts the token back when Users fails: the link still works.
	w = e.postForm(PagePath, form(tok, "a new long password", "a new long password"))
	if w.Code != 200 {
		t.Fatalf("retry: %d\n%s", w.Code, w.Body)
	}
}

func TestForgotPage(t *testing.T) {
	e := newEnv(t)
	w := e.getPage(ForgotPath)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `<label for="email">`) {
		t.Fatalf("%d\n%s", w.Code, w.Body)
	}
	checkPageHeaders(t, w)
	known := e.postForm(ForgotPath, url.Values{"email": {knownEmail}})
	unknown := e.postForm(ForgotPath, url.Values{"email": {"nobody@anywhere.com"}})
	strip := func(s string) string { return nonceAttr.ReplaceAllString(s, "") }
	if known.Code != 200 || unknown.Code != 200 || strip(known.Body.String()) != strip(unknown.Body.String()) {
		t.Errorf("known %d, unknown %d; bodies differ:\n%s\n%s", known.Code, unknown.Code, known.Body, unknown.Body)
	}
	msgs, err := e.mail.Wait(waitCtx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].To != knownEmail || !strings.Contains(msgs[0].Text, testResetURL+"?token=") {
		t.Errorf("mail %+v", msgs[0])
	}
	bad := e.postForm(ForgotPath, url.Values{"email": {"not an address"}})
	if bad.Code != 400 || !strings.Contains(bad.Body.String(), `role="alert"`) {
		t.Errorf("bad address: %d\n%s", bad.Code, bad.Body)
	}
}

func TestPageTemplates(t *testing.T) {
	custom := template.Must(template.New("x").Parse(`{{define "done"}}<p>Fertig{{with .Product}} bei {{.}}{{end}}.</p>{{end}}`))
	e := newEnv(t, func(c *reset.Config, o *Options) { o.Pages, c.Product = custom, "Acme" })
	tok := e.issue()
	w, _ := e.openLink(tok)
	if !strings.Contains(w.Body.String(), "Choose a new password – Acme") {
		t.Errorf("built-in form page not used:\n%s", w.Body)
	}
	w = e.postForm(PagePath, form(tok, "a new long password", "a new long password"))
	if w.Code != 200 || w.Body.String() != "<p>Fertig bei Acme.</p>" {
		t.Errorf("custom done page: %d %q", w.Code, w.Body)
	}
	if w.Header().Get("Content-Security-Policy") == "" {
		t.Error("custom page without CSP")
	}
}

// TestPageLinkMovesTokenToCookie checks that opening a link leaves the
// token in neither the URL the browser shows nor the page, and that the
// form then works from the cookie alone.
func TestPageLinkMovesTokenToCookie(t *testing.T) {
	e := newEnv(t)
	tok := e.issue()
	w, c := e.openLink(tok)
	if w.Code != 200 || strings.Contains(w.Body.String(), tok) {
		t.Fatalf("clean page: %d, holds the token: %v", w.Code, strings.Contains(w.Body.String(), tok))
	}
	if c.Value != tok || !c.HttpOnly || c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != PagePath ||
		c.MaxAge <= 0 || c.MaxAge > int(time.Hour.Seconds()) {
		t.Errorf("cookie %+v", c)
	}
	// The form posts no token: the cookie carries it, and the form's
	// binding ties it to that token. A browser that sends no
	// Sec-Fetch-Site sends its page's real origin (Referrer-Policy:
	// same-origin), and that is accepted.
	binding := bindingOf(t, w.Body.String())
	post := func(origin string) *httptest.ResponseRecorder {
		v := url.Values{"binding": {binding}, "newPassword": {"a new long password"}, "confirmPassword": {"a new long password"}}
		r := httptest.NewRequest(http.MethodPost, PagePath, strings.NewReader(v.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", origin)
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		return e.do(public, r)
	}
	for _, origin := range []string{"null", "http://evil.example", "http://example.com:8080", "https://example.com.evil.example"} {
		if w := post(origin); w.Code != http.StatusForbidden {
			t.Errorf("Origin %s: %d", origin, w.Code)
		}
	}
	if e.users.Password("u1") != oldPassword {
		t.Fatal("a refused POST changed the password")
	}
	w = post("http://example.com")
	if w.Code != 200 || !strings.Contains(w.Body.String(), "Your password has been changed") {
		t.Fatalf("own origin: %d\n%s", w.Code, w.Body)
	}
	if cs := w.Result().Cookies(); len(cs) != 1 || cs[0].Name != plainCookieName || cs[0].MaxAge >= 0 {
		t.Errorf("the done page does not delete the cookie: %v", cs)
	}
	if e.users.Password("u1") != "a new long password" {
		t.Fatal("password not changed")
	}
}

// TestPageLinkUnderPrefix checks the cookie's path and the redirect when
// the handler is mounted under a prefix.
func TestPageLinkUnderPrefix(t *testing.T) {
	e := newEnv(t)
	e.srv = http.StripPrefix("/auth", e.h)
	tok := e.issue()
	w := e.getPage("/auth" + PagePath + "?token=" + tok)
	cs := w.Result().Cookies()
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "reset" || len(cs) != 1 || cs[0].Path != "/auth/reset" {
		t.Fatalf("%d %q %v", w.Code, w.Header().Get("Location"), cs)
	}
}
