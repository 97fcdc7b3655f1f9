package pgstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/passreset/passreset/internal/sqlstore/sqlstoretest"
	"github.com/passreset/passreset/store/pgstore"
)

const dsnEnv = "PASSRESET_PG_DSN"

// base is the tests' reference time, with microseconds.
var base = sqlstoretest.Base

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
func newPrefix(testing.TB) string { return sqlstoretest.NewPrefix() }

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
func table(s interface {
	Schema() string
	TablePrefix() string
}, name string) string {
	t := `"` + s.TablePrefix() + name + `"`
	if s.Schema() != "" {
		t = `"` + s.Schema() + `".` + t
	}
	return t
}

func dropTables(tb testing.TB, db bun.IDB, schema, prefix string) {
	tb.Cleanup(func() {
		q := `"` + prefix + `%s"`
		if schema != "" {
			q = `"` + schema + `".` + q
		}
		for _, name := range []string{"tokens", "cooldowns", "outbox", "budget", "secrets", "quotas", "fb_events", "suppressions", "schema_version"} {
			if _, err := db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+fmt.Sprintf(q, name)); err != nil {
				tb.Errorf("dropping test tables: %v", err)
			}
		}
	})
}

// newService returns a Service on store with one known user, id, whose
// address is id@example.com (used by the benchmarks too).
var newService = sqlstoretest.NewService

// countRows returns the number of rows of one of the store's tables.
func countRows(tb testing.TB, db bun.IDB, s interface {
	Schema() string
	TablePrefix() string
}, name string) int {
	tb.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), "SELECT count(*) FROM "+table(s, name)).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// counted returns a store on the tables of a new store, through a query
// hook that counts its statements, and a function that checks how many
// statements f sends.
func counted(t *testing.T) (*pgstore.Store, func(name string, want int64, f func() error)) {
	s, measure := harness.Counted(t)
	return s.(*pgstore.Store), measure
}

// faultyDB opens the test database through a connector whose faults the
// test sets: a lost answer gives io.ErrUnexpectedEOF, as pgx reports a
// connection that broke while reading the answer.
func faultyDB(tb testing.TB) (*bun.DB, *sqlstoretest.Faults) {
	tb.Helper()
	cfg, err := pgx.ParseConfig(testDSN(tb))
	if err != nil {
		tb.Fatal(err)
	}
	f := &sqlstoretest.Faults{Lost: fmt.Errorf("reading the answer: %w", io.ErrUnexpectedEOF)}
	db := bun.NewDB(sql.OpenDB(f.Connector(stdlib.GetConnector(*cfg))), pgdialect.New())
	tb.Cleanup(func() { db.Close() })
	return db, f
}

// harness describes the store to the suite both SQL stores run.
var harness = sqlstoretest.Harness{
	Name:          "pgstore",
	SchemaVersion: pgstore.SchemaVersion,
	Migrations:    pgstore.Migrations(),
	Quote:         func(name string) string { return `"` + name + `"` },
	Files:         files,
	DB:            func(tb testing.TB) *bun.DB { return openDB(tb, testDSN(tb)) },
	Faulty:        faultyDB,
	New: func(db bun.IDB, prefix string, maxAttempts int) (sqlstoretest.Store, error) {
		return pgstore.New(db, pgstore.Options{TablePrefix: prefix, MaxAttempts: maxAttempts})
	},
	Drop: func(tb testing.TB, db bun.IDB, prefix string) { dropTables(tb, db, "", prefix) },
	Rows: func(tb testing.TB, db bun.IDB, s sqlstoretest.Store, table string) int {
		return countRows(tb, db, s.(*pgstore.Store), table)
	},
}

// TestSQLStore runs the suite both SQL stores share.
func TestSQLStore(t *testing.T) { sqlstoretest.Run(t, harness) }
