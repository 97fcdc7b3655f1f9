package telemetry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/passreset/passreset/internal/opstest"
	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/telemetry"
)

type store interface {
	reset.Store
	outbox.Store
	Migrate(ctx context.Context) error
}

func TestMariaDB(t *testing.T) {
	s, _, _ := opstest.MariaDB(t)
	measure(t, s)
}

func TestPostgreSQL(t *testing.T) {
	s, _, _ := opstest.PostgreSQL(t)
	measure(t, s)
}

// collected is one collection, flattened: a metric's data points by name.
type collected map[string][]point

type point struct {
	attrs attribute.Set
	value float64 // a sum's or gauge's value, a histogram's sum
	count uint64  // a histogram's count
}

func collect(t *testing.T, r *sdkmetric.ManualReader) collected {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	c := collected{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					c[m.Name] = append(c[m.Name], point{attrs: p.Attributes, value: float64(p.Value)})
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					c[m.Name] = append(c[m.Name], point{attrs: p.Attributes, value: float64(p.Value)})
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					c[m.Name] = append(c[m.Name], point{attrs: p.Attributes, value: p.Value})
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					c[m.Name] = append(c[m.Name], point{attrs: p.Attributes, value: p.Sum, count: p.Count})
				}
			default:
				t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return c
}

// sum adds the values (or histogram counts) of name's points whose
// attributes include every one of want.
func (c collected) sum(name string, want ...attribute.KeyValue) float64 {
	total := 0.0
	for _, p := range c[name] {
		match := true
		for _, kv := range want {
			if v, ok := p.attrs.Value(kv.Key); !ok || v != kv.Value {
				match = false
			}
		}
		if match {
			if p.count > 0 {
				total += float64(p.count)
			} else {
				total += p.value
			}
		}
	}
	return total
}

// allowed are the only attribute values this package may record.
var allowed = map[string]bool{
	"permanent": true, "rate_limited": true, "outcome_unknown": true, "temporary": true, "sent": true,
	"other": true, "true": true, "false": true,
}

// audit fails when an attribute value is not from the fixed lists.
func audit(t *testing.T, c collected) {
	t.Helper()
	for name, points := range c {
		for _, p := range points {
			for _, kv := range p.attrs.ToSlice() {
				v := kv.Value.String()
				if kv.Key == telemetry.EventKey {
					continue // checked by knownKind below
				}
				if !allowed[v] {
					t.Errorf("%s: attribute %s=%q is not from a fixed list", name, kv.Key, v)
				}
			}
		}
	}
}

// measure runs a deployment with the outbox on a real store, the real
// resend-go client against resendtest, and reads its metrics.
func measure(t *testing.T, s store) {
	ctx := t.Context()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	m, err := telemetry.New(telemetry.Options{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), Outbox: s})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	api := resendtest.NewServer()
	defer api.Close()
	rm, err := resendmailer.New(resendmailer.Options{APIKey: resendtest.APIKey, From: "Acme <security@acme.example>", BaseURL: api.URL})
	if err != nil {
		t.Fatal(err)
	}
	mailer := m.Mailer(rm)
	if _, ok := mailer.(outbox.BatchMailer); !ok {
		t.Fatal("the measured mailer lost BatchMailer")
	}
	if _, ok := mailer.(reset.RateLimitedMailer); !ok {
		t.Fatal("the measured mailer lost RateLimitedMailer")
	}
	ob, err := outbox.New(s, outbox.Options{Keys: []outbox.SealKey{{ID: "k1", Key: make([]byte, 32)}}, Rate: -1})
	if err != nil {
		t.Fatal(err)
	}
	users := &resettest.Users{}
	users.Add("1", "alice@example.com", "old")
	users.Add("2", "bob@example.com", "old")
	svc, err := reset.New(reset.Config{KeepSessions: true, Store: s, Users: users, Mailer: mailer, ResetURL: "https://app.example/reset", Queue: ob, OnEvent: m.OnEvent})
	if err != nil {
		t.Fatal(err)
	}

	if err := svc.Request(ctx, "alice@example.com", ""); err != nil {
		t.Fatal(err)
	}
	c := collect(t, reader)
	if c.sum("passreset.outbox.pending") != 1 || c.sum("passreset.outbox.dead") != 0 || len(c["passreset.outbox.oldest.age"]) != 1 {
		t.Fatalf("after one request: %+v", c)
	}

	// The provider refuses the first call for its rate limit.
	api.Fail(1, 429, "rate_limit_exceeded")
	if _, err := ob.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := svc.Request(ctx, "bob@example.com", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := ob.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	c = collect(t, reader)
	audit(t, c)
	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"messages sent", c.sum("passreset.mail.messages", telemetry.OutcomeKey.String("sent")), 1},
		{"messages rate limited", c.sum("passreset.mail.messages", telemetry.OutcomeKey.String("rate_limited")), 1},
		{"calls", c.sum("passreset.mail.call.duration"), 2},
		{"calls rate limited", c.sum("passreset.mail.call.duration", attribute.String("error.type", "rate_limited")), 1},
		{"pauses", c.sum("passreset.mail.rate_limit.pauses"), 1},
		{"requested events", c.sum("passreset.events", telemetry.EventKey.String("requested")), 2},
		{"sent events", c.sum("passreset.events", telemetry.EventKey.String("sent")), 1},
		{"pending (alice's email waits for its retry)", c.sum("passreset.outbox.pending"), 1},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if w := c["passreset.mail.rate_limit.wait"]; len(w) != 1 || w[0].value != 1 {
		t.Errorf("rate-limit wait: %+v, want one wait of 1s (resendtest's retry-after)", w)
	}
	if c.sum("passreset.events", telemetry.EventKey.String("send_failed"), attribute.String("error.type", "rate_limited")) < 1 {
		t.Errorf("no send_failed event with error.type rate_limited: %+v", c["passreset.events"])
	}
	if t.Failed() {
		t.Logf("collected: %+v", c)
	}
}

