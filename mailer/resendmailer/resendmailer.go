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
	"sync/atomic"
	"time"

	"github.com/resend/resend-go/v2"

	"github.com/passreset/passreset/internal/redact"
	"github.com/passreset/passreset/reset"
)

// Defaults for the zero fields of [Options].
const (
	DefaultBaseURL = "https://api.resend.com/"
	DefaultTimeout = 10 * time.Second
)

// Resend's default rate limit for a team, which [Mailer.ProviderRate]
// advertises until an answer says otherwise: 2 calls a second, one at a
// time.
const (
	defaultRate  = 2
	defaultBurst = 1
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
// other field the zero value means the default its comment names. There
// is nothing to set for retries or pacing: the queue that calls the
// Mailer owns them (see the package documentation).
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
	// adds the tag [KindTag] with the message's Kind and the tag
	// [MessageTag] with its ID, so no tag may be named "kind" or
	// "message_id".
	Tags []Tag

	// BaseURL is the address of the Resend API. Default [DefaultBaseURL].
	// Point it at a resendtest.Server in tests, or at a proxy.
	BaseURL string

	// HTTPClient sends the requests. Default: a client with
	// http.DefaultTransport. The Mailer uses a copy whose Transport wraps
	// this one's; the client given is not modified.
	HTTPClient *http.Client

	// Timeout bounds one call (one HTTP request and its answer, a whole
	// batch included). Default [DefaultTimeout], 10 seconds. The context
	// passed to Send or SendBatch may end it sooner. A call that times out
	// after its request was written is an unknown outcome.
	Timeout time.Duration

	// Logger receives Debug records only: one for each failed call,
	// refusal and accepted email or batch, with the message's ID and kind,
	// the HTTP status and Resend's error name; never the API key, the
	// recipient, the link or the token. The failure itself is the caller's
	// to log (the queue logs it once). Default: no logging.
	Logger *slog.Logger
}

// Mailer sends messages through Resend. Create one with [New]. It is safe
// for concurrent use. Each Send and SendBatch makes exactly one call.
type Mailer struct {
	client  *resend.Client
	apiKey  string
	from    string
	replyTo string
	tags    []resend.Tag
	timeout time.Duration
	limit   atomic.Int64 // the last ratelimit-limit Resend answered; 0 before any
	log     *slog.Logger
}

var _ reset.Mailer = (*Mailer)(nil)

