package mysqlstore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/mysqlstore"
)

// BenchmarkPruneWhileRotating measures what a prune costs the requests
// that run beside it. It fills the tokens table with
// PASSRESET_PRUNE_ROWS expired records (default 20,000, enough to check
// that it runs; the budget is measured at 1,000,000) with INSERT ...
// SELECT from MariaDB's sequence engine, then times Rotate from two goroutines that together start one
// rotation every 2.5 ms (a steady 400 requests per second, not a
// saturating loop: a server has CPU to spare for upkeep) while the prune
// runs in windows: it prunes for two seconds, rests for three, prunes
// for two, and so on until nothing is left. Rotations that start while
// it prunes count as "during"; those that start in the last two seconds
// of a rest count as "alone" (the second after a window is left out, for
// InnoDB's purge to settle). Both sides thus share the machine's
// drifting load, which timing "alone" first and "during" after cannot
// cancel on a shared machine. It reports the p50 and p99 of Rotate in
// both, their ratio (budget: p99 during the prune within 2× of p99
// alone) and the prune's rate counted over its windows only. Run it with
// -benchtime 1x: one iteration is the whole experiment.
//
// The service variant is the library's own loop: Service.Prune with the
// default Outbox.PruneBatch, its context ending with each window. The
// others call Store.Prune in batches of the named size and after each
// rest the named multiple of the time the batch took (rest0: none),
// to show what the pacing buys.
func BenchmarkPruneWhileRotating(b *testing.B) {
	b.Run("service", func(b *testing.B) { benchmarkPruneWhileRotating(b, 0, 0) })
	for _, c := range []struct {
		batch int
		rest  float64
	}{{1000, 0}, {1000, 1}, {1000, 3}, {250, 3}, {1000, 9}} {
		b.Run(fmt.Sprintf("batch%d/rest%g", c.batch, c.rest), func(b *testing.B) { benchmarkPruneWhileRotating(b, c.batch, c.rest) })
	}
}

// benchmarkPruneWhileRotating runs the experiment; batch 0 means
// Service.Prune.
func benchmarkPruneWhileRotating(b *testing.B, batch int, rest float64) {
	rows := 20_000
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
	svc, _, _ := newService(b, s, "prune", resettest.NewClock(now))

	// The phases a rotation can start in.
	const (
		alone = iota
		during
		leftOut
	)
	const (
		rotators, users, every = 2, 500, 5 * time.Millisecond
		window, settle, calm   = 2 * time.Second, time.Second, 2 * time.Second
	)
	var phase atomic.Int32
	var stop atomic.Bool
	// rotate rotates until stop, and sorts the latencies by the phase at
	// each rotation's start.
	rotate := func() (byPhase [3][]time.Duration) {
		tick := time.NewTicker(every / rotators) // each tick starts one rotation
		defer tick.Stop()
		var mu sync.Mutex
		timed(b, rotators, func(_, i int) bool {
			<-tick.C
			return !stop.Load()
		}, func(g, i int) error {
			ph := phase.Load()
			start := time.Now()
			err := s.Rotate(ctx, reset.Record{Hash: sha256.Sum256(fmt.Append(nil, g, i, now)),
				UserID: fmt.Sprintf("live-%d", (g*users+i)%(rotators*users)), Email: "live@example.com",
				CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			d := time.Since(start)
			mu.Lock()
			byPhase[ph] = append(byPhase[ph], d)
			mu.Unlock()
			return err
		})
		return byPhase
	}

	// pruneFor prunes until the window ends or nothing is left, which it
	// reports.
	var total reset.Pruned
	pruneFor := func(window time.Duration) (bool, error) {
		if batch == 0 {
			wctx, cancel := context.WithTimeout(ctx, window)
			defer cancel()
			n, err := svc.Prune(wctx)
			total.Tokens += n.Tokens
			total.Cooldowns += n.Cooldowns
			if err != nil && wctx.Err() != nil && ctx.Err() == nil {
				return false, nil // the window ended
			}
			return err == nil, err
		}
		for end := time.Now().Add(window); time.Now().Before(end); {
			start := time.Now()
			n, err := s.Prune(ctx, now, batch)
			total.Tokens += n.Tokens
			total.Cooldowns += n.Cooldowns
			if err != nil || n.Tokens < batch {
				return true, err
			}
			time.Sleep(time.Duration(rest * float64(time.Since(start))))
		}
		return false, nil
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

		var pruneTime time.Duration
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer stop.Store(true)
			phase.Store(leftOut)
			time.Sleep(settle) // the rotations get going
			phase.Store(alone)
			time.Sleep(calm)
			for {
				phase.Store(during)
				start := time.Now()
				finished, err := pruneFor(window)
				pruneTime += time.Since(start)
				phase.Store(leftOut)
				if err != nil {
					b.Error(err)
					return
				}
				if finished {
					return
				}
				time.Sleep(settle)
				phase.Store(alone)
				time.Sleep(calm)
			}
		}()
		got := rotate()
		<-done
		// A statement that a window's end cancelled may still have
		// committed, uncounted: the table tells what is left.
		var left int
		if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*) FROM `%stokens` WHERE user_id LIKE 'bulk-%%'", s.TablePrefix())).Scan(&left); err != nil {
			b.Fatal(err)
		}
		if left != 0 || total.Tokens > rows {
			b.Fatalf("pruned %+v of %d tokens; %d left", total, rows, left)
		}
		b.Logf("pruned %d records in %v of windows; %d rotations alone, %d during the prune",
			rows, pruneTime, len(got[alone]), len(got[during]))
		pct := func(lat []time.Duration, p float64) float64 {
			return float64(percentile(lat, p)) / float64(time.Millisecond)
		}
		b.ReportMetric(pct(got[alone], 0.50), "p50-alone-ms")
		b.ReportMetric(pct(got[alone], 0.99), "p99-alone-ms")
		b.ReportMetric(pct(got[during], 0.50), "p50-pruning-ms")
		b.ReportMetric(pct(got[during], 0.99), "p99-pruning-ms")
		b.ReportMetric(pct(got[during], 0.99)/pct(got[alone], 0.99), "p99-ratio")
		b.ReportMetric(float64(rows)/pruneTime.Seconds(), "pruned/s")
	}
}
