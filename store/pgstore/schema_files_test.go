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
	mine := " AND left(%[1]s, ?) = ? AND %[1]s NOT IN (?, ?)"
	args := []any{len(prefix), prefix, prefix + "goose", prefix + "migrate"}
	return sqlstoretest.Dump(tb, db, prefix,
		sqlstoretest.Query{Kind: "column", Args: args,
			SQL: "SELECT table_name, ordinal_position, column_name, data_type, is_nullable, column_default, collation_name" +
				" FROM information_schema.columns WHERE table_schema = current_schema()" + fmt.Sprintf(mine, "table_name") +
				" ORDER BY table_name, ordinal_position"},
		sqlstoretest.Query{Kind: "index", Args: args,
			SQL: "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()" +
				fmt.Sprintf(mine, "tablename") + " ORDER BY tablename, indexname"},
		sqlstoretest.Query{Kind: "version", SQL: fmt.Sprintf(`SELECT version, oldest FROM "%sschema_version" ORDER BY version`, prefix)},
	)
}
