package httpadapter

import (
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/passreset/passreset/reset"
)

// Paths the handler serves, relative to where it is mounted (use
// [http.StripPrefix] to mount it under a prefix).
const (
	// PasswordLostPath is PingOne's password-lost operation: POST JSON
	// {"email", "link"?, "skipSend"?}.
	PasswordLostPath = "/users/password-lost"
	// PasswordResetPath completes a reset: POST JSON
	// {"confirmationToken", "newPassword", "id"?}.
	PasswordResetPath = "/users/password-reset"
	// CheckPath checks a token without consuming it: POST JSON
	// {"confirmationToken"}.
	CheckPath = "/users/password-reset/check"
	// PagePath is the hosted reset page. [reset.Config.ResetURL] must be
	// the absolute URL of this path where the handler is mounted, such as
	// "https://app.example.com/auth" + PagePath.
	PagePath = "/reset"
	// ForgotPath is the hosted "forgot password" page, where a person
	// types an address to get a new link. The page at PagePath offers it
	// when a link is invalid or expired (see [Options.ForgotURL]).
	ForgotPath = "/forgot"
)

// Defaults for the zero values of [Options].
const (
	// DefaultRateLimit is how many requests one public client may make
	// per minute, over all paths of one Handler.
	DefaultRateLimit = 60
	// DefaultMaxClients bounds how many clients the rate limiter tracks.
	DefaultMaxClients = 100_000
	// DefaultAuthChallenge is the WWW-Authenticate value sent with 401.
	DefaultAuthChallenge = `Basic realm="passreset", charset="UTF-8"`
)

// Options configures a [Handler]. The zero value means the documented
// defaults: every caller is public, 60 requests a minute per client.
//
// The product name, the logger, the clock and the password policy are
// the Service's ([reset.Config]): the handler asks the Service for them.
type Options struct {
	// Authorize tells trusted callers from the public; see [Authorizer]
	// and [BasicAuth]. It runs for the JSON operations, not for the
	// hosted pages, which are always public. Default: nil, every caller
	// is public and Authorization headers are ignored.
	Authorize Authorizer
	// AuthChallenge is the WWW-Authenticate header sent with 401.
	// Default [DefaultAuthChallenge].
	AuthChallenge string

	// RateLimit is how many requests one public client may make per
	// minute, over every path of the handler; more get 429 with
	// Retry-After. Default [DefaultRateLimit]; negative disables limiting.
	// The count is kept in this process: with several instances each
	// limits on its own (set Limiter to share one). It is a courtesy limit
	// against floods; what bounds the mail an address receives is the
	// core's per-address cooldown, which the store shares across
	// instances.
	RateLimit int
	// RateBurst is how many requests a client may make at once before
	// the per-minute rate applies. Default: RateLimit.
	RateBurst int
	// LimitTrusted applies the rate limit to trusted callers too, under
	// keys of their own. Default false: trusted callers are not limited.
	LimitTrusted bool
	// ClientKey returns the key the rate limit counts requests under.
	// Default [ClientIP]: the peer's IP address (its /64 for IPv6). Behind
	// a reverse proxy every request has the proxy's address: set it to
	// [TrustedProxies]. (With the default, the handler logs one warning
	// when a single peer forwards requests for many addresses.)
	ClientKey func(*http.Request) string
	// MaxClients bounds the memory of the built-in rate limiter: when
	// this many clients are tracked, idle ones are forgotten. Default
	// [DefaultMaxClients].
	MaxClients int
	// Limiter, when set, replaces the built-in per-client limiter, for
	// example with one that all instances share; it receives ClientKey's
	// keys, and RateBurst and MaxClients are unused. A negative RateLimit
	// still disables limiting. Default: an in-process limiter
	// (golang.org/x/time/rate) of RateLimit requests a minute per client,
	// on the Service's clock.
	Limiter Limiter

	// Pages replaces hosted page templates. Each template it defines
	// with one of the Page names ([PageForm], [PageInvalid], [PageDone],
	// [PageForgot], [PageSent], [PageError]) replaces the built-in one and
	// receives a [PageData]; pages it does not define stay built-in.
	// A Content-Security-Policy allows no script and only styles carrying
	// the nonce in PageData.Nonce. Default: the built-in pages.
	Pages *template.Template
	// ForgotURL is where the invalid-link page sends a person to ask for
	// a new link, such as the application's own "forgot password" page.
	// Default: the page shows a form posting to ForgotPath.
	ForgotURL string
	// SignInURL, when set, is linked from the success page. Default none.
	SignInURL string

	// CrossOrigin refuses cross-origin POSTs to the hosted pages. Default:
	// [http.NewCrossOriginProtection] with no trusted origins. (The JSON
	// operations require a JSON content type, which a cross-origin
	// browser request can only send after a CORS preflight that this
	// handler does not answer.)
	CrossOrigin *http.CrossOriginProtection
}

