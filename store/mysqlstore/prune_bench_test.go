package mysqlstore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/mysqlstore"
)

// BenchmarkPruneWhileRotating measures what a prune costs the requests
// that run beside it. It fills the tokens table with
// PASSRESET_PRUNE_ROWS expired records (default 100,000; the budget is
// measured at 1,000,000) with INSERT ... SELECT from MariaDB's sequence
// engine, then times Rotate from two goroutines that together start one
// rotation every 2.5 ms (a steady 400 requests per second, not a saturating loop: a server
// has CPU to spare for upkeep), first alone, then while Service.Prune
// removes the expired records in batches of Outbox.PruneBatch rows (the
// default 1,000, and 100). It reports
// the p50 and p99 of Rotate in both phases, their ratio (budget: p99
// during the prune within 2× of p99 without) and the prune's rate. Run it
// with -benchtime 1x: one iteration is the whole experiment.
//
// The paced variant does not go through Service.Prune: it calls
// Store.Prune in batches of 1,000 and after each one waits as long as the
// batch took, so that the prune uses at most half of one core. It shows
// what pacing in the core's prune loop would buy.
func BenchmarkPruneWhileRotating(b *testing.B) {
	for _, c := range []struct {
		name  string
		batch int
		paced bool
	}{{"batch1000", 1000, false}, {"batch100", 100, false}, {"batch1000/paced", 1000, true}} {
		b.Run(c.name, func(b *testing.B) { benchmarkPruneWhileRotating(b, c.batch, c.paced) })
	}
}

func benchmarkPruneWhileRotating(b *testing.B, batch int, paced bool) {
	rows := 100_000
	if v := os.Getenv("PASSRESET_PRUNE_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("PASSRESET_PRUNE_ROWS=%q: want a positive number", v)
		}
		rows = n
	}
	db := openDB(b, testDSN(b))
	s := newStore(b, db, mysqlstore.Options{})
	ctx := b.Context()
	now := time.Now().UTC()
	past := now.Add(-2 * time.Hour).Format("2006-01-02 15:04:05.000000")
	pastEnd := now.Add(-time.Hour).Format("2006-01-02 15:04:05.000000")
	cfg := outboxConfig(s, &resettest.Users{}, &resettest.Mailer{}, newSealKey())
	cfg.Now = resettest.NewClock(now).Now
	cfg.Outbox.PruneBatch = batch
	svc, err := reset.New(cfg)
	if err != nil {
		b.Fatal(err)
	}

	const rotators, users, alone, every = 2, 500, 1000, 5 * time.Millisecond
	rotate := func(stop func(n int) bool) []time.Duration {
		tick := time.NewTicker(every / rotators) // each tick starts one rotation
		defer tick.Stop()
		lat, _ := timed(b, rotators, func(_, i int) bool {
			<-tick.C
			return !stop(i)
		}, func(g, i int) error {
			return s.Rotate(ctx, reset.Record{Hash: sha256.Sum256(fmt.Append(nil, g, i, now)),
				UserID: fmt.Sprintf("live-%d", (g*users+i)%(rotators*users)), Email: "live@example.com",
				CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
		})
		return lat
	}

	for b.Loop() {
		b.StopTimer()
		start := time.Now()
		const chunk = 100_000
		for first := 1; first <= rows; first += chunk {
			last := min(rows, first+chunk-1)
			q := fmt.Sprintf("INSERT INTO `%stokens` (user_id, token_hash, email, created_at, expires_at)"+
				" SELECT CONCAT('bulk-', seq), UNHEX(SHA2(seq, 256)), 'bulk@example.com', '%s', '%s' FROM seq_%d_to_%d",
				s.TablePrefix(), past, pastEnd, first, last)
			if _, err := db.ExecContext(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
		b.Logf("loaded %d expired records in %v", rows, time.Since(start))
		b.StartTimer()

		without := rotate(func(i int) bool { return i >= alone })

		var pruned reset.Pruned
		var pruneTime time.Duration
		done := make(chan struct{})
		go func() {
			defer close(done)
			start := time.Now()
			var err error
			if paced {
				pruned, err = pacedPrune(ctx, s, now, batch)
			} else {
				pruned, err = svc.Prune(context.WithoutCancel(ctx))
			}
			pruneTime = time.Since(start)
			if err != nil {
				b.Error(err)
			}
		}()
		during := rotate(func(int) bool {
			select {
			case <-done:
				return true
			default:
				return false
			}
		})
		<-done
		if pruned.Tokens != rows {
			b.Fatalf("pruned %+v, want %d tokens", pruned, rows)
		}
		b.Logf("pruned %d records in %v; %d rotations alone, %d during the prune", rows, pruneTime, len(without), len(during))
		pct := func(lat []time.Duration, p float64) float64 {
			return float64(percentile(lat, p)) / float64(time.Millisecond)
		}
		b.ReportMetric(pct(without, 0.50), "p50-alone-ms")
		b.ReportMetric(pct(without, 0.99), "p99-alone-ms")
		b.ReportMetric(pct(during, 0.50), "p50-pruning-ms")
		b.ReportMetric(pct(during, 0.99), "p99-pruning-ms")
		b.ReportMetric(pct(during, 0.99)/pct(without, 0.99), "p99-ratio")
		b.ReportMetric(float64(rows)/pruneTime.Seconds(), "pruned/s")
	}
}

// pacedPrune prunes in batches, waiting after each as long as it took.
func pacedPrune(ctx context.Context, s *mysqlstore.Store, now time.Time, batch int) (reset.Pruned, error) {
	var total reset.Pruned
	for {
		start := time.Now()
		n, err := s.Prune(ctx, now, now.Add(-24*time.Hour), batch)
		total.Tokens += n.Tokens
		total.Cooldowns += n.Cooldowns
		total.Dead += n.Dead
		if err != nil || (n.Tokens < batch && n.Cooldowns < batch && n.Dead < batch) {
			return total, err
		}
		time.Sleep(time.Since(start))
	}
}
