package telemetry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/passreset/passreset/httpadapter"
	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
	"github.com/passreset/passreset/telemetry"
)

// injecting is the client side of trace propagation over HTTP: it writes
// the request's trace context into its headers.
type injecting struct{ prop propagation.TextMapPropagator }

func (t injecting) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	t.prop.Inject(r.Context(), propagation.HeaderCarrier(r.Header))
	return http.DefaultTransport.RoundTrip(r)
}

// serverSpan is the server side: each request runs in a server span whose
// parent is the trace context its headers carry.
func serverSpan(tp trace.TracerProvider, prop propagation.TextMapPropagator, name string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tp.Tracer("test").Start(ctx, name+" "+r.URL.Path, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// One trace follows a reset from the HTTP request that asked for it,
// through the outbox's sealed envelope, to the provider call and the
// request resendtest received; a batch call links the requests it
// serves. No span attribute holds an address, a token or a link.
func TestTraceFromRequestToProvider(t *testing.T) {
	ctx := t.Context()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prop := propagation.TraceContext{}
	m, err := telemetry.New(telemetry.Options{MeterProvider: sdkmetric.NewMeterProvider(), TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	api := resendtest.New()
	ts := httptest.NewServer(serverSpan(tp, prop, "resend", api))
	defer ts.Close()
	rm, err := resendmailer.New(resendmailer.Options{APIKey: resendtest.APIKey, From: "Acme <security@acme.example>", BaseURL: ts.URL,
		HTTPClient: &http.Client{Transport: injecting{prop}}})
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	ob, err := outbox.New(store, outbox.Options{Keys: []outbox.SealKey{{ID: "k1", Key: make([]byte, 32)}}, Rate: -1})
	if err != nil {
		t.Fatal(err)
	}
	users := &resettest.Users{}
	users.Add("1", "alice@example.com", "old")
	users.Add("2", "bob@example.com", "old")
	users.Add("3", "carol@example.com", "old")
	svc, err := reset.New(reset.Config{KeepSessions: true, Store: store, Users: users, Mailer: m.Mailer(rm), ResetURL: "https://app.example/reset",
		Queue: ob, Trace: telemetry.Propagation(prop)})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Shutdown(context.Background())
	h, err := httpadapter.New(svc, httpadapter.Options{RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	app := serverSpan(tp, prop, "app", h)
	ask := func(addr string) {
		t.Helper()
		r := httptest.NewRequest("POST", httpadapter.PasswordLostPath, strings.NewReader(`{"email":"`+addr+`"}`))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		app.ServeHTTP(w, r)
		if w.Code != http.StatusAccepted {
			t.Fatalf("POST %s: %d %s", httpadapter.PasswordLostPath, w.Code, w.Body)
		}
	}
	byName := func(name string) []sdktrace.ReadOnlySpan {
		var out []sdktrace.ReadOnlySpan
		for _, s := range exp.GetSpans().Snapshots() {
			if s.Name() == name {
				out = append(out, s)
			}
		}
		return out
	}

	// One request, one email, one call.
	ask("alice@example.com")
	if _, err := ob.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	reqs, sends, calls := byName("app "+httpadapter.PasswordLostPath), byName(telemetry.SpanSend), byName("resend /emails")
	if len(reqs) != 1 || len(sends) != 1 || len(calls) != 1 {
		t.Fatalf("spans: %d requests, %d sends, %d provider calls; want one each", len(reqs), len(sends), len(calls))
	}
	req, send, call := reqs[0].SpanContext(), sends[0], calls[0]
	if send.SpanContext().TraceID() != req.TraceID() || send.Parent().SpanID() != req.SpanID() {
		t.Fatalf("the send span %v (parent %v) is not a child of the request's %v", send.SpanContext(), send.Parent(), req)
	}
	if call.SpanContext().TraceID() != req.TraceID() || call.Parent().SpanID() != send.SpanContext().SpanID() {
		t.Fatalf("the provider's span (parent %v) is not a child of the send span %v", call.Parent(), send.SpanContext())
	}

	// Two requests whose emails go in one batch call: the call is linked
	// to both.
	exp.Reset()
	ask("bob@example.com")
	ask("carol@example.com")
	if _, err := ob.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	reqs, batches := byName("app "+httpadapter.PasswordLostPath), byName(telemetry.SpanSendBatch)
	if len(reqs) != 2 || len(batches) != 1 {
		t.Fatalf("spans: %d requests, %d batch calls; want 2 and 1", len(reqs), len(batches))
	}
	linked := map[trace.SpanID]bool{}
	for _, l := range batches[0].Links() {
		linked[l.SpanContext.SpanID()] = true
	}
	if len(linked) != 2 || !linked[reqs[0].SpanContext().SpanID()] || !linked[reqs[1].SpanContext().SpanID()] {
		t.Fatalf("the batch call's links %v, want the two requests' spans", batches[0].Links())
	}

	for _, s := range append(byName(telemetry.SpanSend), append(sends, batches...)...) {
		for _, kv := range s.Attributes() {
			v := kv.Value.String()
			if strings.ContainsAny(v, "@?/") || strings.Contains(v, "token") {
				t.Errorf("span %s: attribute %s=%q", s.Name(), kv.Key, v)
			}
		}
	}
}
