package mysqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"

	"github.com/passreset/passreset/internal/storetest"
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

// newPrefix returns a table prefix no other test, or other test process,
// uses.
func newPrefix(tb testing.TB) string {
	var b [5]byte
	rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:]) + "_"
}

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

func dropTables(tb testing.TB, db *bun.DB, prefix string) {
	tb.Cleanup(func() {
		q := fmt.Sprintf("DROP TABLE IF EXISTS `%[1]stokens`, `%[1]scooldowns`, `%[1]soutbox`, `%[1]sbudget`, `%[1]sschema_version`", prefix)
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			tb.Errorf("dropping test tables: %v", err)
		}
	})
}

// newService returns a Service on store with one known user, id, whose
// address is id@example.com (shared with pgstore's tests, and used by the
// benchmarks).
var newService = storetest.NewService

// countRows returns the number of rows of one of the store's tables.
func countRows(tb testing.TB, db bun.IDB, s *mysqlstore.Store, table string) int {
	tb.Helper()
	var n int
	q := fmt.Sprintf("SELECT COUNT(*) FROM `%s%s`", s.TablePrefix(), table)
	if err := db.QueryRowContext(context.Background(), q).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}
