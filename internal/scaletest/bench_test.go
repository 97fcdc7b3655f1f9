package scaletest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset/outbox"
)

// queue creates fresh tables, queues n reset requests through a Service
// that runs no worker, and returns the prefix.
func queue(b *testing.B, k kind, dsn string, n int) string {
	b.Helper()
	prefix := newTables(b, k, dsn)
	mailer, err := newMailer("http://127.0.0.1:1/", 0, false) // never called
	if err != nil {
		b.Fatal(err)
	}
	enqueue(b, instance(b, newStore(b, k, dsn, prefix), seedUsers(n), mailer, outbox.Options{}, nil), n)
	return prefix
}

// limitedFake is a fake Resend that allows 2 requests per API key in any
// sliding second and counts the refused ones in the window, as the
// strictest reading of Resend's default limit does.
func limitedFake(b *testing.B) *resendtest.Server {
	fake := resendtest.NewServer()
	b.Cleanup(fake.Close)
	fake.SetSlidingRateLimit(2, time.Second)
	return fake
}

// waitEmails waits until the fake accepted n emails.
func waitEmails(b *testing.B, fake *resendtest.Server, n int) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if _, err := fake.WaitEmails(ctx, n); err != nil {
		b.Fatal(err)
	}
}

// three starts three worker processes (two outbox workers each, nothing
// rate-related configured) on the tables with prefix.
func three(b *testing.B, s workerSettings) []*worker {
	b.Helper()
	var ws []*worker
	for range 3 {
		ws = append(ws, startWorker(b, s))
	}
	return ws
}

// settings are the worker settings of a benchmark on kind k.
func settings(k kind, dsn, prefix string, fake *resendtest.Server, n int, single bool) workerSettings {
	return workerSettings{kind: k, dsn: dsn, prefix: prefix, resendURL: fake.URL + "/", users: n, workers: 2, single: single}
}

// report states the fake's counts: API calls, 429 answers, and the most
// calls one sliding second saw.
func report(b *testing.B, fake *resendtest.Server, elapsed time.Duration) {
	st := fake.Stats()
	b.ReportMetric(elapsed.Seconds(), "s")
	b.ReportMetric(float64(st.Calls), "calls")
	b.ReportMetric(float64(st.RateLimited), "429s")
	b.ReportMetric(100*float64(st.RateLimited)/float64(max(st.Calls, 1)), "%429")
	b.ReportMetric(float64(st.Calls)/elapsed.Seconds(), "calls/s")
	b.ReportMetric(float64(st.MaxPerWindow), "max/window")
	logRefusals(b, fake)
}

// logRefusals logs, for each call answered 429, the gaps between the
// calls that reached the fake in the second before it: what made the
// window full.
func logRefusals(b *testing.B, fake *resendtest.Server) {
	reqs := fake.Requests()
	for i, r := range reqs {
		if r.Status != http.StatusTooManyRequests {
			continue
		}
		var gaps []string
		prev := r.Received
		for j := i - 1; j >= 0 && r.Received.Sub(reqs[j].Received) < time.Second; j-- {
			gaps = append(gaps, prev.Sub(reqs[j].Received).Round(time.Millisecond).String())
			prev = reqs[j].Received
		}
		b.Logf("call %d answered 429; gaps to the calls before it in its second: %v", r.N, gaps)
	}
}

// drainThree queues n requests and drains them with three worker
// processes; single sends one email per API call. It checks that each
// recipient got one email and reports the fake's counts.
func drainThree(b *testing.B, k kind, n int, single bool) {
	dsn := k.dsn(b)
	needBench(b)
	for range b.N {
		prefix := queue(b, k, dsn, n)
		fake := limitedFake(b)
		ws := three(b, settings(k, dsn, prefix, fake, n, single))
		start := time.Now()
		for _, w := range ws {
			w.start(b)
		}
		waitEmails(b, fake, n)
		elapsed := time.Since(start)
		for _, w := range ws {
			w.stop(b)
		}
		emails := onceEach(b, fake, n)
		report(b, fake, elapsed)
		if !single {
			keys := map[string]bool{}
			for _, e := range emails {
				if !e.Batch || !strings.HasPrefix(e.IdempotencyKey, "batch/") {
					b.Fatalf("email %s not sent in a batch (key %q)", e.ID, e.IdempotencyKey)
				}
				keys[e.IdempotencyKey] = true
			}
			b.ReportMetric(float64(len(keys)), "batches")
		}
	}
}

// Three worker processes (two workers each) drain 300 queued reset
// requests against the sliding 2-a-second limit, with nothing
// configured: the budget is 0.9x the rate resendmailer advertises,
// shared through the database. With one email per call the budget
// allows 300 calls in about 167 s; with batches it is 3 calls.
func BenchmarkThreeInstances(b *testing.B) {
	eachKind(b, func(b *testing.B, k kind) {
		b.Run("batches", func(b *testing.B) { drainThree(b, k, 300, false) })
		b.Run("one-per-call", func(b *testing.B) { drainThree(b, k, 300, true) })
	})
}

