// Package health serves the probes an orchestrator (Kubernetes, Nomad, a
// load balancer) sends to a passreset deployment: [Live] answers whether
// the process serves HTTP at all, [Ready] whether it can do its work.
//
//	mux.Handle("GET /livez", health.Live())
//	var workers health.Runner
//	mux.Handle("GET /readyz", health.Ready(health.Options{Checks: []health.Check{
//		health.Store(store.Check),            // reachable, usable, schema current
//		health.Outbox(store, 10*time.Minute), // the oldest pending email is not older
//		workers.Check("outbox workers"),      // this process's workers run
//		health.Dial("mailer", "smtp.example.com:587"),
//	}}))
//	go workers.Run(ctx, ob.Run)
//
// Serve the probes on an internal listener: a failing check's error text
// is in the answer, and it may name hosts and tables.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/passreset/passreset/reset/outbox"
)

// Live returns the liveness probe: it answers 200 with {"status":"ok"}
// to every request, and checks nothing else. If it does not answer, the
// process no longer serves HTTP and restarting it is the cure; a database
// or mail outage must not fail it, or the orchestrator would restart
// every instance during the outage.
func Live() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, answer{Status: "ok", Checks: []result{}})
	})
}

// Check is one readiness check: Run returns nil when all is well, or an
// error that says what is wrong. It must honour ctx.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Options configures [Ready]. The zero value of every field means its
// documented default.
type Options struct {
	// Checks are run, all at once, for every probe.
	Checks []Check
	// Timeout bounds each probe: a check still running when it ends fails
	// with "timed out". Default 2 seconds.
	Timeout time.Duration
}

// result is one check's outcome in an answer.
type result struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// answer is a probe's JSON body.
type answer struct {
	Status string   `json:"status"` // "ok" or "fail"
	Checks []result `json:"checks"`
}

// Ready returns the readiness probe: it runs every check of opt at once
// and answers 200 with {"status":"ok","checks":[...]} when all pass, 503
// with {"status":"fail",...} and each failure's error otherwise. The
// answer is never cached (Cache-Control: no-store).
func Ready(opt Options) http.Handler {
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	checks := append([]Check(nil), opt.Checks...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		results := make([]result, len(checks))
		var wg sync.WaitGroup
		for i, c := range checks {
			wg.Go(func() {
				err := run(ctx, c)
				results[i] = result{Name: c.Name, OK: err == nil}
				if err != nil {
					results[i].Error = err.Error()
				}
			})
		}
		wg.Wait()
		a, status := answer{Status: "ok", Checks: results}, http.StatusOK
		for _, res := range results {
			if !res.OK {
				a.Status, status = "fail", http.StatusServiceUnavailable
			}
		}
		writeJSON(w, status, a)
	})
}

// run runs c, turning a panic or a check that outlives ctx into an error.
func run(ctx context.Context, c Check) (err error) {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("check panicked: %v", r)
			}
		}()
		done <- c.Run(ctx)
	}()
	select {
	case err = <-done:
		return err
	case <-ctx.Done():
		return errors.New("timed out")
	}
}

func writeJSON(w http.ResponseWriter, status int, a answer) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(a)
}

// Store is the check "store": it calls check, which for mysqlstore and
// pgstore is their Store.Check (the database answers, the connection is
// usable, the tables are at the schema version this build needs).
func Store(check func(ctx context.Context) error) Check {
	return Check{Name: "store", Run: check}
}

// Outbox is the check "outbox": it reads the outbox's figures from store
// (one bounded query, no seal key) and fails when the oldest pending
// envelope was queued more than maxAge ago, which means that no worker
// of any instance is taking it (none runs, all are stuck, the provider
// or the seal keys refuse everything). The figure is the same for every
// instance, so every instance fails it together: pick maxAge well above
// the longest wait a healthy outbox sees (backoff, a rate-limit pause).
// maxAge <= 0 means 10 minutes.
func Outbox(store outbox.Store, maxAge time.Duration) Check {
	if maxAge <= 0 {
		maxAge = 10 * time.Minute
	}
	return Check{Name: "outbox", Run: func(ctx context.Context) error {
		st, err := store.Stats(ctx, 1)
		if err != nil {
			return err
		}
		if !st.Oldest.IsZero() {
			if age := time.Since(st.Oldest); age > maxAge {
				return fmt.Errorf("the oldest pending email has waited %s (more than %s): no worker is taking it", age.Round(time.Second), maxAge)
			}
		}
		return nil
	}}
}

// Dial is a check named name that opens a TCP connection to address
// (host:port) and closes it: a mail server or a provider's API can be
// reached. It proves nothing about credentials.
func Dial(name, address string) Check {
	return Check{Name: name, Run: func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", address)
		if err != nil {
			return err
		}
		return c.Close()
	}}
}

// Runner runs a long-running function, such as [outbox.Outbox.Run], and
// tells a check whether it still runs. Its zero value is ready to use;
// it is safe for concurrent use.
type Runner struct {
	mu      sync.Mutex
	running int
	ended   error // why the last run ended, if it did
	started bool
}

// Run calls f(ctx) and returns what it returns; while it runs, the checks
// of r pass.
func (r *Runner) Run(ctx context.Context, f func(ctx context.Context) error) error {
	r.mu.Lock()
	r.running++
	r.started = true
	r.mu.Unlock()
	err := f(ctx)
	r.mu.Lock()
	r.running--
	r.ended = err
	r.mu.Unlock()
	return err
}

// Check returns a check named name that passes while a Run of r runs,
// and fails before the first Run and after every Run has returned.
func (r *Runner) Check(name string) Check {
	return Check{Name: name, Run: func(context.Context) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		switch {
		case r.running > 0:
			return nil
		case !r.started:
			return errors.New("not started")
		case r.ended != nil:
			return fmt.Errorf("stopped: %w", r.ended)
		}
		return errors.New("stopped")
	}}
}
