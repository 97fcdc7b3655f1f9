package resendmailer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/resend/resend-go/v2"
	"golang.org/x/time/rate"

	"github.com/passreset/passreset/internal/backoff"
	"github.com/passreset/passreset/reset"
)

// Defaults for the zero fields of [Options].
const (
	DefaultBaseURL     = "https://api.resend.com/"
	DefaultTimeout     = 10 * time.Second
	DefaultMaxAttempts = 5
	DefaultMaxElapsed  = 2 * time.Minute
	DefaultBackoffBase = 500 * time.Millisecond
	DefaultBackoffMax  = 30 * time.Second
	DefaultRate        = rate.Limit(2) // Resend's default team limit: 2 requests per second
	DefaultBurst       = 1
)

// KindTag is the name of the tag that carries a message's Kind
// (password_reset or password_changed). Send adds it to every email.
const KindTag = "kind"

// Tag is a name and value that Resend attaches to an email, for filtering
// in its dashboard and in webhook events. Both may hold only ASCII letters,
// digits, '_' and '-', at most 256 characters each.
type Tag struct {
	Name  string
	Value string
}

// Options configures a [Mailer]. APIKey and From are required; for every
// other field the zero value means the default its comment names.
type Options struct {
	// APIKey is the Resend API key. Required. It is sent only in the
	// Authorization header, and never logged or put in an error.
	APIKey string

	// From is the sender: "addr@example.com" or "Name <addr@example.com>",
	// on a domain verified with Resend. Required.
	From string

	// ReplyTo, when set, is the Reply-To address, in the same forms as From.
	ReplyTo string

	// Tags are attached to every email. Nil means one tag,
	// category=password_reset; an empty non-nil slice means none. Send
	// adds the tag [KindTag] with the message's Kind, so no tag may be
	// named "kind".
	Tags []Tag

	// BaseURL is the address of the Resend API. Default [DefaultBaseURL].
	// Point it at a resendtest.Server in tests, or at a proxy.
	BaseURL string

	// HTTPClient sends the requests. Default: a client with
	// http.DefaultTransport. The Mailer uses a copy whose Transport wraps
	// this one's; the client given is not modified.
	HTTPClient *http.Client

	// Timeout bounds one attempt (one HTTP request and its answer, a
	// whole batch included). Default [DefaultTimeout], 10 seconds. An
	// attempt that times out is an unknown outcome, retried with the same
	// idempotency key; keep Timeout at most reset.Config.SendTimeout (see
	// "Timeouts and unknown outcomes" in the package documentation).
	Timeout time.Duration

	// MaxAttempts bounds the attempts of one Send or SendBatch, the first
	// included. Default [DefaultMaxAttempts], 5. 1 means no retries: the
	// right choice behind a durable outbox, which retries on its own and
	// pauses every instance on a 429.
	MaxAttempts int

	// MaxElapsed bounds one Send in total, waits for the rate limiter and
	// between attempts included. Default [DefaultMaxElapsed], 2 minutes.
	// The context passed to Send may end it sooner: reset.Service bounds
	// each delivery by its Config.SendTimeout (30 seconds by default).
	MaxElapsed time.Duration

	// BackoffBase and BackoffMax shape the wait before each retry: a
	// uniformly random duration between half and all of
	// min(BackoffMax, BackoffBase·2^(n-1)) before retry n.
	// A Retry-After from Resend replaces that wait when it is longer; one
	// longer than BackoffMax ends the Send at once with ErrTransient.
	// Defaults [DefaultBackoffBase] (500 ms) and [DefaultBackoffMax] (30 s).
	BackoffBase time.Duration
	BackoffMax  time.Duration

	// Rate is how many requests per second this Mailer starts, retries
	// included, across all its concurrent sends. Default [DefaultRate], 2,
	// Resend's default limit for a team: raise it only if Resend raised
	// yours, and lower it if several processes share one team. A batch
	// is one request. rate.Inf turns pacing off: do so when a durable
	// outbox paces every instance with a shared budget.
	Rate rate.Limit

	// Burst is how many requests may start at once after a quiet spell.
	// Default [DefaultBurst], 1: Resend counts requests per second, and a
	// larger burst can exceed that count.
	Burst int

	// Logger receives Debug records only: one for each failed attempt,
	// refusal and accepted email or batch, with the message's ID and kind,
	// the attempt number, the HTTP status and Resend's error name; never
	// the API key, the recipient, the link or the token. The final failure
	// is the caller's to log (reset logs it once). Default: no logging.
	Logger *slog.Logger
}

