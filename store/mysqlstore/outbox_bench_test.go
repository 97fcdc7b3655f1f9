package mysqlstore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"golang.org/x/time/rate"

	"github.com/passreset/passreset/internal/proctest"
	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/mysqlstore"
)

// BenchmarkOutboxBudgets measures the public request (Service.Request
// with the durable outbox: one INSERT) against its budgets. On a shared
// machine the load drifts within seconds, so each sub-benchmark
// interleaves the two things it compares, batch by batch (alternating
// which goes first), and reports their ratio:
//
//   - backlog: 256 sequential requests to a Service whose outbox holds
//     100,000 pending envelopes, then 256 to one whose outbox is empty.
//     Budget: p50 with the backlog <= 1.2 × p50 without.
//   - concurrent8: 8 goroutines × 64 requests through the Service, then
//     the same through the floor: the INSERT of the same row (an envelope
//     the Service queued, read back, with a fresh ID each time) sent by
//     database/sql and the same driver, with nothing around it. Like the
//     store's, it carries its values as literals. Budget: the Service's
//     requests per second >= 0.8 × the floor's.
//
// Between batches, with the timer stopped, the envelopes the batch queued
// are deleted, so that the backlog stays as named. Outbox.MaxPending is
// raised above the backlog so that nothing is dropped; the Services still
// count their outbox (up to MaxPending) in the background every second.
func BenchmarkOutboxBudgets(b *testing.B) {
	newSvc := func(b *testing.B, s *mysqlstore.Store) *reset.Service {
		in, err := proctest.NewInstance(s, &resettest.Users{}, &resettest.Mailer{}, proctest.NewSealKey(),
			outbox.Options{MaxPending: 1_000_000}, nil)
		if err != nil {
			b.Fatal(err)
		}
		svc := in.Service
		b.Cleanup(func() {
			if n := svc.Dropped(); n != 0 {
				b.Errorf("%d requests dropped", n)
			}
		})
		return svc
	}
	clean := func(b *testing.B, db *bun.DB, s *mysqlstore.Store) {
		if _, err := db.ExecContext(b.Context(), fmt.Sprintf("DELETE FROM `%soutbox` WHERE id NOT LIKE 'fill-%%'", s.TablePrefix())); err != nil {
			b.Fatal(err)
		}
	}

	b.Run("backlog", func(b *testing.B) {
		db := openDB(b, testDSN(b))
		empty, full := newStore(b, db, mysqlstore.Options{}), newStore(b, db, mysqlstore.Options{})
		fillOutbox(b, db, full, 100_000)
		svcs := []*reset.Service{newSvc(b, empty), newSvc(b, full)}
		lat := make([][]time.Duration, 2)
		round := 0
		for b.Loop() {
			for k := range 2 {
				which := (k + round) % 2
				l, _ := batch(b, 1, 256, func(g, i int) error {
					return svcs[which].Request(b.Context(), fmt.Sprintf("user%d-%d-%d@example.com", round, g, i), "")
				})
				lat[which] = append(lat[which], l...)
			}
			round++
			b.StopTimer()
			clean(b, db, empty)
			clean(b, db, full)
			b.StartTimer()
		}
		p50 := func(l []time.Duration) float64 { return float64(percentile(l, 0.5)) / float64(time.Millisecond) }
		p99 := func(l []time.Duration) float64 { return float64(percentile(l, 0.99)) / float64(time.Millisecond) }
		b.ReportMetric(p50(lat[0]), "p50-empty-ms")
		b.ReportMetric(p50(lat[1]), "p50-100k-ms")
		b.ReportMetric(p99(lat[0]), "p99-empty-ms")
		b.ReportMetric(p99(lat[1]), "p99-100k-ms")
		b.ReportMetric(p50(lat[1])/p50(lat[0]), "p50-ratio")
	})

	b.Run("concurrent8", func(b *testing.B) {
		db := openDB(b, testDSN(b))
		s := newStore(b, db, mysqlstore.Options{})
		svc := newSvc(b, s)
		ctx := b.Context()
		if err := svc.Request(ctx, "model@example.com", ""); err != nil {
			b.Fatal(err)
		}
		var kind, sealed, keyID, nonce []byte
		var notBefore, created string
		if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT kind, sealed, key_id, nonce, CAST(not_before AS CHAR), CAST(created_at AS CHAR) FROM `%soutbox`", s.TablePrefix())).
			Scan(&kind, &sealed, &keyID, &nonce, &notBefore, &created); err != nil {
			b.Fatal(err)
		}
		insert := fmt.Sprintf("INSERT INTO `%soutbox` (id, kind, sealed, key_id, attempts, claims, not_before, created_at,"+
			" dead, last_error, lease_owner, lease_until, nonce) VALUES ('%%s', X'%x', X'%x', X'%x', 0, 0, '%s', '%s', 0, '', NULL, NULL, X'%x')",
			s.TablePrefix(), kind, sealed, keyID, notBefore, created, nonce)
		var n [2]int
		var wall [2]time.Duration
		round := 0
		for b.Loop() {
			for k := range 2 {
				which := (k + round) % 2
				l, d := batch(b, 8, 64, func(g, i int) error {
					if which == 0 {
						return svc.Request(ctx, fmt.Sprintf("user%d-%d-%d@example.com", round, g, i), "")
					}
					_, err := db.DB.ExecContext(ctx, fmt.Sprintf(insert, fmt.Sprintf("raw-%d-%d-%d", round, g, i)))
					return err
				})
				n[which] += len(l)
				wall[which] += d
				b.StopTimer()
				clean(b, db, s)
				b.StartTimer()
			}
			round++
		}
		service, floor := float64(n[0])/wall[0].Seconds(), float64(n[1])/wall[1].Seconds()
		b.ReportMetric(service, "service-req/s")
		b.ReportMetric(floor, "floor-req/s")
		b.ReportMetric(service/floor, "ratio")
	})
}

