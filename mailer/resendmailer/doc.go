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
// # One call, classified
//
// Each Send and each SendBatch makes exactly one HTTP request, bounded by
// Options.Timeout and the context, and says what became of it. The Mailer
// never retries, backs off or paces: the queue that calls it (reset's
// in-process queue, or the durable outbox) owns retries, backoff and the
// rate budget, so the defaults compose with no setting to switch off. Its
// transport also keeps net/http from replaying a request on its own
// after a lost answer.
//
// The Resend client reports every answer but 429 as a plain string, so
// the Mailer classifies what its own http.RoundTripper saw: whether the
// request was written (net/http/httptrace's WroteRequest), the status,
// Resend's error name (read from the body, which is then handed on
// unchanged), Retry-After and the ratelimit-* headers.
//
//	what happened                            class          errors.Is / errors.As
//	2xx                                      success        nil
//	400 validation_error,                    permanent      ErrPermanent, reset.ErrPermanent, *Error
//	    invalid_idempotency_key
//	401 missing_api_key, restricted_api_key  permanent      ErrPermanent, reset.ErrPermanent, *Error
//	403 invalid_api_key, validation_error    permanent      ErrPermanent, reset.ErrPermanent, *Error
//	404, 405 (a wrong BaseURL)               permanent      ErrPermanent, reset.ErrPermanent, *Error
//	409 invalid_idempotent_request           permanent      ErrPermanent, reset.ErrPermanent, *Error
//	422 (any name)                           permanent      ErrPermanent, reset.ErrPermanent, *Error
//	429 daily_quota_exceeded,                permanent      ErrPermanent, reset.ErrPermanent, *Error:
//	    monthly_quota_exceeded                              the quota resets long after a link expires
//	other 4xx (such as 451 security_error)   permanent      ErrPermanent, reset.ErrPermanent, *Error
//	429 rate_limit_exceeded (or other name)  rate limited   *reset.RateLimitError (RetryAfter from
//	                                                        Retry-After, else ratelimit-reset),
//	                                                        reset.ErrRateLimited, ErrTransient, *Error
//	408, 409 concurrent_idempotent_requests  temporary      ErrTransient, *Error
//	5xx                                      temporary      ErrTransient, *Error
//	nothing written (connection refused,     temporary      ErrTransient
//	TLS failure, ctx ended before)
//	written, no answer (timeout, connection  unknown        reset.ErrOutcomeUnknown
//	dropped or reset after the request was
//	sent), or an unreadable 2xx answer
//
// When the context ends, the error also wraps ctx.Err(). An unknown
// outcome does not match ErrTransient: Resend may well have sent the
// email, and the queue retries it only with the same idempotency key (a
// batch: the same key and the same messages), which Resend answers with
// its first answer, sending nothing again. Resend remembers a key for 24
// hours; a retry made later could send again, and a reset link expires
// long before that.
//
// # Rate limit
//
// [Mailer.ProviderRate] (reset.RateLimitedMailer) tells the queue the
// account's limit, which it uses as the budget it shares across
// instances: Resend's default of 2 calls a second, burst 1, until an
// answer carries a ratelimit-limit header, which it then follows. It is
// data only: the Mailer itself never waits.
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
//	a 2xx answer that does not account for    err matching reset.ErrOutcomeUnknown,
//	every email                               per-message nil
//	the request failed as a whole             err, per-message nil: classified as for
//	                                          Send (permanent, rate limited, temporary,
//	                                          unknown)
//
// After a whole-request failure the caller retries the same messages, in
// the same order, with the same key, and Resend replays its first answer.
// Messages refused one by one are never retried under that key: the
// caller sends the ones it still wants in another batch under another key.
//
// # What is logged, and what errors hold
//
// With Options.Logger set, the Mailer logs at Debug only: each failed
// call, each refusal, each accepted email or batch, with the message's ID
// and kind (or the batch's key), the HTTP status and Resend's error name.
// The failure is returned, and logged once by its caller at the level
// that fits, so one failure does not make a Warn here and an Error there.
// The recipient, the API key, the link and the token are never logged nor
// put in an error. Resend's error messages (which can name the recipient)
// are kept only word by word: a word survives only if it is a plain word
// of letters, a short number or an enhanced status code, so an address,
// a key or any token-like string becomes "[redacted]".
//
// # Webhooks: delivery feedback
//
// Every email carries the tags [KindTag] (the message's kind) and
// [MessageTag] (its ID), which Resend hands back in its webhook events.
// [Webhook] is the http.Handler for those events: it verifies each post
// with resend-go's verification (Svix signature and [WebhookTolerance]),
// refuses unsigned, wrongly signed, stale and replayed posts, and records
// the rest with a feedback.Feedback, which suppresses further reset emails
// to an address that bounced for good or complained.
//
// # Tests
//
// Package resendtest is a local fake of the Resend API (POST /emails and
// POST /emails/batch) that checks requests the way Resend does, keeps
// idempotency keys, can enforce Resend's rate limit per API key in fixed
// or sliding windows, injects faults switched at run time (500, hang,
// drop before the work, accept then drop) and counts calls, 429 answers,
// faults and emails; set Options.BaseURL to its URL. With SetWebhook it
// also signs and posts the webhook events Resend would send about each
// email it accepted.
package resendmailer