// Mailer sends messages through Resend. Create one with [New]. It is safe
// for concurrent use; all its sends share one rate limiter.
type Mailer struct {
	client      *resend.Client
	from        string
	replyTo     string
	tags        []resend.Tag
	timeout     time.Duration
	maxAttempts int
	maxElapsed  time.Duration
	backoffBase time.Duration
	backoffMax  time.Duration
	limiter     *rate.Limiter
	paceMu      sync.Mutex // orders the limiter's reservations (see pace)
	log         *slog.Logger
}

var _ reset.Mailer = (*Mailer)(nil)

// New returns a Mailer configured by opts. It checks opts and reports
// every missing or invalid field at once. It starts no goroutine and makes
// no request.
func New(opts Options) (*Mailer, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	switch {
	case strings.TrimSpace(opts.APIKey) == "":
		bad("APIKey is required")
	case strings.ContainsAny(opts.APIKey, " \t\r\n"):
		bad("APIKey contains white space")
	}
	if opts.From == "" {
		bad("From is required")
	} else if err := checkAddress(opts.From); err != nil {
		bad("From %v", err)
	}
	if opts.ReplyTo != "" {
		if err := checkAddress(opts.ReplyTo); err != nil {
			bad("ReplyTo %v", err)
		}
	}
	tags := opts.Tags
	if tags == nil {
		tags = []Tag{{Name: "category", Value: "password_reset"}}
	}
	seen := map[string]bool{}
	for i, t := range tags {
		switch {
		case !validTag(t.Name):
			bad("Tags[%d]: name %q must be 1 to 256 ASCII letters, digits, '_' or '-'", i, t.Name)
		case !validTag(t.Value):
			bad("Tags[%d]: value %q must be 1 to 256 ASCII letters, digits, '_' or '-'", i, t.Value)
		case t.Name == KindTag:
			bad("Tags[%d]: the name %q is reserved for the message kind", i, KindTag)
		case seen[t.Name]:
			bad("Tags[%d]: name %q appears twice", i, t.Name)
		}
		seen[t.Name] = true
	}
	base := opts.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	baseURL, err := url.Parse(base)
	if err != nil || (baseURL.Scheme != "http" && baseURL.Scheme != "https") || baseURL.Host == "" {
		bad("BaseURL %q is not an http or https URL", base)
	} else if !strings.HasSuffix(baseURL.Path, "/") {
		baseURL.Path += "/" // the SDK resolves "emails" against it
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Timeout", opts.Timeout}, {"MaxElapsed", opts.MaxElapsed}, {"BackoffBase", opts.BackoffBase}, {"BackoffMax", opts.BackoffMax}} {
		if d.v < 0 {
			bad("%s is negative", d.name)
		}
	}
	if opts.MaxAttempts < 0 {
		bad("MaxAttempts is negative")
	}
	if opts.Rate < 0 {
		bad("Rate is negative")
	}
	if opts.Burst < 0 {
		bad("Burst is negative")
	}
	if len(problems) > 0 {
		return nil, errors.New("resendmailer: invalid options: " + strings.Join(problems, "; "))
	}

	hc := &http.Client{}
	if opts.HTTPClient != nil {
		*hc = *opts.HTTPClient
	}
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	hc.Transport = &transport{base: rt}
	client := resend.NewCustomClient(hc, opts.APIKey)
	client.BaseURL = baseURL

	m := &Mailer{
		client:      client,
		from:        opts.From,
		replyTo:     opts.ReplyTo,
		timeout:     orDefault(opts.Timeout, DefaultTimeout),
		maxAttempts: orDefault(opts.MaxAttempts, DefaultMaxAttempts),
		maxElapsed:  orDefault(opts.MaxElapsed, DefaultMaxElapsed),
		backoffBase: orDefault(opts.BackoffBase, DefaultBackoffBase),
		backoffMax:  orDefault(opts.BackoffMax, DefaultBackoffMax),
		limiter:     rate.NewLimiter(orDefault(opts.Rate, DefaultRate), orDefault(opts.Burst, DefaultBurst)),
		log:         opts.Logger,
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	for _, t := range tags {
		m.tags = append(m.tags, resend.Tag{Name: t.Name, Value: t.Value})
	}
	return m, nil
}

var _ reset.RateLimitedMailer = (*Mailer)(nil)

// ProviderRate returns Options.Rate and Options.Burst (Resend's 2 requests
// a second and 1 by default), the account's limit as far as this Mailer
// knows. A durable outbox whose OutboxOptions.Rate is 0 takes them as the
// budget it shares with every instance (see [reset.RateLimitedMailer]).
// With Rate rate.Inf it returns 0: no known limit.
func (m *Mailer) ProviderRate() (perSecond float64, burst int) {
	if m.limiter.Limit() == rate.Inf {
		return 0, 0
	}
	return float64(m.limiter.Limit()), m.limiter.Burst()
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Send delivers msg through Resend with msg.IdempotencyKey() as its
// Idempotency-Key, so that retries, and other processes sending the same
// message, send it once. It retries transient failures with backoff and
// returns when Resend accepted the message, when a failure is permanent
// ([ErrPermanent]), when it stops retrying ([ErrTransient]; when the last
// answer was 429 rate_limit_exceeded the error also holds a
// [*reset.RateLimitError]), or as soon as ctx ends (the error then wraps
// ctx.Err()).
func (m *Mailer) Send(ctx context.Context, msg reset.Message) error {
	key := msg.IdempotencyKey()
	if err := checkMessage(msg); err != nil {
		return fmt.Errorf("resendmailer: send %s: %s (%w)", key, err, ErrPermanent)
	}
	req := m.request(msg)
	opts := &resend.SendEmailOptions{IdempotencyKey: key}
	attrs := []any{"message_id", msg.ID, "kind", msg.Kind}
	return m.try(ctx, key, attrs, func(actx context.Context, attempt int) error {
		resp, err := m.client.Emails.SendWithOptions(actx, req, opts)
		if err == nil {
			m.log.DebugContext(ctx, "resend accepted email", append(attrs, "attempt", attempt, "resend_id", resp.Id)...)
		}
		return err
	})
}

// try makes the attempts of one request to Resend: call, given a context
// that bounds the attempt and the attempt's number, makes the request.
// what names the request in errors ("password_reset/<id>", "batch <key>").
// try retries transient failures as the Options say, and returns nil once
// call succeeds, or the error Send documents.
func (m *Mailer) try(ctx context.Context, what string, attrs []any, call func(ctx context.Context, attempt int) error) error {
	start := time.Now()
	deadline := start.Add(m.maxElapsed)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d // no wait or attempt is planned past it
	}

	var last error // the last attempt's failure, always transient
	for attempt := 1; ; attempt++ {
		if err := m.pace(ctx, deadline); err != nil {
			if ctx.Err() != nil {
				return ended(ctx, what, attempt-1, last)
			}
			if last == nil {
				return gaveUp(what, 0, start, transientError{fmt.Errorf("no rate limiter slot before the deadline: %w", context.DeadlineExceeded)})
			}
			return gaveUp(what, attempt-1, start, fmt.Errorf("%w (then no rate limiter slot before the deadline)", last))
		}

		var oc outcome
		attemptDeadline := time.Now().Add(m.timeout)
		cutByTotal := deadline.Before(attemptDeadline) // MaxElapsed (or ctx) ends this attempt, not Timeout
		if cutByTotal {
			attemptDeadline = deadline
		}
		actx, cancel := context.WithDeadline(withOutcome(ctx, &oc), attemptDeadline)
		err := call(actx, attempt)
		timedOut := actx.Err() != nil
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ended(ctx, what, attempt, last)
		}
		err = classify(oc, err, timedOut)
		if errors.Is(err, ErrPermanent) {
			m.log.DebugContext(ctx, "resend refused the request", append(attrs, "attempt", attempt, "status", oc.status, "resend_error", oc.name)...)
			return fmt.Errorf("resendmailer: send %s: %w", what, err)
		}
		if timedOut && cutByTotal {
			m.logAttempt(ctx, attrs, attempt, oc, err, -1)
			if last == nil {
				last = err
			}
			return gaveUp(what, attempt, start, fmt.Errorf("%w (MaxElapsed ended attempt %d)", last, attempt))
		}
		last = err

		if attempt >= m.maxAttempts {
			m.logAttempt(ctx, attrs, attempt, oc, err, -1)
			return gaveUp(what, attempt, start, last)
		}
		delay := backoff.Delay(attempt, m.backoffBase, m.backoffMax)
		if oc.retryAfter > m.backoffMax {
			m.logAttempt(ctx, attrs, attempt, oc, err, -1)
			return gaveUp(what, attempt, start, fmt.Errorf("%w (Resend asks to wait %v, more than BackoffMax)", last, oc.retryAfter))
		}
		delay = max(delay, oc.retryAfter)
		if time.Until(deadline) < delay {
			m.logAttempt(ctx, attrs, attempt, oc, err, -1)
			return gaveUp(what, attempt, start, last)
		}
		m.logAttempt(ctx, attrs, attempt, oc, err, delay)
		if backoff.Sleep(ctx, delay) != nil {
			return ended(ctx, what, attempt, last)
		}
	}
}