// FuzzAttributes feeds events and mail failures that carry secrets
// everywhere a caller's value can go, and checks that none of it becomes
// an attribute value.
func FuzzAttributes(f *testing.F) {
	f.Add("requested", "alice@example.com", "https://app.example/reset?token=abc", "user-1", "smtp: 550 <alice@example.com> unknown")
	f.Add("dead", "bob@example.com", "tok_3xYz", "", "password hunter2 refused")
	f.Add("sent\x00", "x@y", "", "id", "")
	f.Fuzz(func(t *testing.T, kind, address, secret, userID, errText string) {
		reader := sdkmetric.NewManualReader()
		m, err := telemetry.New(telemetry.Options{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
		if err != nil {
			t.Fatal(err)
		}
		var cause error = errors.New(errText)
		for _, wrap := range []error{nil, reset.ErrPermanent, reset.ErrOutcomeUnknown} {
			e := cause
			if wrap != nil {
				e = errors.Join(cause, wrap)
			}
			m.OnEvent(reset.Event{Kind: reset.EventKind(kind), UserID: userID, MessageID: secret, MailKind: kind, Err: e})
			mailer := m.Mailer(resettest.MailerFunc(func(context.Context, reset.Message) error { return e }))
			mailer.Send(t.Context(), reset.Message{ID: secret, Kind: kind, To: address, Subject: secret, Text: secret + address})
		}
		m.Mailer(resettest.MailerFunc(func(context.Context, reset.Message) error {
			return &reset.RateLimitError{Err: cause}
		})).Send(t.Context(), reset.Message{To: address})
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(t.Context(), &rm); err != nil {
			t.Fatal(err)
		}
		kinds := map[string]bool{"other": true}
		for _, k := range []reset.EventKind{reset.EventRequested, reset.EventUnknown, reset.EventThrottled, reset.EventSent,
			reset.EventSendFailed, reset.EventCompleted, reset.EventInvalid, reset.EventExpired, reset.EventRevoked,
			reset.EventAfterResetFailed, reset.EventFailed, reset.EventRetry, reset.EventDead, reset.EventDropped, reset.EventBudgetWait} {
			kinds[string(k)] = true
		}
		for _, sm := range rm.ScopeMetrics {
			for _, md := range sm.Metrics {
				for _, set := range attributeSets(md.Data) {
					for _, kv := range set.ToSlice() {
						v := kv.Value.String()
						if kv.Key == telemetry.EventKey {
							if !kinds[v] {
								t.Fatalf("%s: event kind %q recorded as is", md.Name, v)
							}
							continue
						}
						if !allowed[v] {
							t.Fatalf("%s: attribute %s=%q is not from a fixed list", md.Name, kv.Key, v)
						}
					}
				}
			}
		}
	})
}

func attributeSets(d metricdata.Aggregation) []attribute.Set {
	var sets []attribute.Set
	switch d := d.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	}
	return sets
}

// Budget waits reach their histogram, from the events the queues report.
func TestBudgetWait(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	m, err := telemetry.New(telemetry.Options{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	if err != nil {
		t.Fatal(err)
	}
	m.OnEvent(reset.Event{Kind: reset.EventBudgetWait, Wait: 250 * time.Millisecond})
	m.OnEvent(reset.Event{Kind: reset.EventBudgetWait, Wait: time.Minute})
	m.OnEvent(reset.Event{Kind: reset.EventSent})
	c := collect(t, reader)
	if w := c["passreset.mail.budget.wait"]; len(w) != 1 || w[0].count != 2 || w[0].value != 60.25 {
		t.Fatalf("passreset.mail.budget.wait = %+v, want 2 waits, 60.25 s in all", w)
	}
	if n := c.sum("passreset.events", telemetry.EventKey.String("budget_wait")); n != 2 {
		t.Fatalf("budget_wait events counted %v, want 2", n)
	}
}
