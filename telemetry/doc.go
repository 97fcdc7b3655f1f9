// Package telemetry gives passreset OpenTelemetry metrics, so that alerts
// can watch the outbox and the provider. The core (package reset) stays
// standard-library only: this package feeds on what it already reports,
// [reset.Config.OnEvent], and on the Mailer it calls, which [Metrics.Mailer]
// wraps, and reads the outbox's figures from its Store.
//
//	m, err := telemetry.New(telemetry.Options{MeterProvider: provider, Outbox: store})
//	svc, err := reset.New(reset.Config{
//		Mailer:  m.Mailer(mailer), // send latency, failures by class, rate-limit pauses
//		OnEvent: m.OnEvent,        // requests, drops, retries, dead envelopes, budget waits
//		...
//	})
//
// # Metrics
//
// Names follow OpenTelemetry's semantic-convention style (dotted,
// lower-case, a unit of UCUM or {annotation}), under "passreset.":
//
//	passreset.outbox.pending          gauge      {envelope}  pending envelopes, every instance together (Options.Outbox)
//	passreset.outbox.dead             gauge      {envelope}  envelopes moved aside (Options.Outbox)
//	passreset.outbox.oldest.age       gauge      s           how long the oldest pending envelope has waited (Options.Outbox)
//	passreset.mail.call.duration      histogram  s           one call to the provider (one message or one batch);
//	                                                         error.type on failure, passreset.mail.batch
//	passreset.mail.messages           counter    {message}   messages handed to the provider, by passreset.mail.outcome
//	passreset.mail.rate_limit.pauses  counter    {pause}     calls the provider refused for its rate limit (a 429)
//	passreset.mail.rate_limit.wait    histogram  s           the wait each of them asked for (Retry-After)
//	passreset.mail.budget.wait        histogram  s           how long a call waited for the provider budget (OnEvent)
//	passreset.events                  counter    {event}     the Service's events, by passreset.event (dropped, dead, retry, ...)
//
// error.type and passreset.mail.outcome take the values "permanent",
// "rate_limited", "outcome_unknown" and "temporary" (the classes of
// [reset.ErrPermanent], [reset.ErrRateLimited], [reset.ErrOutcomeUnknown],
// and anything else), and passreset.mail.outcome also "sent". Every
// attribute value comes from a fixed list: no token, link, password,
// address, user ID, message ID or error text ever becomes an attribute.
//
// # Traces
//
// Set [Propagation] as [reset.Config.Trace]: the trace context of the ctx
// passed to Request, RequestTrusted and Complete (the HTTP request's, under
// an instrumented router) is queued with the job, sealed in the outbox's
// envelope, and restored into the ctx of the provider call, which
// [Metrics.Mailer] runs in a client span ([SpanSend], or [SpanSendBatch]
// linked to the spans of every request it serves). With an instrumented
// HTTP client in the Mailer, the provider's request joins the same trace.
//
//	svc, err := reset.New(reset.Config{
//		Mailer: m.Mailer(mailer),
//		Trace:  telemetry.Propagation(nil), // otel.GetTextMapPropagator()
//		...
//	})
package telemetry