// Handler serves the JSON operations and the hosted pages. It is a plain
// [http.Handler], safe for concurrent use; create it with [New].
type Handler struct {
	svc       *reset.Service
	cfg       reset.Config // svc.Config(), read once
	opts      Options
	log       *slog.Logger
	lim       Limiter     // nil when limiting is off
	watch     *proxyWatch // nil unless ClientKey is the default
	cop       *http.CrossOriginProtection
	minLength int   // the hosted form's minlength hint
	pages     pages // the hosted pages' texts, built on first use (page.go)

	resetPath string      // ResetURL's path when it ends with PagePath; "" otherwise
	mounted   atomic.Bool // the mount point was compared with resetPath
}

var _ http.Handler = (*Handler)(nil)

// PublicMessage is the message of the one answer a public password-lost
// request gets, whether or not the address has an account and whether or
// not its cooldown runs: 202 {"message": PublicMessage}.
const PublicMessage = "If an account uses this email address, a link to reset its password is on its way."

// New returns a Handler for svc. It reports invalid options.
func New(svc *reset.Service, opts Options) (*Handler, error) {
	var problems []string
	if svc == nil {
		problems = append(problems, "a *reset.Service is required")
	}
	if opts.RateBurst < 0 || opts.MaxClients < 0 {
		problems = append(problems, "RateBurst and MaxClients must not be negative")
	}
	if strings.ContainsAny(opts.AuthChallenge, "\r\n") {
		problems = append(problems, "AuthChallenge must not contain a line break")
	}
	if len(problems) > 0 {
		return nil, errors.New("httpadapter: " + strings.Join(problems, "; "))
	}
	if opts.AuthChallenge == "" {
		opts.AuthChallenge = DefaultAuthChallenge
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = DefaultRateLimit
	}
	if opts.RateBurst == 0 {
		opts.RateBurst = max(opts.RateLimit, 1)
	}
	if opts.MaxClients == 0 {
		opts.MaxClients = DefaultMaxClients
	}
	cfg := svc.Config()
	h := &Handler{
		svc:       svc,
		cfg:       cfg,
		log:       cfg.Logger.With("component", "passreset/httpadapter"),
		cop:       opts.CrossOrigin,
		minLength: svc.MinPasswordLength(),
	}
	if u, err := url.Parse(cfg.ResetURL); err == nil && strings.HasSuffix(u.Path, PagePath) {
		h.resetPath = u.Path
	}
	if h.cop == nil {
		h.cop = http.NewCrossOriginProtection()
	}
	switch {
	case opts.RateLimit < 0:
	case opts.Limiter != nil:
		h.lim = opts.Limiter
	default:
		h.lim = newMemLimiter(opts.RateLimit, opts.RateBurst, opts.MaxClients, cfg.Now)
	}
	if opts.ClientKey == nil {
		opts.ClientKey = ClientIP
		if h.lim != nil {
			h.watch = &proxyWatch{} // the default key counts a proxy's users as one client
		}
	}
	h.opts = opts
	return h, nil
}

