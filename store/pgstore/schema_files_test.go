package pgstore_test

import (
	"database/sql"
	"fmt"
	"testing"

	migratedb "github.com/golang-migrate/migrate/v4/database"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/uptrace/bun"

	"github.com/passreset/passreset/internal/sqlstore/sqlstoretest"
	"github.com/passreset/passreset/store/pgstore"
)

// files describes the store's migration files to the shared suite.
var files = sqlstoretest.Files{
	Render: func(tool, prefix string) (map[string]string, error) { return pgstore.MigrationFiles(tool, "", prefix) },
	Goose:  goose.DialectPostgres,
	SQLDB: func(tb testing.TB) *sql.DB {
		cfg, err := pgx.ParseConfig(testDSN(tb))
		if err != nil {
			tb.Fatal(err)
		}
		db := stdlib.OpenDB(*cfg)
		tb.Cleanup(func() { db.Close() })
		return db
	},
	Migrate: func(db *sql.DB, table string) (migratedb.Driver, error) {
		return migratepgx.WithInstance(db, &migratepgx.Config{MigrationsTable: table})
	},
	Snapshot: snapshot,
}

// snapshot describes the tables named with prefix in the current schema:
// columns, indexes and the version rows, the prefix replaced by "P_".
func snapshot(tb testing.TB, db bun.IDB, prefix string) []string {
	tb.Helper()
	var out []string
	query := func(kind, q string, args ...any) {
		out = append(out, sqlstoretest.Dump(tb, db, prefix, kind, q, args...)...)
	}
	args := []any{len(prefix), prefix, prefix + "goose", prefix + "migrate"}
	query("column", "SELECT table_name, ordinal_position, column_name, data_type, is_nullable, column_default, collation_name"+
		" FROM information_schema.columns WHERE table_schema = current_schema() AND left(table_name, ?) = ? AND table_name NOT IN (?, ?)"+
		" ORDER BY table_name, ordinal_position", args...)
	query("index", "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"+
		" AND left(tablename, ?) = ? AND tablename NOT IN (?, ?) ORDER BY tablename, indexname", args...)
	query("version", fmt.Sprintf(`SELECT version, oldest FROM "%sschema_version" ORDER BY version`, prefix))
	return out
}
