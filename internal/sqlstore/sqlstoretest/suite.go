// Package sqlstoretest is the test suite that mysqlstore and pgstore both
// run: the conformance suites of package resettest, and the tests of what
// the SQL stores share beyond them (row counts, values at the columns'
// limits, round trips, lost answers). Each store's own tests keep only
// what is particular to its dialect and server.
package sqlstoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"

	"github.com/passreset/passreset/internal/sqlstore"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
)

// Store is what the suite needs of a SQL store.
type Store interface {
	reset.Store
	reset.Pruner
	reset.Cooldowner
	reset.Quota
	outbox.Store
	Migrate(ctx context.Context) error
	Check(ctx context.Context) error
	Version(ctx context.Context) (int, error)
	TablePrefix() string
}

// Harness describes one SQL store to the suite.
type Harness struct {
	// Name is the store's package name, which starts its errors.
	Name string
	// DB opens the test database, closed when tb ends; without a server
	// it skips tb (or fails it under CI=true).
	DB func(tb testing.TB) *bun.DB
	// Faulty opens the test database through [Faults], whose Lost is the
	// error the driver reports for a connection lost while reading an
	// answer.
	Faulty func(tb testing.TB) (*bun.DB, *Faults)
	// New returns a store on db with tables named with prefix, making no
	// statement; maxAttempts 0 means the default.
	New func(db bun.IDB, prefix string, maxAttempts int) (Store, error)
	// Drop drops the tables named with prefix when tb ends.
	Drop func(tb testing.TB, db bun.IDB, prefix string)
	// Rows counts the rows of one of the store's tables.
	Rows func(tb testing.TB, db bun.IDB, s Store, table string) int
	// Portable, when not nil, makes s consume tokens without DELETE ...
	// RETURNING, which the suite then tests too.
	Portable func(s Store)
	// SchemaVersion is the schema version the store's Migrate installs.
	SchemaVersion int
	// Migrations are the store's migrations, and Contracting the
	// versions of those among them that are not expand-only.
	Migrations  []sqlstore.Migration
	Contracting []int
	// Quote quotes a table name.
	Quote func(name string) string
	// Files describes the store's migration files.
	Files Files
	// Trips holds the number of statements of the outbox operations that
	// take more than one in this dialect, by the name the suite measures
	// them under ("Claim of two", "Claim of none", "Renew", "Reserve").
	Trips map[string]int64
}

// Base is the tests' reference time, with microseconds.
var Base = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

// NewPrefix returns a table prefix no other test, or other test process,
// uses.
func NewPrefix() string {
	var b [5]byte
	rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:]) + "_"
}