// request builds the body of msg's request. It is the same for every
// attempt, as the idempotency key requires.
func (m *Mailer) request(msg reset.Message) *resend.SendEmailRequest {
	tags := make([]resend.Tag, 0, len(m.tags)+1)
	tags = append(tags, m.tags...)
	tags = append(tags, resend.Tag{Name: KindTag, Value: msg.Kind})
	return &resend.SendEmailRequest{
		From:    m.from,
		To:      []string{msg.To},
		Subject: msg.Subject,
		Text:    msg.Text,
		Html:    msg.HTML,
		ReplyTo: m.replyTo,
		Tags:    tags,
	}
}

// pace waits for the shared rate limiter, but not past deadline.
//
// Reservations are taken one at a time, each at a clock reading made under
// the same lock: rate.Limiter reads the clock before it takes its own lock,
// so concurrent Waits can hand it times out of order, and it then counts
// the time between them twice and lets calls through early.
func (m *Mailer) pace(ctx context.Context, deadline time.Time) error {
	m.paceMu.Lock()
	now := time.Now()
	r := m.limiter.ReserveN(now, 1)
	m.paceMu.Unlock()
	if !r.OK() {
		return errors.New("resendmailer: the rate limiter admits no call")
	}
	d := r.DelayFrom(now)
	if now.Add(d).After(deadline) {
		r.CancelAt(now)
		return context.DeadlineExceeded
	}
	if err := backoff.Sleep(ctx, d); err != nil {
		r.Cancel()
		return err
	}
	return nil
}

