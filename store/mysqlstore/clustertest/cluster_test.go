package clustertest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/mysqlstore"
)

// races is how many concurrent calls the race tests make.
const races = 100

// base is the race tests' reference time.
var base = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

func newHash(t *testing.T) reset.Hash {
	var h reset.Hash
	rand.Read(h[:])
	return h
}

// TestConformance runs the core's Store suite on node 1, then with every
// call sent to the next node in turn, so that a write through one node is
// read, consumed or raced through another.
func TestConformance(t *testing.T) {
	c := getCluster(t)
	var cnt counters
	stores := c.stores(t, newTables(t, c), &cnt, mysqlstore.Options{})
	t.Run("node1", func(t *testing.T) {
		resettest.TestStore(t, func(*testing.T) reset.Store { return stores[0] })
	})
	t.Run("spread", func(t *testing.T) {
		sp := &spread{stores: stores}
		resettest.TestStore(t, func(*testing.T) reset.Store { return sp })
	})
	t.Logf("retried: %v", &cnt)
}

// TestCheckRequiresSyncWait: on a Galera node the store refuses a
// connection that does not wait for the cluster before reads, UPDATEs and
// DELETEs, unless told to accept stale reads.
func TestCheckRequiresSyncWait(t *testing.T) {
	c := getCluster(t)
	prefix := newTables(t, c)
	ctx := t.Context()
	for _, tc := range []struct {
		syncWait   string // "" drops the setting
		allowStale bool
		ok         bool
	}{
		{"", false, false},
		{"0", false, false},
		{"1", false, false}, // waits before reads, not before UPDATE and DELETE
		{"2", false, false}, // waits before UPDATE and DELETE, not before reads
		{"3", false, true},
		{"7", false, true},
		{"", true, true},
		{"1", true, true},
	} {
		dsn := c.withSyncWait(t, tc.syncWait).dsns[1]
		s, err := mysqlstore.New(openDB(t, dsn, nil), mysqlstore.Options{TablePrefix: prefix, AllowStaleReads: tc.allowStale})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Check(ctx)
		switch {
		case tc.ok && err != nil:
			t.Errorf("wsrep_sync_wait=%q, AllowStaleReads %v: Check: %v", tc.syncWait, tc.allowStale, err)
		case !tc.ok && err == nil:
			t.Errorf("wsrep_sync_wait=%q: Check accepted a Galera connection that may read stale data", tc.syncWait)
		case !tc.ok && !strings.Contains(err.Error(), "add wsrep_sync_wait=3 to the DSN"):
			t.Errorf("wsrep_sync_wait=%q: Check's error does not say what to do: %v", tc.syncWait, err)
		case !tc.ok:
			if err := s.Migrate(ctx); err == nil {
				t.Errorf("wsrep_sync_wait=%q: Migrate succeeded, want Check's error", tc.syncWait)
			}
			t.Logf("refused as it should be: %v", err)
		}
	}
}