// Three worker processes drain 10,000 queued reset requests through the
// batch endpoint (100 emails a call) against the sliding 2-a-second
// limit. Each recipient gets one email, every one in a batch.
func BenchmarkBatchDrain(b *testing.B) {
	eachKind(b, func(b *testing.B, k kind) { drainThree(b, k, 10000, false) })
}

// Three worker processes drain 10,000 queued reset requests in batches;
// after 2,000, 4,000 and 6,000 emails, one process after the other is
// stopped gracefully (its Run's context cancelled, as on SIGTERM) and a
// replacement started. The fake counts the 429 answers of the whole run.
func BenchmarkRollingRestart(b *testing.B) {
	eachKind(b, func(b *testing.B, k kind) {
		dsn := k.dsn(b)
		needBench(b)
		const n = 10000
		for range b.N {
			prefix := queue(b, k, dsn, n)
			fake := limitedFake(b)
			s := settings(k, dsn, prefix, fake, n, false)
			ws := three(b, s)
			start := time.Now()
			for _, w := range ws {
				w.start(b)
			}
			for i := range ws {
				waitEmails(b, fake, (i+1)*2000)
				before := fake.Stats().Calls
				ws[i].stop(b)
				ws[i] = startWorker(b, s)
				ws[i].start(b)
				b.Logf("process %d replaced between calls %d and %d", i+1, before, fake.Stats().Calls+1)
			}
			waitEmails(b, fake, n)
			elapsed := time.Since(start)
			for _, w := range ws {
				w.stop(b)
			}
			onceEach(b, fake, n)
			report(b, fake, elapsed)
		}
	})
}

// holder stands between one worker process and the fake: it passes
// requests through until hold is called, then holds every request (never
// forwarding it) until the client is gone, recording its recipients.
type holder struct {
	proxy   *httputil.ReverseProxy
	mu      sync.Mutex
	holding bool
	to      map[string]bool // the recipients of the held requests
	arrived chan struct{}   // a request was held
}

func newHolder(b *testing.B, fake *resendtest.Server) *httptest.Server {
	u, err := url.Parse(fake.URL)
	if err != nil {
		b.Fatal(err)
	}
	h := &holder{proxy: httputil.NewSingleHostReverseProxy(u), to: map[string]bool{}, arrived: make(chan struct{}, 100)}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv
}

func (h *holder) hold() {
	h.mu.Lock()
	h.holding = true
	h.mu.Unlock()
}

func (h *holder) recipients() map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.to
}

func (h *holder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	holding := h.holding
	h.mu.Unlock()
	if !holding {
		h.proxy.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var emails []struct{ To json.RawMessage }
	if json.Unmarshal(body, &emails) != nil { // POST /emails: one object
		var one struct{ To json.RawMessage }
		json.Unmarshal(body, &one)
		emails = append(emails, one)
	}
	h.mu.Lock()
	for _, e := range emails {
		var list []string
		if json.Unmarshal(e.To, &list) != nil {
			var s string
			json.Unmarshal(e.To, &s)
			list = []string{s}
		}
		for _, t := range list {
			h.to[t] = true
		}
	}
	h.mu.Unlock()
	h.arrived <- struct{}{}
	<-r.Context().Done() // until the client is gone
}

// Three worker processes drain 10,000 queued reset requests in batches.
// After 1,000 emails, the calls of one of them (the victim) are held
// before they reach the fake, and when both its workers are held mid-send
// (200 claimed messages) it is killed with SIGKILL. The time is from the
// kill to the last of the victim's claimed messages that the fake
// accepted (from the two other processes); backlog is how many of the
// 10,000 were still unsent at that moment.
func BenchmarkKillRecovery(b *testing.B) {
	eachKind(b, func(b *testing.B, k kind) {
		dsn := k.dsn(b)
		needBench(b)
		const n = 10000
		for range b.N {
			prefix := queue(b, k, dsn, n)
			fake := limitedFake(b)
			proxy := newHolder(b, fake)
			h := proxy.Config.Handler.(*holder)
			s := settings(k, dsn, prefix, fake, n, false)
			vs := s
			vs.resendURL = proxy.URL + "/"
			ws := []*worker{startWorker(b, vs), startWorker(b, s), startWorker(b, s)}
			for _, w := range ws {
				w.start(b)
			}
			waitEmails(b, fake, 1000)
			h.hold()
			<-h.arrived
			<-h.arrived // both workers of the victim are mid-send
			killed := ws[0].kill(b)
			claimed := h.recipients()
			waitEmails(b, fake, n)
			for _, w := range ws[1:] {
				w.stop(b)
			}
			emails := onceEach(b, fake, n)
			var last time.Time
			for _, e := range emails {
				if claimed[e.To[0]] && e.Received.After(last) {
					last = e.Received
				}
			}
			backlog := 0
			for _, e := range emails {
				if e.Received.After(last) {
					backlog++
				}
			}
			b.ReportMetric(last.Sub(killed).Seconds(), "s_kill_to_last")
			b.ReportMetric(float64(len(claimed)), "claimed")
			b.ReportMetric(float64(backlog), "backlog")
			b.ReportMetric(float64(fake.Stats().RateLimited), "429s")
		}
	})
}
