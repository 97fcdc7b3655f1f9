package telemetry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
)

// ScopeName is the instrumentation scope of the meter.
const ScopeName = "github.com/passreset/passreset/telemetry"

// Attribute keys of this package's own.
const (
	OutcomeKey = attribute.Key("passreset.mail.outcome") // sent, or a failure class
	BatchKey   = attribute.Key("passreset.mail.batch")   // the call was a batch
	EventKey   = attribute.Key("passreset.event")        // a reset.EventKind
)

// Failure classes: the values of error.type and passreset.mail.outcome.
const (
	ClassPermanent      = "permanent"
	ClassRateLimited    = "rate_limited"
	ClassOutcomeUnknown = "outcome_unknown"
	ClassTemporary      = "temporary"
	OutcomeSent         = "sent"
)

// Class returns err's failure class, as a Mailer classifies one attempt:
// [ClassPermanent], [ClassRateLimited], [ClassOutcomeUnknown] or
// [ClassTemporary]; "" for nil.
func Class(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, reset.ErrPermanent):
		return ClassPermanent
	case errors.Is(err, reset.ErrRateLimited):
		return ClassRateLimited
	case errors.Is(err, reset.ErrOutcomeUnknown):
		return ClassOutcomeUnknown
	}
	return ClassTemporary
}

// Options configures [New]. The zero value of every field means its
// documented default.
type Options struct {
	// MeterProvider makes the meter. Default: otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// TracerProvider makes the tracer of [Metrics.Mailer]'s spans.
	// Default: otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// Outbox, when set, is read at each collection (one bounded Stats
	// query, no seal key) for the passreset.outbox.* gauges. Default nil:
	// no outbox gauges.
	Outbox outbox.Store
	// OutboxLimit bounds the counts of the outbox gauges, as in
	// [outbox.Store.Stats]: a count equal to it means "that many or more".
	// Default 100,000.
	OutboxLimit int
	// Now is the clock of the oldest-age gauge. Default time.Now.
	Now func() time.Time
}

// Metrics records passreset's metrics. It is safe for concurrent use.
type Metrics struct {
	callDuration metric.Float64Histogram
	messages     metric.Int64Counter
	pauses       metric.Int64Counter
	pauseWait    metric.Float64Histogram
	budgetWait   metric.Float64Histogram
	events       metric.Int64Counter
	reg          metric.Registration
	tracer       trace.Tracer
}

// New creates the instruments on opt.MeterProvider's meter.
func New(opt Options) (*Metrics, error) {
	mp := opt.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if opt.OutboxLimit <= 0 {
		opt.OutboxLimit = 100_000
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	tp := opt.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	meter := mp.Meter(ScopeName)
	m := &Metrics{tracer: tp.Tracer(ScopeName)}
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	var err error
	m.callDuration, err = meter.Float64Histogram("passreset.mail.call.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of one call to the mail provider (one message or one batch)."),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30))
	add(err)
	m.messages, err = meter.Int64Counter("passreset.mail.messages", metric.WithUnit("{message}"),
		metric.WithDescription("Messages handed to the mail provider, by outcome."))
	add(err)
	m.pauses, err = meter.Int64Counter("passreset.mail.rate_limit.pauses", metric.WithUnit("{pause}"),
		metric.WithDescription("Calls the mail provider refused for its rate limit."))
	add(err)
	m.pauseWait, err = meter.Float64Histogram("passreset.mail.rate_limit.wait", metric.WithUnit("s"),
		metric.WithDescription("The wait a rate-limit answer asked for."))
	add(err)
	m.budgetWait, err = meter.Float64Histogram("passreset.mail.budget.wait", metric.WithUnit("s"),
		metric.WithDescription("How long a call to the mail provider waited for the shared provider budget (the pace below the provider's rate, or a rate-limit pause)."),
		metric.WithExplicitBucketBoundaries(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
	add(err)
	m.events, err = meter.Int64Counter("passreset.events", metric.WithUnit("{event}"),
		metric.WithDescription("The Service's events, by kind."))
	add(err)
	if opt.Outbox != nil {
		pending, err := meter.Int64ObservableGauge("passreset.outbox.pending", metric.WithUnit("{envelope}"),
			metric.WithDescription("Pending outbox envelopes, every instance together."))
		add(err)
		dead, err := meter.Int64ObservableGauge("passreset.outbox.dead", metric.WithUnit("{envelope}"),
			metric.WithDescription("Outbox envelopes moved aside."))
		add(err)
		age, err := meter.Float64ObservableGauge("passreset.outbox.oldest.age", metric.WithUnit("s"),
			metric.WithDescription("How long the oldest pending outbox envelope has waited; 0 when none."))
		add(err)
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("telemetry: %w", err)
		}
		store, limit, now := opt.Outbox, opt.OutboxLimit, opt.Now
		m.reg, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
			st, err := store.Stats(ctx, limit)
			if err != nil {
				return fmt.Errorf("telemetry: outbox stats: %w", err)
			}
			o.ObserveInt64(pending, int64(st.Pending))
			o.ObserveInt64(dead, int64(st.Dead))
			a := 0.0
			if !st.Oldest.IsZero() {
				a = max(now().Sub(st.Oldest).Seconds(), 0)
			}
			o.ObserveFloat64(age, a)
			return nil
		}, pending, dead, age)
		add(err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	return m, nil
}

// Close stops reading the outbox at collections.
func (m *Metrics) Close() error {
	if m.reg == nil {
		return nil
	}
	return m.reg.Unregister()
}

