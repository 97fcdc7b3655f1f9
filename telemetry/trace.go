package telemetry

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/passreset/passreset/reset"
)

// Propagation returns a [reset.Propagation] that carries the trace
// context through the Service's queue with p: set it as
// [reset.Config.Trace], and the span of the HTTP request that asked for a
// reset (or of any ctx passed to Request, RequestTrusted and Complete)
// becomes the parent of the span of the provider call that sends its
// email, through the outbox's sealed envelope. A batch call, which sends
// the emails of many requests, is linked to each of their spans instead.
// A nil p means otel.GetTextMapPropagator(), read at each use. Only the
// propagator's fields are carried (W3C traceparent and tracestate for
// [propagation.TraceContext]); use a propagator that carries no baggage
// with secrets in it.
func Propagation(p propagation.TextMapPropagator) reset.Propagation {
	get := func() propagation.TextMapPropagator {
		if p != nil {
			return p
		}
		return otel.GetTextMapPropagator()
	}
	return reset.Propagation{
		Inject: func(ctx context.Context) map[string]string {
			c := propagation.MapCarrier{}
			get().Inject(ctx, c)
			if len(c) == 0 {
				return nil
			}
			return c
		},
		Extract: func(ctx context.Context, traces []map[string]string) context.Context {
			if len(traces) == 1 {
				return get().Extract(ctx, propagation.MapCarrier(traces[0]))
			}
			var links []trace.Link
			for _, t := range traces {
				sc := trace.SpanContextFromContext(get().Extract(context.Background(), propagation.MapCarrier(t)))
				if sc.IsValid() {
					links = append(links, trace.Link{SpanContext: sc})
				}
			}
			return context.WithValue(ctx, linksKey{}, links)
		},
	}
}

type linksKey struct{}

// Span names of the provider calls.
const (
	SpanSend      = "passreset.mail.send"       // one Mailer.Send
	SpanSendBatch = "passreset.mail.send_batch" // one BatchMailer.SendBatch
)

// MessagesKey is the attribute of a call's span that says how many
// messages it handed over.
const MessagesKey = attribute.Key("passreset.mail.messages")

// startCall starts the client span of one provider call that hands n
// messages over: a child of ctx's span, linked to the spans of a batch's
// requests.
func (m *Metrics) startCall(ctx context.Context, name string, n int, batch bool) (context.Context, trace.Span) {
	links, _ := ctx.Value(linksKey{}).([]trace.Link)
	return m.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithLinks(links...),
		trace.WithAttributes(BatchKey.Bool(batch), MessagesKey.Int(n)))
}

// endCall ends span with err's class: never its text, which may quote an
// address.
func endCall(span trace.Span, err error) {
	if c := Class(err); c != "" {
		span.SetAttributes(semconv.ErrorTypeKey.String(c))
		span.SetStatus(codes.Error, c)
	}
	span.End()
}
