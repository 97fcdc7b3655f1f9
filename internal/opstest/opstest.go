// Package opstest opens the real databases that the tests of the
// operator's packages (cmd/passreset, health, telemetry) run against, each
// test with tables of its own that are dropped when it ends.
package opstest

import (
	"crypto/rand"
	"database/sql"
	"os"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/passreset/passreset/store/mysqlstore"
	"github.com/passreset/passreset/store/pgstore"
)

// Env returns the environment variable name, or skips the test when it is
// not set (and fails it with CI=true).
func Env(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set (source /work/env.sh or run scripts/test.sh)", name)
		}
		t.Skipf("%s is not set: skipping (source /work/env.sh or run scripts/test.sh)", name)
	}
	return v
}

// tables are the stores' tables, dropped after each test.
var tables = [...]string{"tokens", "cooldowns", "outbox", "budget", "schema_version", "secrets", "quotas"}

// prefix is a table prefix of one test's own.
func prefix() string { return "ops" + strings.ToLower(rand.Text()[:10]) + "_" }

// MariaDB returns a mysqlstore on PASSRESET_MYSQL_DSN with tables of the
// test's own (not created yet), the DSN and the table prefix.
func MariaDB(t testing.TB) (s *mysqlstore.Store, dsn, tablePrefix string) {
	dsn, tablePrefix = Env(t, "PASSRESET_MYSQL_DSN"), prefix()
	mcfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	mcfg.ParseTime = true
	conn, err := mysql.NewConnector(mcfg)
	if err != nil {
		t.Fatal(err)
	}
	db := bun.NewDB(sql.OpenDB(conn), mysqldialect.New(mysqldialect.WithTimeLocation("UTC")))
	t.Cleanup(func() {
		for _, tbl := range tables {
			db.Exec("DROP TABLE IF EXISTS `" + tablePrefix + tbl + "`")
		}
		db.Close()
	})
	if s, err = mysqlstore.New(db, mysqlstore.Options{TablePrefix: tablePrefix}); err != nil {
		t.Fatal(err)
	}
	return s, dsn, tablePrefix
}

// PostgreSQL returns a pgstore on PASSRESET_PG_DSN with tables of the
// test's own (not created yet), the DSN and the table prefix.
func PostgreSQL(t testing.TB) (s *pgstore.Store, dsn, tablePrefix string) {
	dsn, tablePrefix = Env(t, "PASSRESET_PG_DSN"), prefix()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := bun.NewDB(stdlib.OpenDB(*cfg), pgdialect.New())
	t.Cleanup(func() {
		for _, tbl := range tables {
			db.Exec(`DROP TABLE IF EXISTS "` + tablePrefix + tbl + `"`)
		}
		db.Close()
	})
	if s, err = pgstore.New(db, pgstore.Options{TablePrefix: tablePrefix}); err != nil {
		t.Fatal(err)
	}
	return s, dsn, tablePrefix
}