// ServeHTTP routes a request by its path relative to the mount point.
// On the first request it serves, it checks where it is mounted (see
// [Handler.checkMount]).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case PasswordLostPath, PasswordResetPath, CheckPath, PagePath, ForgotPath:
		h.checkMount(r)
	}
	switch r.URL.Path {
	case PasswordLostPath:
		h.api(w, r, h.passwordLost)
	case PasswordResetPath:
		h.api(w, r, h.passwordReset)
	case CheckPath:
		h.api(w, r, h.check)
	case PagePath:
		h.page(w, r, h.resetPage)
	case ForgotPath:
		h.page(w, r, h.forgotPage)
	default:
		h.writeError(w, r, notFound(r.URL.Path))
	}
}

// checkMount warns, once, when the emailed links cannot reach the hosted
// page: a handler cannot know its mount point before a request arrives,
// so the first request it serves tells it (the prefix that
// http.StripPrefix or a router's Mount took off the request's path), and
// when that prefix + PagePath differs from the path of Config.ResetURL it
// logs both. A ResetURL whose path does not end with PagePath points to a
// page of the application's own, which it does not check.
func (h *Handler) checkMount(r *http.Request) {
	if h.resetPath == "" || r.RequestURI == "" || h.mounted.Load() {
		return
	}
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil {
		return
	}
	prefix, ok := strings.CutSuffix(u.Path, r.URL.Path)
	if !ok || !h.mounted.CompareAndSwap(false, true) {
		return
	}
	if served := prefix + PagePath; served != h.resetPath {
		h.log.WarnContext(r.Context(), "the emailed reset links do not reach the hosted reset page: "+
			"reset.Config.ResetURL has the path reset_url_path, but this handler serves its page at page_path; "+
			"set ResetURL to the public URL of page_path, or mount the handler where ResetURL points",
			"reset_url_path", h.resetPath, "page_path", served)
	}
}

// notFound is the 404 for a path the handler does not serve. When the
// path ends with one of its paths, it was probably mounted without
// stripping the prefix (as chi's Mount and a plain mux.Handle do), and
// the message says so.
func notFound(p string) *apiError {
	msg := "No operation has this path."
	for _, known := range []string{PasswordLostPath, PasswordResetPath, CheckPath, PagePath, ForgotPath} {
		if prefix, ok := strings.CutSuffix(p, known); ok && prefix != "" && !strings.HasSuffix(prefix, "/") {
			msg = fmt.Sprintf("No operation has this path. This handler serves %s relative to where it is mounted, "+
				"but it received %s with the prefix %q still on: mount it under http.StripPrefix(%q, handler).",
				known, p, prefix, prefix)
			break
		}
	}
	return &apiError{status: http.StatusNotFound, code: CodeNotFound, message: msg}
}

// limit applies the rate limit to a request, reporting a 429 if it is over.
func (h *Handler) limit(r *http.Request, trusted bool) *apiError {
	if h.watch != nil {
		if peer, warn := h.watch.seen(r); warn {
			h.log.WarnContext(r.Context(), "requests look proxied: one peer forwards requests for many client addresses, "+
				"and the rate limit counts them all as one client; behind a reverse proxy set Options.ClientKey "+
				"to httpadapter.TrustedProxies (if there is no proxy, a client is forging Forwarded headers, which are ignored)",
				"peer", peer)
		}
	}
	if h.lim == nil || (trusted && !h.opts.LimitTrusted) {
		return nil
	}
	key := h.opts.ClientKey(r)
	if trusted {
		key = "trusted\x00" + key
	}
	ok, wait, err := h.lim.Allow(r.Context(), key)
	if err != nil {
		h.log.ErrorContext(r.Context(), "rate limiter failed; request served", "err", err)
		return nil
	}
	if !ok {
		return &apiError{status: http.StatusTooManyRequests, code: CodeRequestLimited,
			message: "Too many requests from this client. Try again later.", retryAfter: wait}
	}
	return nil
}
