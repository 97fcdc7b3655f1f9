package reset

import (
	"errors"
	"fmt"
)

// Sentinel errors. They are checked with [errors.Is]; adapters may wrap them.
var (
	// ErrUnknownUser means that no account has the given email address.
	// Users implementations return it from LookupEmail.
	ErrUnknownUser = errors.New("reset: unknown user")

	// ErrNotFound is what a Store returns when no record has the given hash.
	ErrNotFound = errors.New("reset: record not found")

	// ErrInvalidToken means that a token is malformed, unknown, already
	// used or replaced by a newer one.
	ErrInvalidToken = errors.New("reset: invalid token")

	// ErrExpiredToken means that a token was valid but its lifetime is over.
	ErrExpiredToken = errors.New("reset: expired token")

	// ErrLinkNotAllowed means that a caller-supplied link does not match
	// [Config.AllowedLinks]. It is wrapped in an [*InputError] for field "link".
	ErrLinkNotAllowed = errors.New("reset: link not allowed")

	// ErrInvalidInput is the sentinel behind every [*InputError].
	ErrInvalidInput = errors.New("reset: invalid input")

	// ErrSecondFactorRequired means that the account has a second factor
	// and no code was given. It is wrapped in an [*InputError] for field
	// "secondFactorCode"; nothing changed.
	ErrSecondFactorRequired = errors.New("reset: second factor required")

	// ErrSecondFactorInvalid means that the second-factor code was wrong.
	// It is wrapped in an [*InputError] for field "secondFactorCode";
	// nothing changed but the count of wrong codes: after
	// [MaxSecondFactorFailures] of them the token stops working.
	ErrSecondFactorInvalid = errors.New("reset: second factor invalid")

	// ErrQueueFull means that the delivery queue has no room: the trusted
	// request was not accepted and nothing changed. Try again later. Public
	// requests never return it (see [Service.Request]).
	ErrQueueFull = errors.New("reset: delivery queue full")

	// ErrClosed means that the Service has been shut down.
	ErrClosed = errors.New("reset: service shut down")

	// ErrThrottled means that the per-address cooldown or daily limit
	// ([Config.DailyLimit]) suppressed a mail.
	// [Service.RequestTrusted] returns it only when [TrustedRequest.Throttle]
	// is set; public requests never report it to the caller.
	ErrThrottled = errors.New("reset: throttled")

	// ErrSuppressed means that [Config.Suppressed] holds reset emails to
	// the account's address back. [Service.RequestTrusted] returns it
	// (wrapped) unless the request skips sending; for public requests,
	// [Service.CarryOut] returns it and the queue drops the request.
	ErrSuppressed = errors.New("reset: address suppressed")

	// ErrPermanent marks a delivery failure that retrying cannot fix, such
	// as a rejected address or a revoked API key. A Mailer returns errors
	// for which errors.Is(err, ErrPermanent) holds; the queue then gives
	// the message up at once instead of retrying it.
	ErrPermanent = errors.New("reset: permanent delivery failure")

	// ErrOutcomeUnknown marks a delivery failure after which the provider
	// may or may not have accepted the message: the request was written
	// but its answer never came (a timeout, a connection dropped after
	// the request was sent, an SMTP server that went away after the
	// message's data). A Mailer returns errors for which
	// errors.Is(err, ErrOutcomeUnknown) holds; the queue then retries only
	// with the same idempotency key (for a batch: the same key and the same
	// messages), and does not count the call as an attempt. A failure
	// known to have delivered nothing (a refused connection, a 5xx answer)
	// is neither permanent nor unknown: it is temporary.
	ErrOutcomeUnknown = errors.New("reset: delivery outcome unknown")
)

// InputError reports a bad input value. Field names the offending field
// with the JSON name the HTTP API uses ("email", "link", "newPassword",
// "confirmationToken", "secondFactorCode"). Nothing changes when an
// InputError is returned.
type InputError struct {
	Field   string // the offending field
	Reason  string // human-readable, safe to show to the caller
	Missing bool   // the field was empty or absent
	Err     error  // a more specific sentinel such as ErrLinkNotAllowed, or nil
}

// Error returns "reset: invalid <field>: <reason>".
func (e *InputError) Error() string {
	return fmt.Sprintf("reset: invalid %s: %s", e.Field, e.Reason)
}

// Unwrap returns ErrInvalidInput and the more specific cause, if any, so
// that errors.Is finds both.
func (e *InputError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrInvalidInput}
	}
	return []error{ErrInvalidInput, e.Err}
}
