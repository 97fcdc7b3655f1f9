package httpadapter

import (
	"net/http"
	"net/url"
	"path"

	"github.com/passreset/passreset/reset"
)

// tokenCookieName is the cookie that carries a reset link's token from the
// link's URL to the clean URL of the hosted page.
const tokenCookieName = "passreset_token"

// stashToken moves the token of a reset link out of the address bar: it
// keeps the token in a short-lived cookie and sends the browser to the
// page's URL without the query (303), so that the token is in neither
// the address bar, the history, nor a bookmark. The page then works from
// the cookie, without JavaScript.
//
// The cookie is HttpOnly, Secure on https, scoped to the page's own path
// and SameSite=Lax: a link opened from a webmail is a navigation from
// another site, and a browser withholds a Strict cookie from it even after
// the same-site redirect, which would break every link. Lax cookies go
// with top-level navigations and same-site POSTs only, so another site's
// form never carries it (and the cross-origin check refuses such a POST
// anyway).
func (h *Handler) stashToken(w http.ResponseWriter, r *http.Request, token string) {
	p := pagePath(r)
	if len(token) > 4*reset.TokenLen {
		token = "" // not a token; the page will say the link does not work
	}
	http.SetCookie(w, &http.Cookie{
		Name:     tokenCookieName,
		Value:    url.QueryEscape(token),
		Path:     p,
		MaxAge:   int(h.svc.TokenTTL().Seconds()),
		HttpOnly: true,
		Secure:   secure(r),
		SameSite: http.SameSiteLaxMode,
	})
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Location", path.Base(p))
	w.WriteHeader(http.StatusSeeOther)
}

// tokenCookie returns the token the page's cookie carries, or "".
func tokenCookie(r *http.Request) string {
	c, err := r.Cookie(tokenCookieName)
	if err != nil {
		return ""
	}
	v, err := url.QueryUnescape(c.Value)
	if err != nil {
		return ""
	}
	return v
}

// clearTokenCookie deletes the token cookie once the link is used or
// found not to work.
func clearTokenCookie(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie(tokenCookieName); err != nil {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: tokenCookieName, Path: pagePath(r), MaxAge: -1,
		HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteLaxMode})
}

// pagePath is the path of the page as the browser asked for it, before
// any [http.StripPrefix].
func pagePath(r *http.Request) string {
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil && u.Path != "" {
		return u.Path
	}
	return r.URL.Path
}

// secure reports whether the browser reached the page over https, directly
// or through a proxy that says so. A wrong "https" only loses the cookie
// for the one who sent it.
func secure(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}
