package clustertest

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/mysqlstore"
)

func (s *spread) Enqueue(ctx context.Context, e outbox.Envelope) error {
	return s.pick().Enqueue(ctx, e)
}
func (s *spread) Claim(ctx context.Context, worker string, now, leaseUntil time.Time, max int) ([]outbox.Envelope, error) {
	return s.pick().Claim(ctx, worker, now, leaseUntil, max)
}
func (s *spread) Renew(ctx context.Context, worker string, ids []string, leaseUntil time.Time) ([]string, error) {
	return s.pick().Renew(ctx, worker, ids, leaseUntil)
}
func (s *spread) Save(ctx context.Context, worker string, e outbox.Envelope, hold bool) error {
	return s.pick().Save(ctx, worker, e, hold)
}
func (s *spread) Replace(ctx context.Context, worker string, remove []string, add []outbox.Envelope, holdUntil time.Time) error {
	return s.pick().Replace(ctx, worker, remove, add, holdUntil)
}
func (s *spread) Stats(ctx context.Context, limit int) (outbox.Stats, error) {
	return s.pick().Stats(ctx, limit)
}
func (s *spread) Dead(ctx context.Context, limit int) ([]outbox.Envelope, error) {
	return s.pick().Dead(ctx, limit)
}
func (s *spread) Revive(ctx context.Context, id string, now time.Time) error {
	return s.pick().Revive(ctx, id, now)
}
func (s *spread) PruneDead(ctx context.Context, before time.Time, limit int) (int, error) {
	return s.pick().PruneDead(ctx, before, limit)
}
func (s *spread) Reserve(ctx context.Context, key string, now time.Time, interval time.Duration, burst int) (time.Time, error) {
	return s.pick().Reserve(ctx, key, now, interval, burst)
}
func (s *spread) Pause(ctx context.Context, key string, until time.Time) error {
	return s.pick().Pause(ctx, key, until)
}

// TestOutboxConformance runs the whole outbox.Store suite with every call
// sent to the next node in turn: claims made through different nodes at
// once stay disjoint, a Replace through one node is atomic against claims
// through another, and dead envelopes are pruned.
func TestOutboxConformance(t *testing.T) {
	c := getCluster(t)
	var cnt counters
	resettest.TestOutboxStore(t, func(t *testing.T) outbox.Store {
		return &spread{stores: c.stores(t, newTables(t, c), &cnt, mysqlstore.Options{})}
	})
	t.Logf("retried: %v", &cnt)
}

// TestOutboxWorkers: outbox workers run in Services on all three nodes
// while public requests are queued through all three; every message is
// sent exactly once, every known address gets one link that works, and
// the requests for unknown addresses send nothing.
func TestOutboxWorkers(t *testing.T) {
	c := getCluster(t)
	var cnt counters
	stores := c.stores(t, newTables(t, c), &cnt, mysqlstore.Options{})
	const known, unknown = 150, 50
	users, mailer := &resettest.Users{}, &resettest.Mailer{}
	addUsers(users, "o", known)
	key := make([]byte, 32)
	rand.Read(key)
	var sent [3]atomic.Int64
	var svcs []*reset.Service
	var obs []*outbox.Outbox
	for i, s := range stores {
		ob, err := outbox.New(s, outbox.Options{
			Keys:     []outbox.SealKey{{ID: "k1", Key: key}},
			Workers:  2,
			WorkerID: fmt.Sprintf("node%d", i+1),
		})
		if err != nil {
			t.Fatal(err)
		}
		obs = append(obs, ob)
		svcs = append(svcs, services(t, []*mysqlstore.Store{s}, users, mailer, func(cfg *reset.Config) {
			cfg.Queue = ob
			cfg.OnEvent = func(e reset.Event) {
				if e.Kind == reset.EventSent {
					sent[i].Add(1)
				}
			}
		})[0])
	}
	ctx, cancel := context.WithCancel(t.Context())
	var running sync.WaitGroup
	for _, ob := range obs {
		running.Go(func() {
			if err := ob.Run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	defer func() { cancel(); running.Wait() }()

	began := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= known+unknown {
					return
				}
				email := fmt.Sprintf("o%d@example.com", i) // o150 and later have no account
				if err := svcs[i%3].Request(ctx, email, ""); err != nil {
					t.Errorf("Request on node %d: %v", i%3+1, err)
				}
			}
		})
	}
	wg.Wait()
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	if _, err := mailer.Wait(wctx, known); err != nil {
		t.Fatal(err)
	}
	// Every envelope is deleted after its send; there is no event for
	// that in another process, so look until the outbox is empty.
	pollUntil(t, time.Minute, "the outbox to be empty", func(ctx context.Context) bool {
		st, err := stores[0].Stats(ctx, 1000)
		return err == nil && st.Pending == 0
	})
	took := time.Since(began)
	cancel()
	running.Wait()

	msgs := mailer.Messages()
	ids, to := map[string]int{}, map[string]int{}
	for _, m := range msgs {
		ids[m.ID]++
		to[m.To]++
	}
	if len(msgs) != known || len(ids) != known || len(to) != known {
		t.Fatalf("%d messages, %d distinct IDs, %d distinct addresses; want %d of each: every message sent once, one per known address",
			len(msgs), len(ids), len(to), known)
	}
	for i, m := range msgs {
		if _, err := svcs[i%3].Inspect(t.Context(), resettest.Token(m.Text)); err != nil {
			t.Errorf("the link mailed to %s does not work on node %d: %v", m.To, i%3+1, err)
		}
	}
	t.Logf("%d public requests (%d for unknown addresses) through 3 nodes, drained by workers on 3 nodes in %v: %d messages, each once; sent per node %d/%d/%d; retried: %v",
		known+unknown, unknown, took.Round(time.Millisecond), len(msgs), sent[0].Load(), sent[1].Load(), sent[2].Load(), &cnt)
}
