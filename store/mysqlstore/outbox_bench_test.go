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

	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/mysqlstore"
)

// BenchmarkOutboxPublicRequest measures Service.Request with the
// durable outbox on MariaDB: the public password-lost request, which is
// the same work for every address (one INSERT). Each iteration is a batch
// of requests from some goroutines; between batches, with the timer
// stopped, the queued envelopes are deleted, so that the backlog stays as
// the sub-benchmark names it. Outbox.MaxPending is raised above the
// backlog so that nothing is dropped; the Service still counts the outbox
// (up to MaxPending) in the background every second, as in production. It
// reports requests per second and the 50th and 99th percentiles of one
// request's latency. The budgets compare it with BenchmarkOutboxRawInsert:
//
//	p50(sequential/backlog100000) <= 1.2 × p50(sequential)
//	req/s(concurrent8) >= 0.8 × rows/s(BenchmarkOutboxRawInsert/concurrent8)
func BenchmarkOutboxPublicRequest(b *testing.B) {
	for _, c := range []struct {
		name             string
		goroutines, each int
		backlog          int
	}{
		{"sequential", 1, 256, 0},
		{"sequential/backlog100000", 1, 256, 100_000},
		{"concurrent8", 8, 64, 0},
		{"concurrent8/backlog100000", 8, 64, 100_000},
	} {
		b.Run(c.name, func(b *testing.B) {
			db := openDB(b, testDSN(b))
			s := newStore(b, db, mysqlstore.Options{})
			cfg := outboxConfig(s, &resettest.Users{}, &resettest.Mailer{}, newSealKey())
			cfg.Outbox.MaxPending = 1_000_000
			svc, err := reset.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			ctx := b.Context()
			fillOutbox(b, db, s, c.backlog)
			clean := fmt.Sprintf("DELETE FROM `%soutbox` WHERE id NOT LIKE 'fill-%%'", s.TablePrefix())
			lat := concurrently(b, c.goroutines, c.each, func(g, i int) error {
				return svc.Request(ctx, fmt.Sprintf("user%d-%d@example.com", g, i), "")
			}, func() {
				if _, err := db.ExecContext(ctx, clean); err != nil {
					b.Fatal(err)
				}
			})
			if n := svc.Dropped(); n != 0 {
				b.Fatalf("%d requests dropped", n)
			}
			b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "req/s")
			reportPercentiles(b, lat)
		})
	}
}

// BenchmarkOutboxRawInsert is the floor of BenchmarkOutboxPublicRequest:
// the INSERT of the same row (an envelope that Service.Request queued,
// read back, with a fresh ID each time) sent by database/sql and the same
// driver through a prepared statement, with nothing around it, from the
// same number of goroutines.
func BenchmarkOutboxRawInsert(b *testing.B) {
	for _, c := range []struct {
		name             string
		goroutines, each int
	}{
		{"sequential", 1, 256},
		{"concurrent8", 8, 64},
	} {
		b.Run(c.name, func(b *testing.B) {
			db := openDB(b, testDSN(b))
			s := newStore(b, db, mysqlstore.Options{})
			ctx := b.Context()
			svc, err := reset.New(outboxConfig(s, &resettest.Users{}, &resettest.Mailer{}, newSealKey()))
			if err != nil {
				b.Fatal(err)
			}
			if err := svc.Request(ctx, "user0-0@example.com", ""); err != nil {
				b.Fatal(err)
			}
			var kind, sealed, keyID, nonce []byte
			var notBefore, created string
			if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT kind, sealed, key_id, nonce, CAST(not_before AS CHAR), CAST(created_at AS CHAR) FROM `%soutbox`", s.TablePrefix())).
				Scan(&kind, &sealed, &keyID, &nonce, &notBefore, &created); err != nil {
				b.Fatal(err)
			}
			stmt, err := db.DB.PrepareContext(ctx, fmt.Sprintf("INSERT INTO `%soutbox` (id, kind, sealed, key_id, attempts, claims, not_before, created_at,"+
				" dead, last_error, lease_owner, lease_until, nonce) VALUES (?, ?, ?, ?, 0, 0, ?, ?, 0, '', NULL, NULL, ?)", s.TablePrefix()))
			if err != nil {
				b.Fatal(err)
			}
			defer stmt.Close()
			clean := fmt.Sprintf("DELETE FROM `%soutbox`", s.TablePrefix())
			round := 0
			lat := concurrently(b, c.goroutines, c.each, func(g, i int) error {
				_, err := stmt.ExecContext(ctx, fmt.Sprintf("raw-%d-%d-%d", round, g, i), kind, sealed, keyID, notBefore, created, nonce)
				return err
			}, func() {
				round++
				if _, err := db.ExecContext(ctx, clean); err != nil {
					b.Fatal(err)
				}
			})
			b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "req/s")
			reportPercentiles(b, lat)
		})
	}
}

// concurrently runs b.Loop's iterations: in each, goroutines call f each
// times and time every call; after each, with the timer stopped, it calls
// between. It returns every latency.
func concurrently(b *testing.B, goroutines, each int, f func(g, i int) error, between func()) []time.Duration {
	var lat []time.Duration
	var mu sync.Mutex
	for b.Loop() {
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				mine := make([]time.Duration, 0, each)
				for i := range each {
					start := time.Now()
					if err := f(g, i); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
		}
		wg.Wait()
		b.StopTimer()
		between()
		b.StartTimer()
	}
	return lat
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

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// BenchmarkOutboxDrain measures how fast the outbox drains against the
// fake Resend: each iteration queues a batch of public requests for
// accounts (timer stopped), then drains it. unpaced uses one DrainOutbox
// goroutine and a mailer without pacing; workers4 runs RunOutbox with four
// workers; paced2 paces the mailer at Resend's default 2 requests per
// second, with the fake enforcing that limit, and queues 10 messages. It
// reports messages per second, and for paced2 how many requests the fake
// refused with 429.
func BenchmarkOutboxDrain(b *testing.B) {
	for _, c := range []struct {
		name    string
		batch   int
		rate    rate.Limit
		workers int // 0: DrainOutbox in this goroutine
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
				fake.SetRateLimit(int(c.rate), time.Second)
			}
			mailer, err := resendmailer.New(resendmailer.Options{APIKey: resendtest.APIKey, From: "reset@example.com",
				BaseURL: fake.URL, MaxAttempts: 1, Rate: c.rate})
			if err != nil {
				b.Fatal(err)
			}
			users := &resettest.Users{}
			cfg := outboxConfig(s, users, mailer, newSealKey())
			cfg.Outbox.Workers = max(c.workers, 1)
			cfg.SendTimeout, cfg.Outbox.Lease = 10*time.Second, time.Minute // paced sends take a while
			svc, err := reset.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
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
					n, err := svc.DrainOutbox(ctx)
					if err != nil || n != c.batch {
						b.Fatalf("DrainOutbox = %d, %v; want %d", n, err, c.batch)
					}
				} else {
					wctx, cancel := context.WithCancel(ctx)
					done := make(chan error, 1)
					go func() { done <- svc.RunOutbox(wctx) }()
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
