package httpadapter

import (
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

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
	// limits on its own. It is a courtesy limit against floods; what bounds
	// the mail an address receives is the core's per-address cooldown,
	// which the store shares across instances.
	RateLimit int
	// RateBurst is how many requests a client may make at once before
	// the per-minute rate applies. Default: RateLimit.
	RateBurst int
	// LimitTrusted applies the rate limit to trusted callers too. Default
	// false: trusted callers are not limited.
	LimitTrusted bool
	// ClientKey returns the key the rate limit counts requests under.
	// Default [ClientIP]: the peer's IP address (its /64 for IPv6). Set it
	// behind a reverse proxy.
	ClientKey func(*http.Request) string
	// MaxClients bounds the memory of the rate limiter: when this many
	// clients are tracked, idle ones are forgotten. Default
	// [DefaultMaxClients].
	MaxClients int

	// Product names the application on the hosted pages. Default: none,
	// the pages speak of "your password".
	Product string
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
	// MinPasswordLength is the minimum length the hosted form asks the
	// browser to enforce (a hint; the policy in [reset.Config] decides).
	// Default [reset.DefaultMinPassword].
	MinPasswordLength int

	// CrossOrigin refuses cross-origin POSTs to the hosted pages. Default:
	// [http.NewCrossOriginProtection] with no trusted origins. (The JSON
	// operations require a JSON content type, which a cross-origin
	// browser request can only send after a CORS preflight that this
	// handler does not answer.)
	CrossOrigin *http.CrossOriginProtection

	// Logger receives a line for every refused request (at Debug) and
	// every failure (at Error, with its cause and the correlation ID
	// sent to the client). Default slog.Default().
	Logger *slog.Logger
	// Now is the clock of the rate limiter. Default time.Now.
	Now func() time.Time
}

// Handler serves the JSON operations and the hosted pages. It is a plain
// [http.Handler], safe for concurrent use; create it with [New].
type Handler struct {
	svc        *reset.Service
	opts       Options
	log        *slog.Logger
	lim        *limiter // nil when limiting is off
	cop        *http.CrossOriginProtection
	publicBody []byte
	pages      pages // the hosted pages' texts, built on first use (page.go)
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
	if opts.RateBurst < 0 || opts.MaxClients < 0 || opts.MinPasswordLength < 0 {
		problems = append(problems, "RateBurst, MaxClients and MinPasswordLength must not be negative")
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
	if opts.ClientKey == nil {
		opts.ClientKey = ClientIP
	}
	if opts.MaxClients == 0 {
		opts.MaxClients = DefaultMaxClients
	}
	if opts.MinPasswordLength == 0 {
		opts.MinPasswordLength = reset.DefaultMinPassword
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{
		svc:  svc,
		opts: opts,
		log:  opts.Logger.With("component", "passreset/httpadapter"),
		cop:  opts.CrossOrigin,
	}
	if h.cop == nil {
		h.cop = http.NewCrossOriginProtection()
	}
	if opts.RateLimit > 0 {
		h.lim = newLimiter(opts.RateLimit, opts.RateBurst, opts.MaxClients, opts.Now)
	}
	body, err := marshal(struct {
		Message string `json:"message"`
	}{PublicMessage})
	if err != nil {
		return nil, err
	}
	h.publicBody = body
	return h, nil
}

// ServeHTTP routes a request by its path relative to the mount point.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
		h.writeError(w, r, &apiError{status: http.StatusNotFound, code: CodeNotFound,
			message: "No operation has this path."})
	}
}

// limit applies the rate limit to a request, reporting a 429 if it is over.
func (h *Handler) limit(r *http.Request, trusted bool) *apiError {
	if h.lim == nil || (trusted && !h.opts.LimitTrusted) {
		return nil
	}
	key := h.opts.ClientKey(r)
	if trusted {
		key = "trusted\x00" + key
	}
	if ok, wait := h.lim.allow(key); !ok {
		return &apiError{status: http.StatusTooManyRequests, code: CodeRequestLimited,
			message: "Too many requests from this client. Try again later.", retryAfter: wait}
	}
	return nil
}