// knownKind reports whether k is one of reset's event kinds, which are
// recorded as they are; any other is recorded as "other", so that no
// caller's value becomes an attribute.
func knownKind(k reset.EventKind) bool {
	switch k {
	case reset.EventRequested, reset.EventUnknown, reset.EventThrottled,
		reset.EventSent, reset.EventSendFailed, reset.EventCompleted,
		reset.EventInvalid, reset.EventExpired, reset.EventRevoked,
		reset.EventAfterResetFailed, reset.EventFailed, reset.EventRetry,
		reset.EventDead, reset.EventDropped, reset.EventBudgetWait:
		return true
	}
	return false
}

// OnEvent counts e in passreset.events by its kind, with error.type for
// a failure, and records the wait of a [reset.EventBudgetWait] in
// passreset.mail.budget.wait. Set it as [reset.Config.OnEvent], or call it
// from yours.
func (m *Metrics) OnEvent(e reset.Event) {
	if e.Kind == reset.EventBudgetWait {
		m.budgetWait.Record(context.Background(), e.Wait.Seconds())
	}
	kind := string(e.Kind)
	if !knownKind(e.Kind) {
		kind = "other"
	}
	attrs := []attribute.KeyValue{EventKey.String(kind)}
	if c := Class(e.Err); c != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(c))
	}
	m.events.Add(context.Background(), 1, metric.WithAttributes(attrs...))
}

// record records one provider call that took d and handed n messages over.
func (m *Metrics) record(ctx context.Context, d time.Duration, batch bool, n int, err error, perMessage []error) {
	attrs := []attribute.KeyValue{BatchKey.Bool(batch)}
	if c := Class(err); c != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(c))
	}
	m.callDuration.Record(ctx, d.Seconds(), metric.WithAttributes(attrs...))
	var rl *reset.RateLimitError
	if errors.As(err, &rl) || errors.Is(err, reset.ErrRateLimited) {
		m.pauses.Add(ctx, 1)
		if rl != nil {
			m.pauseWait.Record(ctx, rl.RetryAfter.Seconds())
		}
	}
	count := map[string]int64{}
	for i := range n {
		switch {
		case err != nil:
			count[Class(err)]++
		case i < len(perMessage) && perMessage[i] != nil:
			count[Class(perMessage[i])]++
		default:
			count[OutcomeSent]++
		}
	}
	for outcome, k := range count {
		m.messages.Add(ctx, k, metric.WithAttributes(OutcomeKey.String(outcome)))
	}
}

// Mailer returns next, measured: every Send (and SendBatch, when next is
// an [outbox.BatchMailer]) records its duration, its outcome and, for a
// rate-limit answer, the pause, and runs in a client span
// ([SpanSend], [SpanSendBatch]) whose attributes are the batch flag, the
// number of messages and, on failure, error.type: never an ID, an
// address or an error's text. The result keeps next's optional
// capabilities: it is an outbox.BatchMailer when next is one, and a
// [reset.RateLimitedMailer] when next is one.
func (m *Metrics) Mailer(next reset.Mailer) reset.Mailer {
	base := &mailer{m: m, next: next}
	bm, isBatch := next.(outbox.BatchMailer)
	rm, isRate := next.(reset.RateLimitedMailer)
	switch {
	case isBatch && isRate:
		return &batchRateMailer{batchMailer{base, bm}, rm}
	case isBatch:
		return &batchMailer{base, bm}
	case isRate:
		return &rateMailer{base, rm}
	}
	return base
}

type mailer struct {
	m    *Metrics
	next reset.Mailer
}

// Send implements [reset.Mailer].
func (w *mailer) Send(ctx context.Context, msg reset.Message) error {
	ctx, span := w.m.startCall(ctx, SpanSend, 1, false)
	start := time.Now()
	err := w.next.Send(ctx, msg)
	w.m.record(ctx, time.Since(start), false, 1, err, nil)
	endCall(span, err)
	return err
}

type batchMailer struct {
	*mailer
	bm outbox.BatchMailer
}

// SendBatch implements [outbox.BatchMailer].
func (w *batchMailer) SendBatch(ctx context.Context, key string, msgs []reset.Message) ([]error, error) {
	ctx, span := w.m.startCall(ctx, SpanSendBatch, len(msgs), true)
	start := time.Now()
	per, err := w.bm.SendBatch(ctx, key, msgs)
	w.m.record(ctx, time.Since(start), true, len(msgs), err, per)
	endCall(span, err)
	return per, err
}

// MaxBatch implements [outbox.BatchMailer].
func (w *batchMailer) MaxBatch() int { return w.bm.MaxBatch() }

type rateMailer struct {
	*mailer
	rm reset.RateLimitedMailer
}

// ProviderRate implements [reset.RateLimitedMailer].
func (w *rateMailer) ProviderRate() (float64, int) { return w.rm.ProviderRate() }

type batchRateMailer struct {
	batchMailer
	rm reset.RateLimitedMailer
}

// ProviderRate implements [reset.RateLimitedMailer].
func (w *batchRateMailer) ProviderRate() (float64, int) { return w.rm.ProviderRate() }

var (
	_ outbox.BatchMailer      = (*batchMailer)(nil)
	_ reset.RateLimitedMailer = (*rateMailer)(nil)
	_ outbox.BatchMailer      = (*batchRateMailer)(nil)
	_ reset.RateLimitedMailer = (*batchRateMailer)(nil)
)