// TestRotationRace: 100 rotations of one user's token, spread round-robin
// over the three nodes and started at once, leave exactly one valid
// token, the same one on every node.
func TestRotationRace(t *testing.T) {
	c := getCluster(t)
	var cnt counters
	stores := c.stores(t, newTables(t, c), &cnt, mysqlstore.Options{})
	ctx := t.Context()
	recs := make([]reset.Record, races)
	for i := range recs {
		at := base.Add(time.Duration(i) * time.Millisecond)
		recs[i] = reset.Record{Hash: newHash(t), UserID: "racer", Email: "racer@example.com", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	}
	errs := make([]error, races)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range recs {
		wg.Go(func() {
			<-start
			errs[i] = stores[i%3].Rotate(ctx, recs[i])
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	took := time.Since(began)
	for i, err := range errs {
		if err != nil {
			t.Errorf("Rotate %d on node %d: %v", i, i%3+1, err)
		}
	}
	var winner reset.Hash
	for n, s := range stores {
		valid := 0
		for _, r := range recs {
			_, err := s.Lookup(ctx, r.Hash)
			switch {
			case err == nil:
				valid++
				if n == 0 {
					winner = r.Hash
				} else if r.Hash != winner {
					t.Errorf("node %d keeps another token than node 1", n+1)
				}
			case !errors.Is(err, reset.ErrNotFound):
				t.Fatalf("Lookup on node %d: %v", n+1, err)
			}
		}
		if valid != 1 {
			t.Errorf("node %d: %d rotations left %d valid tokens, want exactly 1", n+1, races, valid)
		}
	}
	t.Logf("%d rotations over 3 nodes in %v; retried: %v", races, took.Round(time.Millisecond), &cnt)
}

// TestCompletionRace: 100 completions of one token through Services on
// the three nodes, started at once: exactly one changes the password, every
// other one is told the token is invalid, and no other error happens.
func TestCompletionRace(t *testing.T) {
	c := getCluster(t)
	var cnt counters
	stores := c.stores(t, newTables(t, c), &cnt, mysqlstore.Options{})
	users, mailer := &resettest.Users{}, &resettest.Mailer{}
	users.Add("ada", "ada@example.com", "old password")
	svcs := services(t, stores, users, mailer, nil)
	ctx := t.Context()
	for round := range 3 {
		iss, err := svcs[round].RequestTrusted(ctx, reset.TrustedRequest{Email: "ada@example.com", SkipSend: true})
		if err != nil {
			t.Fatal(err)
		}
		token := resettest.Token(iss.Link)
		var wins, invalid atomic.Int64
		var winner atomic.Value
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range races {
			wg.Go(func() {
				<-start
				pw := fmt.Sprintf("new password %d-%03d", round, i)
				_, err := svcs[i%3].Complete(ctx, reset.Completion{Token: token, Password: pw})
				switch {
				case err == nil:
					wins.Add(1)
					winner.Store(pw)
				case errors.Is(err, reset.ErrInvalidToken):
					invalid.Add(1)
				default:
					t.Errorf("Complete on node %d: %v", i%3+1, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || invalid.Load() != races-1 {
			t.Fatalf("round %d: %d completions of one token: %d won, %d invalid; want exactly 1 winner", round, races, wins.Load(), invalid.Load())
		}
		if got := users.Password("ada"); got != winner.Load() {
			t.Fatalf("round %d: password is %q, want the winner's %q", round, got, winner.Load())
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	msgs, err := mailer.Wait(wctx, 3)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("%d password-changed notices (%v), want 3: one per winner", len(msgs), err)
	}
	t.Logf("3 rounds of %d completions over 3 nodes: one winner each; retried: %v", races, &cnt)
}

// TestCooldownRace: concurrent cooldowns for one key on the three nodes
// start exactly one, and a running cooldown holds on every node.
func TestCooldownRace(t *testing.T) {
	c := getCluster(t)
	var cnt counters
	stores := c.stores(t, newTables(t, c), &cnt, mysqlstore.Options{})
	ctx := t.Context()
	const rounds = 10
	for round := range rounds {
		k := newHash(t)
		now := base.Add(time.Duration(round) * time.Hour)
		var started atomic.Int64
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range races {
			wg.Go(func() {
				<-start
				ok, err := stores[i%3].Cooldown(ctx, k, "", now, now.Add(time.Minute))
				if err != nil {
					t.Errorf("Cooldown on node %d: %v", i%3+1, err)
				}
				if ok {
					started.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if started.Load() != 1 {
			t.Fatalf("round %d: %d concurrent cooldowns for one key over 3 nodes started %d, want exactly 1", round, races, started.Load())
		}
		// It holds on every node until it ends, then any node may start the next.
		for n, s := range stores {
			if ok, err := s.Cooldown(ctx, k, "", now.Add(59*time.Second), now.Add(2*time.Minute)); ok || err != nil {
				t.Fatalf("round %d: node %d started a cooldown while one runs (%v, %v)", round, n+1, ok, err)
			}
		}
		if ok, err := stores[round%3].Cooldown(ctx, k, "", now.Add(time.Minute), now.Add(2*time.Minute)); !ok || err != nil {
			t.Fatalf("round %d: node %d did not start a cooldown after the last one ended (%v, %v)", round, round%3+1, ok, err)
		}
	}
	t.Logf("%d rounds of %d cooldowns over 3 nodes: one started each; retried: %v", rounds, races, &cnt)
}

// TestQuotaRace: concurrent spends of one address's daily budget through
// the three nodes never exceed it, and a spent budget holds on every node
// until its first use is a day old.
func TestQuotaRace(t *testing.T) {
	c := getCluster(t)
	var cnt counters
	stores := c.stores(t, newTables(t, c), &cnt, mysqlstore.Options{})
	ctx := t.Context()
	const rounds, limit, day = 5, 5, 24 * time.Hour
	for round := range rounds {
		k := newHash(t)
		now := base.Add(time.Duration(round) * 48 * time.Hour)
		var spent atomic.Int64
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range races {
			wg.Go(func() {
				<-start
				owner := "" // half without an owner, half each with its own
				if i%2 == 1 {
					owner = fmt.Sprintf("req-%d-%d", round, i)
				}
				ok, err := stores[i%3].Spend(ctx, k, owner, now.Add(time.Duration(i)*time.Microsecond), day, limit)
				if err != nil {
					t.Errorf("Spend on node %d: %v", i%3+1, err)
				}
				if ok {
					spent.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if spent.Load() != limit {
			t.Fatalf("round %d: %d concurrent spends of a budget of %d over 3 nodes allowed %d", round, races, limit, spent.Load())
		}
		for n, s := range stores {
			if ok, err := s.Spend(ctx, k, "", now.Add(time.Hour), day, limit); ok || err != nil {
				t.Fatalf("round %d: node %d allowed a spend past the budget (%v, %v)", round, n+1, ok, err)
			}
		}
		if ok, err := stores[round%3].Spend(ctx, k, "", now.Add(day+time.Second), day, limit); !ok || err != nil {
			t.Fatalf("round %d: node %d refused a spend a day later (%v, %v)", round, round%3+1, ok, err)
		}
	}
	t.Logf("%d rounds of %d spends over 3 nodes: %d allowed each; retried: %v", rounds, races, limit, &cnt)
}

// readYourWrites issues tries tokens, each through node i%3 and inspected
// at once through node (i+1)%3, with four clients at a time, and returns
// how many inspections failed, with the first error.
func readYourWrites(t *testing.T, svcs []*reset.Service, tries int) (int64, error) {
	ctx := t.Context()
	var next, misses atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			email := fmt.Sprintf("ryw%d@example.com", g)
			for {
				i := int(next.Add(1) - 1)
				if i >= tries {
					return
				}
				iss, err := svcs[i%3].RequestTrusted(ctx, reset.TrustedRequest{Email: email, SkipSend: true})
				if err != nil {
					t.Errorf("Request on node %d: %v", i%3+1, err)
					return
				}
				if _, err := svcs[(i+1)%3].Inspect(ctx, resettest.Token(iss.Link)); err != nil {
					misses.Add(1)
					first.CompareAndSwap(nil, fmt.Errorf("token issued on node %d, inspected on node %d: %w", i%3+1, (i+1)%3+1, err))
				}
			}
		})
	}
	wg.Wait()
	err, _ := first.Load().(error)
	return misses.Load(), err
}

// TestReadYourWrites: a token issued through one node works through the
// next one immediately after, every time out of 2,000. The same loop on
// connections without wsrep_sync_wait (which the store refuses unless
// told otherwise) shows what the setting prevents.
func TestReadYourWrites(t *testing.T) {
	c := getCluster(t)
	prefix := newTables(t, c)
	users := &resettest.Users{}
	addUsers(users, "ryw", 4)
	const tries = 2000
	var cnt counters
	svcs := services(t, c.stores(t, prefix, &cnt, mysqlstore.Options{}), users, &resettest.Mailer{}, nil)
	began := time.Now()
	misses, err := readYourWrites(t, svcs, tries)
	if misses != 0 {
		t.Fatalf("%d of %d tokens did not work on the next node right after they were issued; first: %v", misses, tries, err)
	}
	t.Logf("%d of %d tokens worked on the next node at once (%v); retried: %v", tries, tries, time.Since(began).Round(time.Millisecond), &cnt)

	// Without wsrep_sync_wait: informative only, since how often a read
	// overtakes replication depends on timing.
	svcs = services(t, c.withSyncWait(t, "").stores(t, prefix, nil, mysqlstore.Options{AllowStaleReads: true}), users, &resettest.Mailer{}, nil)
	const control = 500
	misses, err = readYourWrites(t, svcs, control)
	t.Logf("without wsrep_sync_wait (AllowStaleReads): %d of %d tokens did not work on the next node at once; first: %v", misses, control, err)
}

// TestRevokeAcrossNodes: a token issued through one node is gone after a
// RevokeAll through the next one right after, every time out of 1,000.
// The same loop with wsrep_sync_wait=1 (reads wait, DELETEs do not) shows
// why the store needs bit 2 as well: such a DELETE can miss the new row,
// and a DELETE that removes nothing cannot fail certification.
func TestRevokeAcrossNodes(t *testing.T) {
	c := getCluster(t)
	prefix := newTables(t, c)
	ctx := t.Context()
	survivors := func(stores []*mysqlstore.Store, tries int) int {
		n := 0
		for i := range tries {
			r := reset.Record{Hash: newHash(t), UserID: "revoked", Email: "revoked@example.com", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
			if err := stores[i%3].Rotate(ctx, r); err != nil {
				t.Fatal(err)
			}
			if err := stores[(i+1)%3].RevokeAll(ctx, "revoked"); err != nil {
				t.Fatal(err)
			}
			_, err := stores[(i+2)%3].Lookup(ctx, r.Hash)
			switch {
			case err == nil:
				n++
			case !errors.Is(err, reset.ErrNotFound):
				t.Fatal(err)
			}
		}
		return n
	}
	const tries = 1000
	if n := survivors(c.stores(t, prefix, nil, mysqlstore.Options{}), tries); n != 0 {
		t.Fatalf("%d of %d tokens survived a RevokeAll through the next node", n, tries)
	}
	n := survivors(c.withSyncWait(t, "1").stores(t, prefix, nil, mysqlstore.Options{AllowStaleReads: true}), tries)
	t.Logf("RevokeAll through the next node right after the token was issued: 0 of %d tokens survived; with wsrep_sync_wait=1, %d of %d did", tries, n, tries)
}
