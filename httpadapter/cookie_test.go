package httpadapter

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var bindingField = regexp.MustCompile(`<input type="hidden" name="binding" value="([^"]+)">`)

// bindingOf returns the binding field of a rendered form.
func bindingOf(t *testing.T, body string) string {
	t.Helper()
	m := bindingField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the form has no binding field:\n%s", body)
	}
	return m[1]
}

// linkRequest is the GET of a reset link at target (a path, or an
// absolute URL: https gives the request a TLS state, as a TLS listener
// does), with the headers hdr.
func linkRequest(target string, hdr ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			r.Host = hdr[i+1]
			continue
		}
		r.Header.Set(hdr[i], hdr[i+1])
	}
	return r
}

// TestTokenCookieAttributes checks the cookie a link's GET sets: over
// https (a TLS connection, a proxy that says so, or a browser's fetch
// metadata for a host that is not loopback) a __Host- cookie,
// Secure, Path=/, no Domain; over plain http the plain name at the
// page's own path, for development.
func TestTokenCookieAttributes(t *testing.T) {
	e := newEnv(t)
	tok := e.issue()
	e.srv = http.StripPrefix("/auth", e.h)
	q := "/auth" + PagePath + "?token=" + tok
	for _, c := range []struct {
		name   string
		r      *http.Request
		secure bool
	}{
		{"plain http", linkRequest(q), false},
		{"TLS", linkRequest("https://app.example.com" + q), true},
		{"X-Forwarded-Proto", linkRequest(q, "X-Forwarded-Proto", "https"), true},
		{"X-Forwarded-Proto list", linkRequest(q, "X-Forwarded-Proto", "https, http"), true},
		{"Forwarded", linkRequest(q, "Forwarded", `for=192.0.2.1;proto="HTTPS";host=app.example.com`), true},
		{"X-Forwarded-Proto http", linkRequest(q, "X-Forwarded-Proto", "http"), false},
		{"Forwarded http", linkRequest(q, "Forwarded", "for=192.0.2.1;proto=http"), false},
		// Browsers send fetch metadata to https and loopback origins only.
		{"Sec-Fetch-Site", linkRequest(q, "Sec-Fetch-Site", "cross-site", "Host", "app.example.com"), true},
		{"Sec-Fetch-Site, localhost", linkRequest(q, "Sec-Fetch-Site", "cross-site", "Host", "localhost:8080"), false},
		{"Sec-Fetch-Site, .localhost", linkRequest(q, "Sec-Fetch-Site", "none", "Host", "app.localhost:8080"), false},
		{"Sec-Fetch-Site, 127.0.0.1", linkRequest(q, "Sec-Fetch-Site", "none", "Host", "127.0.0.1:8080"), false},
		{"Sec-Fetch-Site, ::1", linkRequest(q, "Sec-Fetch-Site", "none", "Host", "[::1]:8080"), false},
	} {
		w := e.do(public, c.r)
		raw := w.Header().Values("Set-Cookie")
		cs := w.Result().Cookies()
		if w.Code != http.StatusSeeOther || len(cs) != 1 || len(raw) != 1 {
			t.Errorf("%s: %d, cookies %q", c.name, w.Code, raw)
			continue
		}
		ck := cs[0]
		if ck.Value != tok || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Domain != "" ||
			strings.Contains(strings.ToLower(raw[0]), "domain=") || ck.MaxAge <= 0 || ck.MaxAge > int(time.Hour.Seconds()) {
			t.Errorf("%s: cookie %q", c.name, raw[0])
		}
		want := http.Cookie{Name: "passreset_token", Path: "/auth" + PagePath}
		if c.secure {
			want = http.Cookie{Name: "__Host-passreset_token", Path: "/", Secure: true}
		}
		if ck.Name != want.Name || ck.Path != want.Path || ck.Secure != want.Secure {
			t.Errorf("%s: cookie %q, want name %s, path %s, Secure %v", c.name, raw[0], want.Name, want.Path, want.Secure)
		}
	}
}

// TestPageIgnoresForeignCookieOverHTTPS sends, over https, the plain
// cookie name that another host can set: it never decides the account.
func TestPageIgnoresForeignCookieOverHTTPS(t *testing.T) {
	e := newEnv(t)
	own, theirs := e.issue(), e.issueFor(otherEmail)
	get := func(cookies ...*http.Cookie) string {
		r := httptest.NewRequest(http.MethodGet, "https://app.example.com"+PagePath, nil)
		for _, c := range cookies {
			r.AddCookie(c)
		}
		return e.do(public, r).Body.String()
	}
	body := get(&http.Cookie{Name: "passreset_token", Value: theirs}, &http.Cookie{Name: "__Host-passreset_token", Value: own})
	if !strings.Contains(body, knownEmail) || strings.Contains(body, otherEmail) {
		t.Errorf("own __Host- cookie and a foreign plain one: not the own account\n%s", body)
	}
	body = get(&http.Cookie{Name: "passreset_token", Value: theirs})
	if strings.Contains(body, otherEmail) || !strings.Contains(body, "This link does not work") {
		t.Errorf("a foreign plain cookie alone decides the account\n%s", body)
	}
}

