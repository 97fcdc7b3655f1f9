package httpadapter

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/passreset/passreset/reset"
)

// The token cookie carries a reset link's token from the link's URL to the
// clean URL of the hosted page. Over https it is a __Host- cookie: a
// browser takes a cookie of that name only from this very host, over
// https, with Path=/ and no Domain, so that no other host (a sibling
// subdomain, a plain-http page on the parent domain) can set, shadow or
// replace it. The prefix demands Path=/, so the cookie goes with every
// request to the host until the link is used or found not to work (at most
// the token's lifetime); it is HttpOnly and SameSite=Lax. Over plain http
// (development) no prefix is possible: the plain name is used, scoped to the
// page's own path.
const (
	hostCookieName  = "__Host-passreset_token"
	plainCookieName = "passreset_token"
)

// tokenCookie is the token cookie's name, path and Secure attribute for
// one request.
type tokenCookie struct {
	name, path string
	secure     bool
}

// cookieFor returns the token cookie that the page uses for r.
func cookieFor(r *http.Request) tokenCookie {
	if secure(r) {
		return tokenCookie{name: hostCookieName, path: "/", secure: true}
	}
	return tokenCookie{name: plainCookieName, path: pagePath(r)}
}

// set sends the cookie with value, living maxAge seconds (negative:
// deleted), for domain ("" for this host only) and path.
func (c tokenCookie) set(w http.ResponseWriter, value string, maxAge int, domain, path string) {
	http.SetCookie(w, &http.Cookie{
		Name:     c.name,
		Value:    value,
		Path:     path,
		Domain:   domain,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   c.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

// stashToken moves the token of a reset link out of the address bar: it
// keeps the token in a short-lived cookie and sends the browser to the
// page's URL without the query (303), so that the token is in neither
// the address bar, the history, nor a bookmark. The page then works from
// the cookie, without JavaScript.
//
// The cookie is SameSite=Lax: a link opened from a webmail is a navigation
// from another site, and a browser withholds a Strict cookie from it even
// after the same-site redirect, which would break every link. Lax cookies
// go with top-level navigations and same-site POSTs only, so another
// site's form never carries it (and the cross-origin check refuses such a
// POST anyway).
func (h *Handler) stashToken(w http.ResponseWriter, r *http.Request, token string) {
	if len(token) > 4*reset.TokenLen {
		token = "" // not a token; the page will say the link does not work
	}
	c := cookieFor(r)
	c.set(w, url.QueryEscape(token), int(h.cfg.TokenTTL.Seconds()), "", c.path)
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Location", path.Base(pagePath(r)))
	w.WriteHeader(http.StatusSeeOther)
}

// readTokenCookie returns the token the page's cookie carries ("" when
// there is none), and whether the browser sent more than one cookie of
// the name: then another host set one (plain http, or a browser that does
// not enforce the __Host- prefix), and none of them may decide the
// account.
func readTokenCookie(r *http.Request) (token string, many bool) {
	cs := r.CookiesNamed(cookieFor(r).name)
	switch len(cs) {
	case 0:
		return "", false
	case 1:
		v, err := url.QueryUnescape(cs[0].Value)
		if err != nil {
			return "", false
		}
		return v, false
	default:
		return "", true
	}
}

// clearTokenCookie deletes the token cookie once the link is used or
// found not to work.
func clearTokenCookie(w http.ResponseWriter, r *http.Request) {
	c := cookieFor(r)
	if len(r.CookiesNamed(c.name)) == 0 {
		return
	}
	c.set(w, "", -1, "", c.path)
}

// clearTossedCookies deletes what it can of the token cookies when the
// browser sent several: this host's own, and those set for this host's
// name or a parent domain at any path that reaches the page. A browser
// keeps those it will not let this page delete (a Secure one, seen over
// plain http), which the page then explains again.
func clearTossedCookies(w http.ResponseWriter, r *http.Request) {
	c := cookieFor(r)
	c.set(w, "", -1, "", c.path)
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	if net.ParseIP(host) != nil {
		return // an IP address has no parent domain
	}
	paths := cookiePaths(pagePath(r))
	for d := strings.TrimSuffix(strings.ToLower(host), "."); strings.Contains(d, "."); d = d[strings.IndexByte(d, '.')+1:] {
		for _, p := range paths {
			c.set(w, "", -1, d, p)
		}
	}
}

// cookiePaths returns the cookie paths a browser sends with a request
// for p (RFC 6265, 5.1.4): "/", then each of p's ancestors with and
// without its final slash, then p.
func cookiePaths(p string) []string {
	ps := []string{"/"}
	add := func(c string) {
		if ps[len(ps)-1] != c { // "//" gives one path twice in a row
			ps = append(ps, c)
		}
	}
	for i := 1; i < len(p); i++ {
		if p[i] == '/' {
			add(p[:i])
			add(p[:i+1])
		}
	}
	add(p)
	return ps
}

// pagePath is the path of the page as the browser asked for it, before
// any [http.StripPrefix].
func pagePath(r *http.Request) string {
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil && u.Path != "" {
		return u.Path
	}
	return r.URL.Path
}

// secure reports whether the browser reached the page over https: the
// connection is TLS; or a proxy in front says so with
// "X-Forwarded-Proto: https" or "Forwarded: proto=https"; or the browser
// sent fetch metadata (Sec-Fetch-Site), which browsers send only to https
// and loopback origins, to a host that is not a loopback name. These
// headers are believed from any peer, because they can only make the
// cookie stricter: a client that claims https on a plain-http connection
// gets a __Host- cookie that its own browser refuses, and loses only its
// own link. Behind a TLS-terminating proxy, let the proxy send one of the
// first two, so that browsers without fetch metadata are served right too.
func secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if r.Header.Get("Sec-Fetch-Site") != "" && !loopbackHost(r.Host) {
		return true
	}
	for _, line := range r.Header.Values("X-Forwarded-Proto") {
		for v := range strings.SplitSeq(line, ",") {
			if strings.EqualFold(strings.TrimSpace(v), "https") {
				return true
			}
		}
	}
	for _, line := range r.Header.Values("Forwarded") {
		for elem := range strings.SplitSeq(line, ",") {
			for pair := range strings.SplitSeq(elem, ";") {
				k, v, _ := strings.Cut(pair, "=")
				if strings.EqualFold(strings.TrimSpace(k), "proto") &&
					strings.EqualFold(strings.Trim(strings.TrimSpace(v), `"`), "https") {
					return true
				}
			}
		}
	}
	return false
}

// loopbackHost reports whether host (with or without a port) names this
// machine the way browsers treat as a secure context over plain http:
// localhost, a name under .localhost, or a loopback address.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}

// bindingLabel is what a form's binding authenticates.
const bindingLabel = "passreset/httpadapter: the reset form of this link"

// formBinding returns the value of the hidden field that binds a rendered
// form to the token it was rendered for: an HMAC-SHA-256 keyed with the
// token itself. Only the holder of the token can compute it, it tells
// nothing about the token, and every instance of a cluster computes the
// same value without sharing a key.
func formBinding(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(bindingLabel))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// boundTo reports, in constant time, whether binding is the one of a form
// rendered for token.
func boundTo(binding, token string) bool {
	return hmac.Equal([]byte(binding), []byte(formBinding(token)))
}
