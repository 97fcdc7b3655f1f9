package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/passreset/passreset/internal/storetest"
	"github.com/passreset/passreset/store/pgstore"
)

const dsnEnv = "PASSRESET_PG_DSN"

// base is the tests' reference time, with microseconds.
var base = storetest.Base

// testDSN returns the DSN of the test server. Without one the test is
// skipped, or fails under CI=true.
func testDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn != "" {
		return dsn
	}
	msg := dsnEnv + " is not set, so the PostgreSQL tests do not run; start a server with " +
		`export ` + dsnEnv + `="$(scripts/postgres.sh start | tail -n 1)"`
	if _, bench := tb.(*testing.B); os.Getenv("CI") == "true" && !bench {
		tb.Fatal(msg + " (CI=true: a skipped PostgreSQL test is a failure)")
	}
	tb.Skip(msg)
	return ""
}

// openDB opens a *bun.DB on dsn as the package documentation says, and
// closes it when tb ends.
func openDB(tb testing.TB, dsn string) *bun.DB {
	tb.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	db := bun.NewDB(stdlib.OpenDB(*cfg), pgdialect.New())
	tb.Cleanup(func() { db.Close() })
	return db
}

// newPrefix returns a table prefix no other test, or other test process,
// uses.
func newPrefix(testing.TB) string {
	var b [5]byte
	rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:]) + "_"
}

// newStore makes a store with tables of its own on db, migrates it and
// drops its tables when tb ends.
func newStore(tb testing.TB, db *bun.DB, opts pgstore.Options) *pgstore.Store {
	tb.Helper()
	if opts.TablePrefix == "" {
		opts.TablePrefix = newPrefix(tb)
	}
	s, err := pgstore.New(db, opts)
	if err != nil {
		tb.Fatal(err)
	}
	dropTables(tb, db, s.Schema(), s.TablePrefix())
	if err := s.Migrate(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return s
}

// table returns the quoted name of one of the store's tables.
func table(s *pgstore.Store, name string) string {
	t := `"` + s.TablePrefix() + name + `"`
	if s.Schema() != "" {
		t = `"` + s.Schema() + `".` + t
	}
	return t
}

func dropTables(tb testing.TB, db *bun.DB, schema, prefix string) {
	tb.Cleanup(func() {
		q := `"` + prefix + `%s"`
		if schema != "" {
			q = `"` + schema + `".` + q
		}
		for _, name := range []string{"tokens", "cooldowns", "outbox", "budget", "schema_version"} {
			if _, err := db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+fmt.Sprintf(q, name)); err != nil {
				tb.Errorf("dropping test tables: %v", err)
			}
		}
	})
}

// newService returns a Service on store with one known user, id, whose
// address is id@example.com (shared with mysqlstore's tests, and used by
// the benchmarks).
var newService = storetest.NewService

// countRows returns the number of rows of one of the store's tables.
func countRows(tb testing.TB, db bun.IDB, s *pgstore.Store, name string) int {
	tb.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), "SELECT count(*) FROM "+table(s, name)).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// queryCounter is a bun query hook that counts statements sent.
type queryCounter struct{ n atomic.Int64 }

func (c *queryCounter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}
func (c *queryCounter) AfterQuery(context.Context, *bun.QueryEvent) { c.n.Add(1) }

// counted returns a store on the tables of a new store, through a query
// hook that counts its statements, and a function that checks how many
// statements f sends.
func counted(t *testing.T) (*pgstore.Store, func(name string, want int64, f func() error)) {
	t.Helper()
	db := openDB(t, testDSN(t))
	counter := &queryCounter{}
	s, err := pgstore.New(db.WithQueryHook(counter), pgstore.Options{TablePrefix: newStore(t, db, pgstore.Options{}).TablePrefix()})
	if err != nil {
		t.Fatal(err)
	}
	return s, func(name string, want int64, f func() error) {
		t.Helper()
		before := counter.n.Load()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := counter.n.Load() - before; got != want {
			t.Errorf("%s: %d round trips, want %d", name, got, want)
		} else {
			t.Logf("%s: %d round trips", name, got)
		}
	}
}