// TestPageSeveralCookies sends the page two token cookies, as a browser
// does when another host set one for a parent domain: the page uses
// neither, explains, deletes what it can, and changes nothing.
func TestPageSeveralCookies(t *testing.T) {
	e := newEnv(t)
	e.srv = http.StripPrefix("/auth", e.h)
	own, theirs := e.issue(), e.issueFor(otherEmail)
	for _, c := range []struct {
		name, scheme, cookie string
		post                 bool
	}{
		{"http GET", "http", "passreset_token", false},
		{"http POST", "http", "passreset_token", true},
		{"https GET", "https", "__Host-passreset_token", false},
		{"https POST", "https", "__Host-passreset_token", true},
	} {
		target := c.scheme + "://app.example.test:8443/auth" + PagePath
		r := httptest.NewRequest(http.MethodGet, target, nil)
		if c.post {
			v := url.Values{"binding": {"x"}, "newPassword": {"a new long password"}, "confirmPassword": {"a new long password"}}
			r = httptest.NewRequest(http.MethodPost, target, strings.NewReader(v.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if c.scheme == "https" {
				r.Header.Set("Sec-Fetch-Site", "same-origin")
			} else { // over plain http a browser sends no fetch metadata
				r.Header.Set("Origin", "http://app.example.test:8443")
			}
		}
		r.Header.Add("Cookie", c.cookie+"="+theirs+"; "+c.cookie+"="+own)
		w := e.do(public, r)
		body := w.Body.String()
		if w.Code != http.StatusBadRequest || !strings.Contains(body, "cannot tell which link you opened") ||
			strings.Contains(body, knownEmail) || strings.Contains(body, otherEmail) {
			t.Errorf("%s: %d\n%s", c.name, w.Code, body)
		}
		checkPageHeaders(t, w)
		type del struct{ domain, path string }
		var got []del
		for _, ck := range w.Result().Cookies() {
			if ck.Name != c.cookie || ck.MaxAge >= 0 || ck.Secure != (c.scheme == "https") {
				t.Errorf("%s: cookie %v", c.name, ck)
			}
			got = append(got, del{ck.Domain, ck.Path})
		}
		want := []del{{"", "/auth/reset"}}
		if c.scheme == "https" {
			want = []del{{"", "/"}}
		}
		for _, d := range []string{"app.example.test", "example.test"} {
			for _, p := range []string{"/", "/auth", "/auth/", "/auth/reset"} {
				want = append(want, del{d, p})
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: deletes %v, want %v", c.name, got, want)
		}
	}
	if e.users.Password("u1") != oldPassword || e.users.Password("u2") != otherOld {
		t.Fatal("a password changed")
	}
	for _, tok := range []string{own, theirs} {
		if _, err := e.svc.Inspect(context.Background(), tok); err != nil {
			t.Fatalf("a token was used: %v", err)
		}
	}
	// An IP address has no parent domain: only the own cookie is deleted.
	r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080/auth"+PagePath, nil)
	r.Header.Add("Cookie", "passreset_token="+own+"; passreset_token="+theirs)
	if cs := e.do(public, r).Result().Cookies(); len(cs) != 1 || cs[0].Path != "/auth/reset" || cs[0].Domain != "" {
		t.Errorf("IP host: deletes %v", cs)
	}
}

// TestPageFormBinding checks that a form only sets the password of the
// link it was rendered for: when the cookie holds another link's token by
// the time the form is sent, the page says the form's link was replaced,
// changes nothing and uses no token.
func TestPageFormBinding(t *testing.T) {
	e := newEnv(t)
	tok1, tok2 := e.issue(), e.issueFor(otherEmail)
	page1, c := e.openLink(tok1)
	page2, _ := e.openLink(tok2)
	b1, b2 := bindingOf(t, page1.Body.String()), bindingOf(t, page2.Body.String())
	if b1 == b2 || strings.Contains(page1.Body.String(), tok1) {
		t.Fatalf("bindings %q %q; the page holds the token: %v", b1, b2, strings.Contains(page1.Body.String(), tok1))
	}
	post := func(binding *string, cookie string) *httptest.ResponseRecorder {
		v := url.Values{"newPassword": {"a new long password"}, "confirmPassword": {"a new long password"}}
		if binding != nil {
			v.Set("binding", *binding)
		}
		r := httptest.NewRequest(http.MethodPost, PagePath, strings.NewReader(v.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", "http://example.com") // plain http: no fetch metadata
		r.AddCookie(&http.Cookie{Name: c.Name, Value: cookie})
		return e.do(public, r)
	}
	junk, empty, cut := "junk", "", b1[:len(b1)-1]
	for name, b := range map[string]*string{"the first form": &b1, "junk": &junk, "empty": &empty, "cut": &cut} {
		w := post(b, tok2) // the second link's cookie replaced the first's
		body := w.Body.String()
		if w.Code != http.StatusConflict || !strings.Contains(body, "This form belongs to a link that was replaced") ||
			strings.Contains(body, knownEmail) || strings.Contains(body, otherEmail) {
			t.Errorf("%s: %d\n%s", name, w.Code, body)
		}
		checkPageHeaders(t, w)
		if cs := w.Result().Cookies(); len(cs) != 0 {
			t.Errorf("%s: the replaced page touches the cookie of the other link: %v", name, cs)
		}
	}
	// A form without the field (an old or a replacement page that lacks
	// it) is refused.
	if w := post(nil, tok2); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "could not be read") {
		t.Errorf("no binding: %d\n%s", w.Code, w.Body)
	}
	if e.users.Password("u1") != oldPassword || e.users.Password("u2") != otherOld {
		t.Fatal("a password changed")
	}
	for _, tok := range []string{tok1, tok2} {
		if _, err := e.svc.Inspect(context.Background(), tok); err != nil {
			t.Fatalf("a token was used: %v", err)
		}
	}
	// The second form with its own cookie works.
	w := post(&b2, tok2)
	if w.Code != http.StatusOK || e.users.Password("u2") != "a new long password" {
		t.Fatalf("the second form: %d\n%s", w.Code, w.Body)
	}
	// A refused password shows the form again, still bound to its link.
	v := url.Values{"binding": {b1}, "newPassword": {"a new long password"}, "confirmPassword": {"another password"}}
	r := httptest.NewRequest(http.MethodPost, PagePath, strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", "http://example.com")
	r.AddCookie(&http.Cookie{Name: c.Name, Value: tok1})
	if w := e.do(public, r); w.Code != http.StatusBadRequest || bindingOf(t, w.Body.String()) != b1 {
		t.Errorf("mismatched passwords: %d, binding changed", w.Code)
	}
	if w := post(&b1, tok1); w.Code != http.StatusOK || e.users.Password("u1") != "a new long password" {
		t.Fatalf("the first form with its own cookie: %d\n%s", w.Code, w.Body)
	}
}

// TestPageFormBindingTLS: the binding is the same over https, where the
// cookie is the __Host- one.
func TestPageFormBindingTLS(t *testing.T) {
	e := newEnv(t)
	tok1, tok2 := e.issue(), e.issueFor(otherEmail)
	get := httptest.NewRequest(http.MethodGet, "https://app.example.com"+PagePath, nil)
	get.AddCookie(&http.Cookie{Name: "__Host-passreset_token", Value: tok1})
	b1 := bindingOf(t, e.do(public, get).Body.String())
	v := url.Values{"binding": {b1}, "newPassword": {"a new long password"}, "confirmPassword": {"a new long password"}}
	r := httptest.NewRequest(http.MethodPost, "https://app.example.com"+PagePath, strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.AddCookie(&http.Cookie{Name: "__Host-passreset_token", Value: tok2})
	if w := e.do(public, r); w.Code != http.StatusConflict || e.users.Password("u2") != otherOld {
		t.Errorf("https, replaced cookie: %d, u2 %q", w.Code, e.users.Password("u2"))
	}
}

// FuzzCookiePaths checks that every path the page deletes tossed cookies
// at is one a browser sends with a request for the page (RFC 6265,
// 5.1.4), that "/" and the page's own path are among them, and that none
// repeats.
func FuzzCookiePaths(f *testing.F) {
	for _, p := range []string{"/", "/reset", "/auth/reset", "/a/b/c/reset", "/auth//reset", "/auth/"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !strings.HasPrefix(p, "/") {
			return
		}
		ps := cookiePaths(p)
		if ps[0] != "/" || ps[len(ps)-1] != p {
			t.Fatalf("%q: %q lacks / or the path", p, ps)
		}
		seen := map[string]bool{}
		for _, c := range ps {
			if seen[c] {
				t.Fatalf("%q: %q repeats %q", p, ps, c)
			}
			seen[c] = true
			matches := c == p || strings.HasPrefix(p, c) && (strings.HasSuffix(c, "/") || p[len(c)] == '/')
			if !matches {
				t.Fatalf("%q: %q does not path-match", p, c)
			}
		}
	})
}
