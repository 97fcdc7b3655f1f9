package scaletest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset/outbox"
)

// queue creates fresh tables, queues n reset requests through a Service
// that runs no worker, and returns the prefix.
func queue(b *testing.B, dsn string, n int) string {
	b.Helper()
	prefix := newTables(b, dsn)
	mailer, err := newMailer("http://127.0.0.1:1/", 0, false) // never called
	if err != nil {
		b.Fatal(err)
	}
	enqueue(b, instance(b, newStore(b, dsn, prefix), seedUsers(n), mailer, outbox.Options{}, nil), n)
	return prefix
}

// limitedFake is a fake Resend limited to 2 requests a second per API
// key, as Resend is by default.
func limitedFake(b *testing.B) *resendtest.Server {
	fake := resendtest.NewServer()
	b.Cleanup(fake.Close)
	fake.SetRateLimit(2, time.Second)
	return fake
}

// drain starts workers, waits until the fake accepted n emails and
// returns how long that took from the start signal.
func drain(b *testing.B, fake *resendtest.Server, workers []*worker, n int) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	for _, w := range workers {
		w.start(b)
	}
	if _, err := fake.WaitEmails(ctx, n); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	for _, w := range workers {
		w.stop(b)
	}
	return elapsed
}

// drainThree queues n requests and drains them with three worker
// processes (two workers each) against a limited fake; single sends one
// email per API call.
func drainThree(b *testing.B, dsn string, n int, single bool) (*resendtest.Server, time.Duration) {
	b.Helper()
	prefix := queue(b, dsn, n)
	fake := limitedFake(b)
	var ws []*worker
	for range 3 {
		ws = append(ws, startWorker(b, dsn, workerSettings{prefix: prefix, resendURL: fake.URL + "/", users: n, workers: 2, single: single}))
	}
	return fake, drain(b, fake, ws, n)
}

// report states the fake's counts: API calls, 429 answers, and the most
// calls one rate-limit window saw.
func report(b *testing.B, fake *resendtest.Server, elapsed time.Duration) {
	st := fake.Stats()
	b.ReportMetric(elapsed.Seconds(), "s")
	b.ReportMetric(float64(st.Calls), "calls")
	b.ReportMetric(float64(st.RateLimited), "429s")
	b.ReportMetric(100*float64(st.RateLimited)/float64(max(st.Calls, 1)), "%429")
	b.ReportMetric(float64(st.Calls)/elapsed.Seconds(), "calls/s")
	b.ReportMetric(float64(st.MaxPerWindow), "max/window")
}

// Three worker processes (two workers each) drain 300 queued reset
// requests, one email per API call, against the 2-a-second limit, with
// nothing configured: the budget is the one resendmailer advertises,
// shared through the database. The budget allows 300 calls in 150 s.
func BenchmarkThreeInstances(b *testing.B) {
	dsn := getDSN(b)
	needBench(b)
	const n = 300
	for range b.N {
		fake, elapsed := drainThree(b, dsn, n, true)
		onceEach(b, fake, n)
		report(b, fake, elapsed)
		b.ReportMetric(elapsed.Seconds()/150, "x_budget")
	}
}

// Three worker processes drain 10,000 queued reset requests through the
// batch endpoint (100 emails a call) against the 2-a-second limit. Each
// recipient gets one email; every email came under a batch key holding
// at most 100.
func BenchmarkBatchDrain(b *testing.B) {
	dsn := getDSN(b)
	needBench(b)
	const n = 10000
	for range b.N {
		fake, elapsed := drainThree(b, dsn, n, false)
		emails := onceEach(b, fake, n)
		perKey := map[string]int{}
		for _, e := range emails {
			if !e.Batch || !strings.HasPrefix(e.IdempotencyKey, "batch/") {
				b.Fatalf("email %s not sent in a batch (key %q)", e.ID, e.IdempotencyKey)
			}
			perKey[e.IdempotencyKey]++
		}
		for k, c := range perKey {
			if c > resendtest.MaxBatch {
				b.Fatalf("batch %s holds %d emails", k, c)
			}
		}
		report(b, fake, elapsed)
		b.ReportMetric(float64(len(perKey)), "batches")
	}
}

// A worker process claims 200 queued requests (two workers, 100 each) and
// is killed with SIGKILL while the provider holds both its batch calls
// (they were never processed). Another worker process, started at the
// kill, sends every one of them once. The time is from the kill to the
// last email the fake accepted; the lease is the default, 15 s, renewed
// every 5 s while the first worker lived.
func BenchmarkKillRecovery(b *testing.B) {
	dsn := getDSN(b)
	needBench(b)
	const n = 200
	for range b.N {
		prefix := queue(b, dsn, n)
		fake := limitedFake(b)
		arrived := make(chan struct{}, 2)
		var hold = make(chan struct{})
		fake.SetHook(func(resendtest.Request) resendtest.Fault {
			select {
			case <-hold:
				return resendtest.Fault{}
			default:
			}
			arrived <- struct{}{}
			return resendtest.Fault{Delay: time.Hour} // until the client is gone
		})
		settings := workerSettings{prefix: prefix, resendURL: fake.URL + "/", users: n, workers: 2}
		victim := startWorker(b, dsn, settings)
		rescuer := startWorker(b, dsn, settings)
		victim.start(b)
		<-arrived
		<-arrived // both workers hold 100 claims each, mid-send
		killed := victim.kill(b)
		close(hold)
		rescuer.start(b)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		if _, err := fake.WaitEmails(ctx, n); err != nil {
			b.Fatal(err)
		}
		cancel()
		rescuer.stop(b)
		emails := onceEach(b, fake, n)
		last := slices.MaxFunc(emails, func(x, y resendtest.Email) int { return x.Received.Compare(y.Received) }).Received
		b.ReportMetric(last.Sub(killed).Seconds(), "s_kill_to_last")
		b.ReportMetric(float64(fake.Stats().Calls), "calls")
	}
}
