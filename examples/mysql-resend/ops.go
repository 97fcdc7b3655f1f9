package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/passreset/passreset/health"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/telemetry"
)

// ops is what OPS_ADDR serves: the probes and the metrics.
type ops struct {
	metrics *telemetry.Metrics
	workers health.Runner // the outbox workers of this process
	handler http.Handler  // nil when OPS_ADDR is not set
}

// newOps builds the metrics (Prometheus, when OPS_ADDR is set; nothing
// recorded otherwise) and the handler of OPS_ADDR: /livez, /readyz and
// /metrics.
func newOps(addr string, store outbox.Store, workers int) (*ops, error) {
	o := &ops{}
	if addr == "" {
		m, err := telemetry.New(telemetry.Options{MeterProvider: noop.NewMeterProvider()})
		o.metrics = m
		return o, err
	}
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	if o.metrics, err = telemetry.New(telemetry.Options{
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter)), Outbox: store,
	}); err != nil {
		return nil, err
	}
	checker, ok := store.(interface{ Check(context.Context) error })
	if !ok {
		return nil, errors.New("the store has no Check")
	}
	checks := []health.Check{health.Store(checker.Check), health.Outbox(store, 10*time.Minute)}
	if workers > 0 {
		checks = append(checks, o.workers.Check("outbox workers"))
	}
	mux := http.NewServeMux()
	mux.Handle("GET /livez", health.Live())
	mux.Handle("GET /readyz", health.Ready(health.Options{Checks: checks}))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	o.handler = mux
	return o, nil
}
