// Package resendmailer is a [reset.Mailer] that sends through Resend
// (https://resend.com) with the official client, github.com/resend/resend-go/v2.
//
// Each message is sent with msg.IdempotencyKey() ("<kind>/<id>", derived
// from neither the token nor the link) as its Idempotency-Key. Resend
// remembers a key for 24 hours and answers a repeated request with the
// same body with the first answer, sending nothing again: so a retry after
// a lost answer, or another process sending the same message, never sends
// it twice. The body of a message is the same on every attempt.
//
// # Failures
//
// The Resend client reports every answer but 429 as a plain string, so
// the Mailer classifies what its own http.RoundTripper saw: the status,
// Resend's error name (read from the body, which is then handed on
// unchanged) and Retry-After.
//
//	answer from Resend                       class      Send
//	2xx                                      success    returns nil
//	400 validation_error,                    permanent  returns at once
//	    invalid_idempotency_key
//	401 missing_api_key, restricted_api_key  permanent  returns at once
//	403 invalid_api_key, validation_error    permanent  returns at once
//	404, 405 (a wrong BaseURL)               permanent  returns at once
//	409 invalid_idempotent_request           permanent  returns at once
//	422 (any name)                           permanent  returns at once
//	429 daily_quota_exceeded,                permanent  returns at once: the quota resets
//	    monthly_quota_exceeded                          long after a reset link expires
//	other 4xx (such as 451 security_error)   permanent  returns at once
//	408                                      transient  retries
//	409 concurrent_idempotent_requests       transient  retries
//	429 rate_limit_exceeded (or other name)  transient  retries after Retry-After
//	5xx                                      transient  retries
//	no answer (attempt timed out, connection transient  retries
//	refused or reset), unreadable 2xx body
//	the ctx of Send ended                    -          returns at once, wrapping ctx.Err()
//
// A permanent failure returns an error that matches [ErrPermanent] (and
// so reset.ErrPermanent, which a durable outbox checks) and holds an
// [*Error] (find it with [errors.As]) naming the status and Resend's error
// name; exactly one request was made. Transient failures are retried up
// to Options.MaxAttempts attempts and Options.MaxElapsed in total, waiting
// between attempts a random time between half and all of an
// exponentially growing bound, or Retry-After when Resend asks for longer (a
// Retry-After beyond Options.BackoffMax stops at once). Each attempt is
// bounded by Options.Timeout. When the Mailer stops trying, its error
// matches [ErrTransient] and wraps the last attempt's failure.
//
// # Pacing
//
// Resend allows a team 2 requests per second by default. Every attempt of
// every Send on one Mailer first waits for a shared token bucket
// (golang.org/x/time/rate) of Options.Rate requests per second, so a burst
// of resets is spread out instead of turning into 429s. Use one Mailer per
// process, and divide the rate between processes that share a team.
//
// # What is logged
//
// With Options.Logger set, each failed attempt is logged at Warn and each
// accepted email at Debug with the message's ID and kind, the attempt
// number, the HTTP status and Resend's error name. The recipient is not
// logged; the API key, the link and the token are never logged nor put in
// an error.
//
// # Tests
//
// Package resendtest is a local fake of the Resend API that checks
// requests the way Resend does; set Options.BaseURL to its URL.
package resendmailer