// logAttempt logs a failed attempt at Debug; retryIn < 0 means no retry
// follows. The caller of Send or SendBatch logs the final failure: the
// Mailer does not log it a second time above Debug.
func (m *Mailer) logAttempt(ctx context.Context, attrs []any, attempt int, oc outcome, err error, retryIn time.Duration) {
	attrs = append(attrs, "attempt", attempt)
	if oc.status != 0 {
		attrs = append(attrs, "status", oc.status, "resend_error", oc.name)
	} else {
		// A transport error: it names the URL and the cause, nothing sent.
		attrs = append(attrs, "err", err.Error())
	}
	if retryIn >= 0 {
		m.log.DebugContext(ctx, "resend attempt failed, retrying", append(attrs, "retry_in", retryIn)...)
		return
	}
	m.log.DebugContext(ctx, "resend attempt failed, giving up", attrs...)
}

// classify turns an attempt's failure into an *Error for an answer from
// Resend (inside a *reset.RateLimitError for a 429 that retrying can
// cure), or a transient error for everything else.
func classify(oc outcome, err error, timedOut bool) error {
	if oc.status != 0 && (oc.status < 200 || oc.status >= 300) {
		e := &Error{StatusCode: oc.status, Name: oc.name, Message: oc.message}
		if oc.status == http.StatusTooManyRequests && e.transient() {
			// The outbox pauses every worker for RetryAfter.
			return &reset.RateLimitError{RetryAfter: oc.retryAfter, Err: e}
		}
		return e
	}
	if timedOut && errors.Is(err, context.DeadlineExceeded) {
		return transientError{fmt.Errorf("attempt timed out: %w", err)}
	}
	// No answer (connection refused or reset), or a 2xx answer the SDK
	// could not read: a retry with the same key is safe either way.
	return transientError{err}
}

func ended(ctx context.Context, key string, attempts int, last error) error {
	if last == nil {
		return fmt.Errorf("resendmailer: send %s: %w", key, ctx.Err())
	}
	return fmt.Errorf("resendmailer: send %s: %w after %d attempt(s); last: %v", key, ctx.Err(), attempts, last)
}

func gaveUp(key string, attempts int, start time.Time, last error) error {
	return fmt.Errorf("resendmailer: send %s: gave up after %d attempt(s) in %v: %w",
		key, attempts, time.Since(start).Round(time.Millisecond), last)
}

// checkMessage rejects a message that cannot make a valid request. The
// recipient's syntax is left to Resend.
func checkMessage(msg reset.Message) error {
	switch {
	case msg.ID == "":
		return errors.New("message has no ID")
	case len(msg.IdempotencyKey()) > 256:
		return errors.New("idempotency key is longer than 256 bytes")
	case !validTag(msg.Kind):
		return fmt.Errorf("kind %q cannot be a tag value", msg.Kind)
	case msg.To == "":
		return errors.New("message has no recipient")
	case strings.ContainsAny(msg.To, "\r\n"):
		return errors.New("recipient contains a line break")
	}
	return nil
}

// checkAddress accepts "addr@example.com" and "Name <addr@example.com>".
func checkAddress(s string) error {
	if strings.ContainsAny(s, "\r\n") {
		return errors.New("contains a line break")
	}
	if _, err := mail.ParseAddress(s); err != nil {
		return fmt.Errorf("%q is not an address like a@example.com or Name <a@example.com>", s)
	}
	return nil
}

// validTag reports whether s is a valid Resend tag name or value.
func validTag(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
