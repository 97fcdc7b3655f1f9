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
//	429 rate_limit_exceeded (or other name)  transient  retries after Retry-After;
//	                                                    its error holds a
//	                                                    *reset.RateLimitError
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
// matches [ErrTransient] and wraps the last attempt's failure; when that
// was a 429 rate_limit_exceeded, the error also holds a
// [*reset.RateLimitError] (find it with [errors.As]) whose RetryAfter is
// Resend's Retry-After, so that a durable outbox pauses every worker of
// every instance instead of only the one that was refused.
//
// # Batches
//
// The Mailer implements [reset.BatchMailer]: [Mailer.SendBatch] sends up
// to [MaxBatch] (100) messages in one request to POST /emails/batch, with
// the caller's key as Idempotency-Key and permissive validation (the
// x-batch-validation header), so that Resend sends the valid emails and
// reports each invalid one instead of refusing the whole batch. At
// Resend's default 2 requests a second that is 200 emails a second
// instead of 2: 10,000 messages take 100 requests.
//
//	outcome                                   SendBatch returns
//	2xx, every email accepted                 a nil error for each message
//	2xx, some emails in errors (permissive)   for those an error matching ErrPermanent
//	                                          (Resend validated and refused them), nil
//	                                          for the others
//	a message that cannot become a request    an error matching ErrPermanent for it;
//	(no ID, no recipient, ...)                the others are sent
//	an answer that does not account for       err matching ErrTransient, per-message nil
//	every email
//	the request failed as a whole             err, per-message nil: classified as for
//	                                          Send (permanent, transient, rate limited)
//
// A whole-request failure leaves the outcome of every message unknown: the
// caller retries the same messages, in the same order, with the same key,
// and Resend replays its first answer. Messages refused one by one are
// never retried under that key: the caller sends the ones it still wants
// in another batch under another key.
//
// # Timeouts and unknown outcomes
//
// Options.Timeout (10 seconds by default) bounds one attempt: one HTTP
// request and its answer, a whole batch of 100 included. Options.MaxElapsed
// and the context bound all the attempts of one Send or SendBatch:
// reset.Service gives each delivery a context bounded by its
// Config.SendTimeout (30 seconds by default), and the durable outbox holds
// a lease on the message while it sends (OutboxOptions.Lease, which must
// exceed SendTimeout unless the outbox store renews leases, see
// reset.LeaseRenewer). So keep Timeout <= SendTimeout < Lease. Behind the
// durable outbox, set MaxAttempts to 1: the outbox retries with its own
// attempt limit and backoff, and a 429 then reaches it at once so that it
// can pause every instance. When the outbox paces all instances with a
// shared budget (a Store that implements reset.Budgeter), that budget is
// the pace that counts: set Rate to rate.Inf so that the Mailer does not
// add a second, per-process pacing on top.
//
// An answer that never came (the attempt timed out, the connection was
// lost, the body could not be read) is an unknown outcome: Resend may
// well have sent the email. It is transient, and every retry, by the
// Mailer or by the outbox, carries the same idempotency key and the same
// body, so Resend, which remembers a key for 24 hours, answers with the
// first result and sends nothing again. A slow provider therefore costs
// time, never a duplicate, and a message delivered during its attempt
// window is reported delivered by the replay instead of being counted as
// failed. A retry made more than 24 hours later could send again; a reset
// link expires long before that.
//
// A provider without idempotency keys has no such replay. With SMTP
// (mailer/smtpmailer), a connection lost after the message was handed
// over but before the server's reply looks exactly like a failure; the
// retry delivers a second copy. Delivery is then at least once: a
// possible duplicate, never a lost message. The copies carry the same
// link: the outbox seals the rendered message into the envelope once and
// sends it unchanged on every attempt.
//
// # Pacing
//
// Resend allows a team 2 requests per second by default. Every attempt of
// every Send on one Mailer first waits for a shared token bucket
// (golang.org/x/time/rate) of Options.Rate requests per second, so a burst
// of resets is spread out instead of turning into 429s; a batch is one
// request. Use one Mailer per process, and divide the rate between
// processes that share a team, or, behind a durable outbox whose store
// keeps a budget shared by every instance (reset.Budgeter), let that
// budget pace and set Options.Rate to rate.Inf.
//
// # What is logged
//
// With Options.Logger set, the Mailer logs at Debug only: each failed
// attempt (and whether it retries), each refusal, each accepted email or
// batch, with the message's ID and kind (or the batch's key), the attempt
// number, the HTTP status and Resend's error name. The final failure is
// returned, and logged once by its caller at the level that fits (reset
// logs it), so one failure does not make a Warn here and an Error there.
// The recipient is not logged; the API key, the link and the token are
// never logged nor put in an error.
//
// # Tests
//
// Package resendtest is a local fake of the Resend API (POST /emails and
// POST /emails/batch) that checks requests the way Resend does, keeps
// idempotency keys, can enforce Resend's rate limit per API key and counts
// calls, 429 answers and emails; set Options.BaseURL to its URL.
package resendmailer
