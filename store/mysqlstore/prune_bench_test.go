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
// PASSRESET_PRUNE_ROWS expired records (default 100,000; the budget is
// measured at 1,000,000) with INSERT ... SELECT from MariaDB's sequence
// engine, then times Rotate from two goroutines that together start one
// rotation every 2.5 ms (a steady 400 requests per second, not a
// saturating loop: a server has CPU to spare for upkeep), first alone,
// then while Service.Prune removes the expired records in batches of
// Outbox.PruneBatch rows (the default 1,000, and 100). It reports the p50
// and p99 of Rotate in both phases, their ratio (budget: p99 during the
// prune within 2× of p99 without) and the prune's rate. Run it with
// -benchtime 1x: one iteration is the whole experiment.
//
// The paced variant calls Store.Prune in batches of 1,000 and after each
// waits as long as the batch took, so that the prune uses at most half of
// a core: it shows what pacing in the core's prune loop would buy. The
// interleaved variant prunes in batches of 1,000 for one second, then
// rests for one and a half, and so on; rotations that start while it
// prunes count as "during", those that start in the last second of a
// rest as "alone" (the half second after a burst is left out). Both
// sides then share the machine's drifting load, which the
// alone-then-during variants cannot cancel.
func BenchmarkPruneWhileRotating(b *testing.B) {
	for _, c := range []struct {
		name  string
		batch int
		mode  string
	}{{"batch1000", 1000, ""}, {"batch100", 100, ""}, {"batch1000/paced", 1000, "paced"}, {"batch1000/interleaved", 1000, "interleaved"}} {
		b.Run(c.name, func(b *testing.B) { benchmarkPruneWhileRotating(b, c.batch, c.mode) })
	}
}

func benchmarkPruneWhileRotating(b *testing.B, batch int, mode string) {
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
	// rotate rotates until stop, and sorts the latencies by the phase
	// (0 alone, 1 during a prune, 2 left out) at each rotation's start.
	var phase atomic.Int32
	rotate := func(stop func(n int) bool) (byPhase [3][]time.Duration) {
		tick := time.NewTicker(every / rotators) // each tick starts one rotation
		defer tick.Stop()
		var mu sync.Mutex
		timed(b, rotators, func(_, i int) bool {
			<-tick.C
			return !stop(i)
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

		var without, during []time.Duration
		if mode != "interleaved" {
			without = rotate(func(i int) bool { return i >= alone })[0]
			phase.Store(1)
		}

		var pruned reset.Pruned
		var pruneTime time.Duration
		done := make(chan struct{})
		go func() {
			defer close(done)
			start := time.Now()
			var err error
			switch mode {
			case "paced":
				pruned, err = pacedPrune(ctx, s, now, batch)
			case "interleaved":
				pruned, err = burstPrune(ctx, s, now, batch, &phase)
			default:
				pruned, err = svc.Prune(context.WithoutCancel(ctx))
			}
			pruneTime = time.Since(start)
			if err != nil {
				b.Error(err)
			}
		}()
		got := rotate(func(int) bool {
			select {
			case <-done:
				return true
			default:
				return false
			}
		})
		<-done
		during = got[1]
		if mode == "interleaved" {
			without = got[0]
		}
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

// pruneOnce runs one Store.Prune of batch rows per kind, adds what it
// removed to total, and reports whether there may be more.
func pruneOnce(ctx context.Context, s *mysqlstore.Store, now time.Time, batch int, total *reset.Pruned) (bool, error) {
	n, err := s.Prune(ctx, now, now.Add(-24*time.Hour), batch)
	total.Tokens += n.Tokens
	total.Cooldowns += n.Cooldowns
	total.Dead += n.Dead
	return err == nil && (n.Tokens == batch || n.Cooldowns == batch || n.Dead == batch), err
}

// pacedPrune prunes in batches, waiting after each as long as it took.
func pacedPrune(ctx context.Context, s *mysqlstore.Store, now time.Time, batch int) (reset.Pruned, error) {
	var total reset.Pruned
	for {
		start := time.Now()
		if more, err := pruneOnce(ctx, s, now, batch, &total); !more {
			return total, err
		}
		time.Sleep(time.Since(start))
	}
}

// burstPrune prunes in batches for a second at a time (phase 1), then
// rests for half a second (phase 2) and one more (phase 0), until nothing
// is left.
func burstPrune(ctx context.Context, s *mysqlstore.Store, now time.Time, batch int, phase *atomic.Int32) (reset.Pruned, error) {
	var total reset.Pruned
	defer phase.Store(2)
	for {
		phase.Store(1)
		for burst := time.Now(); time.Since(burst) < time.Second; {
			if more, err := pruneOnce(ctx, s, now, batch, &total); !more {
				return total, err
			}
		}
		phase.Store(2)
		time.Sleep(500 * time.Millisecond)
		phase.Store(0)
		time.Sleep(time.Second)
	}
}