// batch runs f from goroutines, each times, and returns every call's
// latency and the batch's wall time.
func batch(b *testing.B, goroutines, each int, f func(g, i int) error) ([]time.Duration, time.Duration) {
	return timed(b, goroutines, func(_, i int) bool { return i < each }, f)
}

// timed runs f(g, 0), f(g, 1), ... from goroutines g while more(g, i)
// holds (more is not timed), and returns every call's latency and the
// wall time of the whole.
func timed(b *testing.B, goroutines int, more func(g, i int) bool, f func(g, i int) error) ([]time.Duration, time.Duration) {
	var lat []time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for g := range goroutines {
		wg.Go(func() {
			var mine []time.Duration
			for i := 0; more(g, i); i++ {
				t := time.Now()
				if err := f(g, i); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return lat, time.Since(start)
}

// fillOutbox inserts n pending envelopes, created an hour ago, whose IDs
// start with "fill-", with a few thousand rows per INSERT.
func fillOutbox(b *testing.B, db *bun.DB, s *mysqlstore.Store, n int) {
	at := time.Now().UTC().Add(-time.Hour).Format("2006-01-02 15:04:05.000000")
	for start := 0; start < n; start += 5000 {
		var q strings.Builder
		fmt.Fprintf(&q, "INSERT INTO `%soutbox` (id, kind, sealed, key_id, attempts, claims,"+
			" not_before, created_at, dead, last_error, lease_owner, lease_until, nonce) VALUES ", s.TablePrefix())
		for i := start; i < min(n, start+5000); i++ {
			if i > start {
				q.WriteByte(',')
			}
			fmt.Fprintf(&q, "('fill-%07d', 'request', REPEAT('s', 150), 'k', 0, 0, '%s', '%s', 0, '', NULL, NULL, X'00000000000000000000000000000000')",
				i, at, at)
		}
		if _, err := db.ExecContext(b.Context(), q.String()); err != nil {
			b.Fatal(err)
		}
	}
}

// percentile returns the p-th quantile of lat, which it sorts.
func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[min(len(lat)-1, int(p*float64(len(lat))))]
}

// BenchmarkOutboxDrain measures how fast the outbox drains against the
// fake Resend: each iteration queues a batch of public requests for
// accounts (timer stopped), then drains it. unpaced uses one Drain
// goroutine and no budget; workers4 runs the outbox's Run with four
// workers; paced2 has the fake enforce Resend's default 2 requests in any
// sliding second (refused ones counted) and leaves the budget at its
// default (0.9x the rate resendmailer advertises), and queues 10
// messages. It reports messages per second, and for paced2 how many
// requests the fake refused with 429.
func BenchmarkOutboxDrain(b *testing.B) {
	for _, c := range []struct {
		name    string
		batch   int
		rate    rate.Limit
		workers int // 0: Drain in this goroutine
	}{
		{"unpaced", 200, rate.Inf, 0},
		{"unpaced/workers4", 200, rate.Inf, 4},
		{"paced2", 10, 2, 0},
	} {
		b.Run(c.name, func(b *testing.B) {
			db := openDB(b, testDSN(b))
			s := newStore(b, db, mysqlstore.Options{})
			fake := resendtest.NewServer()
			b.Cleanup(fake.Close)
			if c.rate != rate.Inf {
				fake.SetSlidingRateLimit(int(c.rate), time.Second)
			}
			mailer, err := resendmailer.New(resendmailer.Options{APIKey: resendtest.APIKey, From: "reset@example.com",
				BaseURL: fake.URL})
			if err != nil {
				b.Fatal(err)
			}
			users := &resettest.Users{}
			opt := outbox.Options{Workers: max(c.workers, 1), Lease: time.Minute} // paced sends take a while
			if c.rate == rate.Inf {
				opt.Rate = -1 // no budget
			}
			in, err := proctest.NewInstance(s, users, mailer, proctest.NewSealKey(), opt, nil)
			if err != nil {
				b.Fatal(err)
			}
			svc := in.Service
			ctx := b.Context()
			sent, round := 0, 0
			for b.Loop() {
				b.StopTimer()
				round++
				for i := range c.batch {
					email := fmt.Sprintf("user%d-%d@example.com", round, i)
					users.Add(email, email, "old password")
					if err := svc.Request(ctx, email, ""); err != nil {
						b.Fatal(err)
					}
				}
				want := len(fake.Emails()) + c.batch
				b.StartTimer()
				if c.workers == 0 {
					n, err := in.Outbox.Drain(ctx)
					if err != nil || n != c.batch {
						b.Fatalf("Drain = %d, %v; want %d", n, err, c.batch)
					}
				} else {
					wctx, cancel := context.WithCancel(ctx)
					done := make(chan error, 1)
					go func() { done <- in.Outbox.Run(wctx) }()
					if _, err := fake.WaitEmails(ctx, want); err != nil {
						b.Fatal(err)
					}
					cancel()
					if err := <-done; err != nil {
						b.Fatal(err)
					}
				}
				sent += c.batch
				if got := len(fake.Emails()); got != want {
					b.Fatalf("%d emails at the fake, want %d", got, want)
				}
			}
			b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "msgs/s")
			if c.rate != rate.Inf {
				b.ReportMetric(float64(fake.RateLimited()), "429s")
			}
			if c.rate != rate.Inf && fake.MaxPerWindow() > int(c.rate)+1 {
				b.Errorf("%d requests in one second, paced at %v/s", fake.MaxPerWindow(), c.rate)
			}
		})
	}
}

// BenchmarkOutboxStats measures Stats with 100,000 envelopes
// pending, counting up to 1,000 and up to 100,000 (the default
// Outbox.MaxPending, which the Service counts up to in the background
// in the background).
func BenchmarkOutboxStats(b *testing.B) {
	db := openDB(b, testDSN(b))
	s := newStore(b, db, mysqlstore.Options{})
	fillOutbox(b, db, s, 100_000)
	for _, limit := range []int{1000, 100_000} {
		b.Run(fmt.Sprintf("pending100000/limit%d", limit), func(b *testing.B) {
			for b.Loop() {
				st, err := s.Stats(b.Context(), limit)
				if err != nil || st.Pending != limit {
					b.Fatalf("Stats = %+v, %v; want %d pending", st, err, limit)
				}
			}
		})
	}
}