// New returns a Mailer configured by opts. It checks opts and reports
// every missing or invalid field at once, without quoting a value that
// could hold a secret. It starts no goroutine and makes no request.
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
			bad("Tags[%d]: the name must be 1 to 256 ASCII letters, digits, '_' or '-'", i)
		case !validTag(t.Value):
			bad("Tags[%d]: the value must be 1 to 256 ASCII letters, digits, '_' or '-'", i)
		case t.Name == KindTag:
			bad("Tags[%d]: the name %q is reserved for the message kind", i, KindTag)
		case t.Name == MessageTag:
			bad("Tags[%d]: the name %q is reserved for the message ID", i, MessageTag)
		case seen[t.Name]:
			bad("Tags[%d]: name %q appears twice", i, t.Name)
		}
		seen[t.Name] = true
	}
	base := opts.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	// net/url's errors quote the URL, which may hold credentials: say
	// which part is wrong instead.
	baseURL, err := url.Parse(base)
	switch {
	case err != nil:
		bad("BaseURL is not a valid URL")
	case baseURL.Scheme != "http" && baseURL.Scheme != "https":
		bad("BaseURL must start with http:// or https://")
	case baseURL.Host == "":
		bad("BaseURL has no host")
	case baseURL.User != nil:
		bad("BaseURL must not hold credentials (the API key goes in APIKey)")
	case !strings.HasSuffix(baseURL.Path, "/"):
		baseURL.Path += "/" // the SDK resolves "emails" against it
	}
	if opts.Timeout < 0 {
		bad("Timeout is negative")
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
		client:  client,
		apiKey:  opts.APIKey,
		from:    opts.From,
		replyTo: opts.ReplyTo,
		timeout: opts.Timeout,
		log:     opts.Logger,
	}
	if m.timeout == 0 {
		m.timeout = DefaultTimeout
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

// ProviderRate returns the account's rate limit as far as the Mailer
// knows it: the ratelimit-limit header of Resend's latest answer that
// carried one (calls per second; Resend counts one-second windows), or
// Resend's default of 2 before any did; the burst is 1. It is data for
// the queue that paces the calls: the Mailer itself never waits. It is
// safe for concurrent use.
func (m *Mailer) ProviderRate() (perSecond float64, burst int) {
	if l := m.limit.Load(); l > 0 {
		return float64(l), defaultBurst
	}
	return defaultRate, defaultBurst
}

// Send delivers msg through Resend in one call, with msg.IdempotencyKey()
// as its Idempotency-Key, so that a retry (by the queue, or by another
// process sending the same message) sends it once. It returns nil when
// Resend accepted the message, and otherwise an error classified as the
// package documentation says: matching [ErrPermanent] (and
// reset.ErrPermanent), holding a [*reset.RateLimitError] for a 429,
// matching reset.ErrOutcomeUnknown when the request was written but no
// answer came, or matching [ErrTransient] when it was known not to be
// sent. When ctx ends the error also wraps ctx.Err().
func (m *Mailer) Send(ctx context.Context, msg reset.Message) error {
	key := msg.IdempotencyKey()
	if err := checkMessage(msg); err != nil {
		return fmt.Errorf("resendmailer: send %s: %s (%w)", key, err, ErrPermanent)
	}
	req := m.request(msg)
	opts := &resend.SendEmailOptions{IdempotencyKey: key}
	attrs := []any{"message_id", msg.ID, "kind", msg.Kind}
	err := m.call(ctx, attrs, func(actx context.Context) error {
		resp, err := m.client.Emails.SendWithOptions(actx, req, opts)
		if err == nil {
			m.log.DebugContext(ctx, "resend accepted email", append(attrs, "resend_id", resp.Id)...)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("resendmailer: send %s: %w", key, err)
	}
	return nil
}

// call makes one request to Resend with do, bounded by Options.Timeout,
// and classifies its failure.
func (m *Mailer) call(ctx context.Context, attrs []any, do func(ctx context.Context) error) error {
	oc := &outcome{}
	actx, cancel := context.WithTimeout(withOutcome(ctx, oc), m.timeout)
	err := do(actx)
	cancel()
	if oc.limit > 0 {
		m.limit.Store(int64(oc.limit))
	}
	if err == nil {
		return nil
	}
	err = m.classify(ctx, oc, err)
	if oc.status != 0 {
		m.log.DebugContext(ctx, "resend call failed", append(attrs, "status", oc.status, "resend_error", oc.name)...)
	} else {
		m.log.DebugContext(ctx, "resend call failed", append(attrs, "written", oc.wrote.Load(), "err", err.Error())...)
	}
	return err
}

// classify turns a call's failure into an *Error for an answer from Resend
// (inside a *reset.RateLimitError for a 429 that waiting can cure), an
// unknown outcome when the request was written but no usable answer came,
// or a transient error when nothing was written.
func (m *Mailer) classify(ctx context.Context, oc *outcome, err error) error {
	switch {
	case oc.status >= 200 && oc.status < 300:
		// Resend answered 2xx with a body the SDK could not read: it may
		// well have sent the email.
		return unknownError{fmt.Errorf("an unreadable %d answer: %w", oc.status, err)}
	case oc.status != 0:
		e := &Error{StatusCode: oc.status, Name: oc.name, Message: redact.Reply(oc.message, m.apiKey)}
		if oc.status == http.StatusTooManyRequests && e.transient() {
			return &reset.RateLimitError{RetryAfter: oc.retryAfter, Err: e}
		}
		return e
	}
	if ce := ctx.Err(); ce != nil && !errors.Is(err, ce) {
		err = fmt.Errorf("%w (%w)", err, ce)
	}
	if oc.wrote.Load() {
		return unknownError{err}
	}
	return transientError{err}
}

// request builds the body of msg's request. It is the same for every
// attempt, as the idempotency key requires.
func (m *Mailer) request(msg reset.Message) *resend.SendEmailRequest {
	tags := make([]resend.Tag, 0, len(m.tags)+2)
	tags = append(tags, m.tags...)
	tags = append(tags, resend.Tag{Name: KindTag, Value: msg.Kind})
	if validTag(msg.ID) {
		tags = append(tags, resend.Tag{Name: MessageTag, Value: msg.ID})
	}
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
		return errors.New("is not an address like a@example.com or Name <a@example.com>")
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
