package mysqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"

	"github.com/passreset/passreset/internal/sqlstore/sqlstoretest"
	"github.com/passreset/passreset/store/mysqlstore"
)

const dsnEnv = "PASSRESET_MYSQL_DSN"

// testDSN returns the DSN of the test server. Without one the test is
// skipped, or fails under CI=true.
func testDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn != "" {
		return dsn
	}
	msg := dsnEnv + " is not set, so the MySQL tests do not run; start a server with " +
		`export ` + dsnEnv + `="$(scripts/mariadb.sh start | tail -n 1)"`
	if _, bench := tb.(*testing.B); os.Getenv("CI") == "true" && !bench {
		tb.Fatal(msg + " (CI=true: a skipped MySQL test is a failure)")
	}
	tb.Skip(msg)
	return ""
}

// openDB opens a *bun.DB on dsn, built as the package documentation says
// unless other dialect options are given, and closes it when tb ends.
func openDB(tb testing.TB, dsn string, opts ...mysqldialect.DialectOption) *bun.DB {
	tb.Helper()
	sqldb, err := sql.Open("mysql", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	if opts == nil {
		opts = []mysqldialect.DialectOption{mysqldialect.WithTimeLocation("UTC")}
	}
	db := bun.NewDB(sqldb, mysqldialect.New(opts...))
	tb.Cleanup(func() { db.Close() })
	return db
}

// faultyDB opens the test database through a connector whose faults the
// test sets: a lost answer gives mysql.ErrInvalidConn.
func faultyDB(tb testing.TB) (*bun.DB, *sqlstoretest.Faults) {
	tb.Helper()
	cfg, err := mysql.ParseDSN(testDSN(tb))
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	f := &sqlstoretest.Faults{Lost: mysql.ErrInvalidConn}
	db := bun.NewDB(sql.OpenDB(f.Connector(conn)), mysqldialect.New())
	tb.Cleanup(func() { db.Close() })
	return db, f
}

// newPrefix returns a table prefix no other test, or other test process,
// uses.
func newPrefix(testing.TB) string { return sqlstoretest.NewPrefix() }

// newStore makes a store with tables of its own on db, migrates it and
// drops its tables when tb ends.
func newStore(tb testing.TB, db *bun.DB, opts mysqlstore.Options) *mysqlstore.Store {
	tb.Helper()
	if opts.TablePrefix == "" {
		opts.TablePrefix = newPrefix(tb)
	}
	s, err := mysqlstore.New(db, opts)
	if err != nil {
		tb.Fatal(err)
	}
	dropTables(tb, db, s.TablePrefix())
	if err := s.Migrate(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return s
}

func dropTables(tb testing.TB, db bun.IDB, prefix string) {
	tb.Cleanup(func() {
		q := fmt.Sprintf("DROP TABLE IF EXISTS `%[1]stokens`, `%[1]scooldowns`, `%[1]soutbox`, `%[1]sbudget`, `%[1]ssecrets`, `%[1]squotas`, `%[1]sfb_events`, `%[1]ssuppressions`, `%[1]sschema_version`", prefix)
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			tb.Errorf("dropping test tables: %v", err)
		}
	})
}

// newService returns a Service on store with one known user, id, whose
// address is id@example.com (used by the benchmarks too).
var newService = sqlstoretest.NewService

// countRows returns the number of rows of one of the store's tables.
func countRows(tb testing.TB, db bun.IDB, s interface{ TablePrefix() string }, table string) int {
	tb.Helper()
	var n int
	q := fmt.Sprintf("SELECT COUNT(*) FROM `%s%s`", s.TablePrefix(), table)
	if err := db.QueryRowContext(context.Background(), q).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// harness describes the store to the suite both SQL stores run.
var harness = sqlstoretest.Harness{
	Name:          "mysqlstore",
	SchemaVersion: mysqlstore.SchemaVersion,
	Migrations:    mysqlstore.Migrations(),
	Contracting:   []int{3}, // the outbox's plaintext columns went; it deleted unsealed requests
	Quote:         func(name string) string { return "`" + name + "`" },
	Files:         files,
	DB:            func(tb testing.TB) *bun.DB { return openDB(tb, testDSN(tb)) },
	Faulty:        faultyDB,
	New: func(db bun.IDB, prefix string, maxAttempts int) (sqlstoretest.Store, error) {
		return mysqlstore.New(db, mysqlstore.Options{TablePrefix: prefix, MaxAttempts: maxAttempts})
	},
	Drop: dropTables,
	Rows: func(tb testing.TB, db bun.IDB, s sqlstoretest.Store, table string) int {
		return countRows(tb, db, s, table)
	},
	Portable: func(s sqlstoretest.Store) { mysqlstore.UsePortableConsume(s.(*mysqlstore.Store)) },
	Trips: map[string]int64{
		// BEGIN, SELECT ... FOR UPDATE SKIP LOCKED, UPDATE, COMMIT;
		// without envelopes, no UPDATE.
		"Claim of two": 4, "Claim of none": 3,
		"Renew":   2, // UPDATE, then SELECT of the ids still held
		"Reserve": 4, // BEGIN, the upsert, SELECT, COMMIT
	},
}

// TestSQLStore runs the suite both SQL stores share.
func TestSQLStore(t *testing.T) { sqlstoretest.Run(t, harness) }