// NewStore makes a store with tables of its own on db, migrates it and
// drops its tables when tb ends.
func (h Harness) NewStore(tb testing.TB, db bun.IDB, maxAttempts int) Store {
	tb.Helper()
	prefix := NewPrefix()
	s, err := h.New(db, prefix, maxAttempts)
	if err != nil {
		tb.Fatal(err)
	}
	h.Drop(tb, db, prefix)
	if err := s.Migrate(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return s
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	for _, c := range []struct {
		name string
		f    func(*testing.T, Harness)
	}{
		{"Conformance", testConformance},
		{"OutboxConformance", testOutboxConformance},
		{"ConcurrentService", testConcurrentService},
		{"CooldownSecretShared", testSecretShared},
		{"EmptyCooldown", testEmptyCooldown},
		{"OutboxValues", testOutboxValues},
		{"OutboxRoundTrips", testOutboxRoundTrips},
		{"LostConnection", testLostConnection},
		{"OutboxLostConnection", testOutboxLostConnection},
		{"ContextCancelled", testContextCancelled},
		{"Version", testVersion},
		{"ExpandOnly", testExpandOnly},
		{"NewerSchema", testNewerSchema},
		{"MigrationFiles", testMigrationFiles},
		{"PasswordScreening", testPasswordScreening},
	} {
		t.Run(c.name, func(t *testing.T) { c.f(t, h) })
	}
}

// Version reads 0 without tables and SchemaVersion after Migrate, and
// reading it creates nothing.
func testVersion(t *testing.T, h Harness) {
	db := h.DB(t)
	prefix := NewPrefix()
	s, err := h.New(db, prefix, 0)
	if err != nil {
		t.Fatal(err)
	}
	h.Drop(t, db, prefix)
	for range 2 {
		if v, err := s.Version(t.Context()); err != nil || v != 0 {
			t.Fatalf("Version without tables = %d, %v; want 0, nil", v, err)
		}
	}
	if err := s.Check(t.Context()); err == nil {
		t.Fatal("Check after Version passed: Version created tables")
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Version(t.Context()); err != nil || v != h.SchemaVersion {
		t.Fatalf("Version after Migrate = %d, %v; want %d", v, err, h.SchemaVersion)
	}
}

// Every migration is expand-only but the historical contracting ones the
// harness names, so that the previous program keeps running on the result
// and no migration deletes queued mail.
func testExpandOnly(t *testing.T, h Harness) {
	if len(h.Migrations) != h.SchemaVersion {
		t.Fatalf("%d migrations, SchemaVersion %d", len(h.Migrations), h.SchemaVersion)
	}
	if err := sqlstore.CheckExpandOnly(h.Migrations); err != nil {
		t.Fatal(err)
	}
	for i, m := range h.Migrations {
		if m.Oldest != 0 && !slices.Contains(h.Contracting, i+1) {
			t.Errorf("migration %d (%s) is contracting (Oldest %d): migrations are expand-only; take things away in a later release", i+1, m.Name, m.Oldest)
		}
	}
}

// A program runs on a newer schema whose rows say it may, and refuses
// one after a contracting migration, or one whose rows do not say;
// Migrate over a newer schema changes nothing.
func testNewerSchema(t *testing.T, h Harness) {
	db := h.DB(t)
	s := h.NewStore(t, db, 0)
	ctx := t.Context()
	v := h.SchemaVersion
	table := h.Quote(s.TablePrefix() + "schema_version")
	insert := func(version int, oldest any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, "INSERT INTO "+table+" (version, oldest) VALUES (?, ?)", version, oldest); err != nil {
			t.Fatal(err)
		}
	}
	insert(v+1, v) // an expand-only migration of the next version
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check of a schema one expand-only migration ahead: %v", err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate over a schema one expand-only migration ahead: %v", err)
	}
	if got, err := s.Version(ctx); err != nil || got != v+1 {
		t.Fatalf("Version = %d, %v; want %d", got, err, v+1)
	}
	if n := h.Rows(t, db, s, "schema_version"); n != v+1 {
		t.Fatalf("Migrate over a newer schema left %d version rows, want %d", n, v+1)
	}
	// The service runs on it.
	svc, _, mailer := NewService(t, s, "fleet", nil)
	if err := svc.Request(ctx, "fleet@example.com", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := mailer.Wait(ctx, 1); err != nil {
		t.Fatalf("no email sent on the newer schema: %v", err)
	}
	insert(v+2, v+2) // a contracting one
	for name, err := range map[string]error{"Check": s.Check(ctx), "Migrate": s.Migrate(ctx)} {
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("needs a program of schema version %d or newer", v+2)) {
			t.Errorf("%s after a contracting migration: %v", name, err)
		}
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf("DELETE FROM %s WHERE version = %d", table, v+2)); err != nil {
		t.Fatal(err)
	}
	insert(v+2, nil) // a row that does not say
	if err := s.Check(ctx); err == nil || !strings.Contains(err.Error(), "do not say") {
		t.Errorf("Check of a newer schema without oldest: %v", err)
	}
}

// The conformance suite of the token store. A store must retry what its
// server calls transient (resettest's ConsumeRacesRotate meets InnoDB's
// deadlock between a DELETE by token hash and an upsert by user), so it
// runs with the store's retries.
func testConformance(t *testing.T, h Harness) {
	s := h.NewStore(t, h.DB(t), 0)
	resettest.TestStore(t, func(*testing.T) reset.Store { return s })
}

// The outbox conformance suite, with the store's retries and without
// them: concurrent claims must be disjoint on their own, not rescued by
// retrying.
func testOutboxConformance(t *testing.T, h Harness) {
	db := h.DB(t)
	for _, attempts := range []int{0, 1} {
		t.Run(fmt.Sprintf("MaxAttempts=%d", attempts), func(t *testing.T) {
			resettest.TestOutboxStore(t, func(t *testing.T) outbox.Store { return h.NewStore(t, db, attempts) })
		})
	}
}

// The core's concurrent requests and throttled requests leave the rows
// they should.
func testConcurrentService(t *testing.T, h Harness) {
	db := h.DB(t)
	s := h.NewStore(t, db, 0)
	rows := func(table string) int { return h.Rows(t, db, s, table) }
	resettest.TestConcurrentService(t, s, "concurrent", rows)
	resettest.TestConcurrentCooldownService(t, s, "cool", rows)
}

