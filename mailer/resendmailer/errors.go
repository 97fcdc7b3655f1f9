package resendmailer

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/passreset/passreset/reset"
)

// Sentinel errors. They are checked with [errors.Is]; the errors Send
// returns wrap them.
var (
	// ErrPermanent means that Resend refused the message, or that it could
	// not be sent as given, and sending it again unchanged will fail the
	// same way: a rejected request (400, 422), a bad or missing API key
	// (401, 403), a wrong BaseURL (404, 405), an idempotency key reused with
	// another body (409 invalid_idempotent_request), or an exhausted daily
	// or monthly quota (429 daily_quota_exceeded, monthly_quota_exceeded).
	// Send made exactly one request (or none, for a message it could not
	// turn into one). It wraps [reset.ErrPermanent], so a durable outbox
	// sets such a message aside instead of retrying it.
	ErrPermanent = fmt.Errorf("resendmailer: %w", reset.ErrPermanent)

	// ErrTransient means that Resend did not take the message and that
	// the same message may succeed later: a 5xx answer, 408, 409
	// concurrent_idempotent_requests, a 429 rate_limit_exceeded (its error
	// also holds a [*reset.RateLimitError]), or a request that could not
	// be written (Resend unreachable, a TLS failure). The queue retries it
	// later; its idempotency key keeps it from being sent twice.
	ErrTransient = errors.New("resendmailer: transient failure")
)

// Error is an error answer from Resend: a response that was not 2xx. Send
// returns it wrapped; find it with [errors.As]. It matches [ErrPermanent]
// or [ErrTransient] with [errors.Is], according to the classification in
// the package documentation.
type Error struct {
	StatusCode int    // the HTTP status, such as 422
	Name       string // Resend's error name, such as "validation_error"; empty when the body had none
	Message    string // Resend's message, or the status text when the body had none
}

// Error names the status and Resend's error name and message.
func (e *Error) Error() string {
	name := e.Name
	if name == "" {
		name = http.StatusText(e.StatusCode)
	}
	if e.Message == "" || e.Message == name {
		return fmt.Sprintf("resend answered %d %s", e.StatusCode, name)
	}
	return fmt.Sprintf("resend answered %d %s: %s", e.StatusCode, name, e.Message)
}

// Is reports whether target is ErrPermanent or reset.ErrPermanent (for an
// answer that retrying cannot change) or ErrTransient (for one that it
// can).
func (e *Error) Is(target error) bool {
	switch target {
	case ErrPermanent, reset.ErrPermanent:
		return !e.transient()
	case ErrTransient:
		return e.transient()
	}
	return false
}

// transient classifies an answer; see the table in doc.go.
func (e *Error) transient() bool {
	switch {
	case e.StatusCode >= 500:
		return true
	case e.StatusCode == http.StatusRequestTimeout:
		return true
	case e.StatusCode == http.StatusConflict:
		// invalid_idempotent_request (same key, other body) will never
		// succeed; concurrent_idempotent_requests (same key still in
		// progress) will once the first request is done.
		return e.Name == "concurrent_idempotent_requests"
	case e.StatusCode == http.StatusTooManyRequests:
		// The quotas reset a day or a month later: far past any useful
		// lifetime of a reset link, so retrying is pointless.
		return e.Name != "daily_quota_exceeded" && e.Name != "monthly_quota_exceeded"
	}
	return false
}

// transientError marks a call whose request was not written (a refused
// connection, a TLS failure, a context that ended first) as transient.
type transientError struct{ err error }

func (t transientError) Error() string        { return t.err.Error() }
func (t transientError) Unwrap() error        { return t.err }
func (t transientError) Is(target error) bool { return target == ErrTransient }

// unknownError marks a call whose request was written but whose answer
// never came, or came unreadable: Resend may have sent the email. It
// matches reset.ErrOutcomeUnknown, not ErrTransient.
type unknownError struct{ err error }

func (u unknownError) Error() string        { return "outcome unknown: " + u.err.Error() }
func (u unknownError) Unwrap() error        { return u.err }
func (u unknownError) Is(target error) bool { return target == reset.ErrOutcomeUnknown }