// Stores of several instances on the same tables share one cooldown
// secret, made by whichever asked first, and keep it through a migration.
func testSecretShared(t *testing.T, h Harness) {
	db := h.DB(t)
	s := h.NewStore(t, db, 0)
	const n = 16
	got := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			other, err := h.New(db, s.TablePrefix(), 0)
			if err == nil {
				got[i], err = other.CooldownSecret(t.Context())
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, g := range got {
		if len(g) != 32 || !bytes.Equal(g, got[0]) {
			t.Fatalf("instances got secrets %x and %x, want one 32-byte secret", got[0], g)
		}
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if again, err := s.CooldownSecret(t.Context()); err != nil || !bytes.Equal(again, got[0]) {
		t.Fatalf("after Migrate: %x, %v; want %x", again, err, got[0])
	}
	if n := h.Rows(t, db, s, "secrets"); n != 1 {
		t.Fatalf("%d secret rows, want 1", n)
	}
}

// A cooldown that ends when it starts never runs and writes nothing.
func testEmptyCooldown(t *testing.T, h Harness) {
	db := h.DB(t)
	s := h.NewStore(t, db, 0)
	key := sha256.Sum256([]byte("empty"))
	for _, now := range []time.Time{Base, Base.Add(time.Second)} {
		if ok, err := s.Cooldown(t.Context(), key, "", now, now); err != nil || !ok {
			t.Fatalf("empty Cooldown = %v, %v; want true", ok, err)
		}
	}
	if n := h.Rows(t, db, s, "cooldowns"); n != 0 {
		t.Fatalf("%d cooldown rows after empty cooldowns, want 0", n)
	}
}

// The outbox stores awkward values and reads them back exactly, and
// refuses what does not fit.
func testOutboxValues(t *testing.T, h Harness) {
	db := h.DB(t)
	s := h.NewStore(t, db, 0)
	ctx := t.Context()
	sealed := make([]byte, 200_000)
	rand.Read(sealed)
	sealed[0], sealed[1], sealed[2] = 0, '\'', '\\'
	e := outbox.Envelope{
		ID: strings.Repeat("i", 64), Kind: outbox.KindMessage, Sealed: sealed, KeyID: `k'"\` + strings.Repeat("k", 60),
		Attempts: 3, CreatedAt: Base.Add(999), NotBefore: Base.Add(time.Second).In(time.FixedZone("X", 5*3600)),
		LastError: "earlier",
	}
	if err := s.Enqueue(ctx, e); err != nil {
		t.Fatal(err)
	}
	got, err := s.Claim(ctx, "w", Base.Add(time.Second), Base.Add(time.Minute), 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("Claim: %v, %v", got, err)
	}
	g := got[0]
	if g.ID != e.ID || g.Kind != e.Kind || !bytes.Equal(g.Sealed, sealed) ||
		g.KeyID != e.KeyID || g.Attempts != 3 || g.Claims != 1 || g.LastError != "earlier" || g.Dead ||
		!g.CreatedAt.Equal(Base) || !g.NotBefore.Equal(Base.Add(time.Second)) || g.NotBefore.Location() != time.UTC {
		t.Fatalf("read back %+v", g)
	}
	// LastError is cut to 1000 characters and made valid UTF-8 without NUL.
	g.LastError, g.Dead = strings.Repeat("é", 1500)+"\xff\x00", true
	if err := s.Save(ctx, "w", g, false); err != nil {
		t.Fatal(err)
	}
	dead, err := s.Dead(ctx, 10)
	if err != nil || len(dead) != 1 {
		t.Fatalf("Dead: %v, %v", dead, err)
	}
	if n := utf8.RuneCountInString(dead[0].LastError); n != 1000 || !utf8.ValidString(dead[0].LastError) ||
		!strings.HasPrefix(dead[0].LastError, "éé") {
		t.Fatalf("LastError of %d characters stored as %d", 1502, n)
	}
	prefix := h.Name + ": "
	for name, mod := range map[string]func(*outbox.Envelope){
		"empty ID":   func(e *outbox.Envelope) { e.ID = "" },
		"long ID":    func(e *outbox.Envelope) { e.ID = strings.Repeat("i", 65) },
		"NUL in ID":  func(e *outbox.Envelope) { e.ID = "a\x00" },
		"long kind":  func(e *outbox.Envelope) { e.Kind = strings.Repeat("k", 33) },
		"long key":   func(e *outbox.Envelope) { e.KeyID = strings.Repeat("k", 65) },
		"bad key":    func(e *outbox.Envelope) { e.KeyID = "\xff" },
		"no content": func(e *outbox.Envelope) { e.Sealed = nil },
		"year 0":     func(e *outbox.Envelope) { e.CreatedAt = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC) },
	} {
		bad := e
		bad.ID = "other"
		mod(&bad)
		if err := s.Enqueue(ctx, bad); err == nil || !strings.HasPrefix(err.Error(), prefix+"enqueue: ") {
			t.Errorf("%s: Enqueue = %v, want a %senqueue: error", name, err, prefix)
		}
		if err := s.Replace(ctx, "w", nil, []outbox.Envelope{bad}, time.Time{}); err == nil || !strings.HasPrefix(err.Error(), prefix+"replace: ") {
			t.Errorf("%s: Replace = %v, want a %sreplace: error", name, err, prefix)
		}
	}
	if _, err := s.Claim(ctx, strings.Repeat("w", 256), Base, Base, 1); err == nil {
		t.Error("Claim with a 256-byte worker name succeeded")
	}
	if err := s.Enqueue(ctx, e); err == nil {
		t.Error("Enqueue of an existing ID succeeded")
	}
	if err := s.Replace(ctx, "w", nil, []outbox.Envelope{e}, time.Time{}); err == nil || errors.Is(err, outbox.ErrLeaseLost) {
		t.Errorf("Replace adding an existing ID: %v, want a server error", err)
	}
	if err := s.Revive(ctx, strings.Repeat("i", 65), Base); !errors.Is(err, reset.ErrNotFound) {
		t.Errorf("Revive of an impossible ID: %v", err)
	}
	for _, w := range []string{"", strings.Repeat("w", 256), "\xff"} {
		if err := s.Replace(ctx, w, []string{e.ID}, nil, time.Time{}); !errors.Is(err, outbox.ErrLeaseLost) || !strings.HasPrefix(err.Error(), prefix) {
			t.Errorf("Replace by worker %q: %v, want ErrLeaseLost", w, err)
		}
		if err := s.Save(ctx, w, e, false); !errors.Is(err, outbox.ErrLeaseLost) {
			t.Errorf("Save by worker %q: %v, want ErrLeaseLost", w, err)
		}
	}
	if st, err := s.Stats(ctx, 10); err != nil || st.Pending != 0 || st.Dead != 1 {
		t.Errorf("Stats after the refusals = %+v, %v; want only the dead envelope", st, err)
	}
}

// QueryCounter is a bun query hook that counts the statements sent.
type QueryCounter struct{ N atomic.Int64 }

// BeforeQuery implements [bun.QueryHook].
func (c *QueryCounter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

// AfterQuery implements [bun.QueryHook]: it counts one statement.
func (c *QueryCounter) AfterQuery(context.Context, *bun.QueryEvent) { c.N.Add(1) }

// Counted returns a store on the tables of a new store, through a query
// hook that counts its statements, and a function that checks how many
// statements f sends.
func (h Harness) Counted(t *testing.T) (Store, func(name string, want int64, f func() error)) {
	t.Helper()
	db := h.DB(t)
	counter := &QueryCounter{}
	s, err := h.New(db.WithQueryHook(counter), h.NewStore(t, db, 0).TablePrefix(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return s, func(name string, want int64, f func() error) {
		t.Helper()
		before := counter.N.Load()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := counter.N.Load() - before; got != want {
			t.Errorf("%s: %d round trips, want %d", name, got, want)
		} else {
			t.Logf("%s: %d round trips", name, got)
		}
	}
}

// The statements of each outbox operation.
func testOutboxRoundTrips(t *testing.T, h Harness) {
	s, measure0 := h.Counted(t)
	measure := func(name string, want int64, f func() error) {
		t.Helper()
		if n, ok := h.Trips[name]; ok {
			want = n
		}
		measure0(name, want, f)
	}
	ctx := t.Context()
	env := func(id string) outbox.Envelope {
		return outbox.Envelope{ID: id, Kind: outbox.KindMessage, Sealed: []byte("x"), KeyID: "k", CreatedAt: Base, NotBefore: Base}
	}
	measure("Enqueue", 1, func() error { return s.Enqueue(ctx, env("e1")) })
	measure("Enqueue", 1, func() error { return s.Enqueue(ctx, env("e2")) })
	now := Base.Add(time.Second)
	var envs []outbox.Envelope
	measure("Claim of two", 1, func() (err error) {
		envs, err = s.Claim(ctx, "w", now, now.Add(time.Minute), 5)
		if err == nil && len(envs) != 2 {
			err = fmt.Errorf("claimed %d", len(envs))
		}
		return err
	})
	measure("Claim of none", 1, func() error {
		_, err := s.Claim(ctx, "w", now, now.Add(time.Minute), 5)
		return err
	})
	measure("Renew", 1, func() error {
		lost, err := s.Renew(ctx, "w", []string{"e1", "e2"}, now.Add(2*time.Minute))
		if err == nil && len(lost) != 0 {
			err = fmt.Errorf("lost %v", lost)
		}
		return err
	})
	measure("Save", 1, func() error { return s.Save(ctx, "w", envs[0], true) })
	measure("Replace of two by a batch (BEGIN, DELETE, INSERT, COMMIT)", 4, func() error {
		return s.Replace(ctx, "w", []string{"e1", "e2"}, []outbox.Envelope{env("b")}, now.Add(time.Minute))
	})
	measure("Replace of a batch by two members", 4, func() error {
		return s.Replace(ctx, "w", []string{"b"}, []outbox.Envelope{env("e1"), env("e2")}, now.Add(time.Minute))
	})
	measure("Replace that deletes", 3, func() error { return s.Replace(ctx, "w", []string{"e1"}, nil, time.Time{}) })
	measure("Replace that lost its lease (rolled back)", 3, func() error {
		if err := s.Replace(ctx, "other", []string{"e2"}, nil, time.Time{}); !errors.Is(err, outbox.ErrLeaseLost) {
			return fmt.Errorf("got %v, want ErrLeaseLost", err)
		}
		return nil
	})
	measure("Save that lost its lease", 1, func() error {
		if err := s.Save(ctx, "other", envs[1], false); !errors.Is(err, outbox.ErrLeaseLost) {
			return fmt.Errorf("got %v, want ErrLeaseLost", err)
		}
		return nil
	})
	measure("Stats", 1, func() error {
		st, err := s.Stats(ctx, 100)
		if err == nil && (st.Pending != 1 || st.Oldest.IsZero()) {
			err = fmt.Errorf("stats %+v", st)
		}
		return err
	})
	e2 := envs[1]
	e2.Dead = true
	measure("Save (bury)", 1, func() error { return s.Save(ctx, "w", e2, false) })
	measure("Dead", 1, func() error { _, err := s.Dead(ctx, 10); return err })
	measure("Revive", 1, func() error { return s.Revive(ctx, e2.ID, now) })
	measure("PruneDead", 1, func() error { _, err := s.PruneDead(ctx, now, 10); return err })
	measure("Reserve", 1, func() error { _, err := s.Reserve(ctx, "trips", now, time.Second, 1); return err })
	measure("Pause", 1, func() error { return s.Pause(ctx, "trips", now.Add(time.Minute)) })
	measure("CooldownSecret", 2, func() error { _, err := s.CooldownSecret(ctx); return err })
	measure("Prune (one statement per kind)", 3, func() error { _, err := s.Prune(ctx, now, 100); return err })
}

// NewService returns a Service on store with one known user, id, whose
// address is id@example.com, on clock when it is not nil, and shuts it
// down when tb ends.
func NewService(tb testing.TB, store reset.Store, id string, clock *resettest.Clock) (*reset.Service, *resettest.Users, *resettest.Mailer) {
	tb.Helper()
	users, mailer := &resettest.Users{}, &resettest.Mailer{}
	users.Add(id, id+"@example.com", "old password")
	cfg := reset.Config{
		KeepSessions: true,
		Store:        store, Users: users, Mailer: mailer,
		ResetURL: "https://app.example.com/reset",
		Logger:   slog.New(slog.DiscardHandler),
	}
	if clock != nil {
		cfg.Now = clock.Now
	}
	svc, err := reset.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { svc.Shutdown(context.Background()) })
	return svc, users, mailer
}

// A cancelled context ends an operation with an error that says so.
func testContextCancelled(t *testing.T, h Harness) {
	s := h.NewStore(t, h.DB(t), 0)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rec := reset.Record{Hash: sha256.Sum256([]byte("ctx")), UserID: "ctx", Email: "c@example.com", CreatedAt: Base, ExpiresAt: Base.Add(time.Hour)}
	if err := s.Rotate(ctx, rec); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), h.Name+": rotate: ") {
		t.Fatalf("Rotate with a cancelled context: %v", err)
	}
	if _, err := s.Cooldown(ctx, rec.Hash, "", Base, Base.Add(time.Minute)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Cooldown with a cancelled context: %v", err)
	}
	if _, err := s.Prune(ctx, Base, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("Prune with a cancelled context: %v", err)
	}
	if err := s.Replace(ctx, "w", []string{"x"}, nil, time.Time{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Replace with a cancelled context: %v", err)
	}
}
