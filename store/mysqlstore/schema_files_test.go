package mysqlstore_test

import (
	"database/sql"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"
	migratedb "github.com/golang-migrate/migrate/v4/database"
	migratemysql "github.com/golang-migrate/migrate/v4/database/mysql"
	"github.com/pressly/goose/v3"
	"github.com/uptrace/bun"

	"github.com/passreset/passreset/internal/sqlstore/sqlstoretest"
	"github.com/passreset/passreset/store/mysqlstore"
)

// files describes the store's migration files to the shared suite.
var files = sqlstoretest.Files{
	Render: mysqlstore.MigrationFiles,
	Goose:  goose.DialectMySQL,
	SQLDB: func(tb testing.TB) *sql.DB {
		cfg, err := mysql.ParseDSN(testDSN(tb))
		if err != nil {
			tb.Fatal(err)
		}
		cfg.MultiStatements = true // golang-migrate sends a file as one query
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		db := sql.OpenDB(conn)
		tb.Cleanup(func() { db.Close() })
		return db
	},
	Migrate: func(db *sql.DB, table string) (migratedb.Driver, error) {
		return migratemysql.WithInstance(db, &migratemysql.Config{MigrationsTable: table})
	},
	Snapshot: snapshot,
}

// snapshot describes the tables named with prefix: columns, indexes,
// table options and the version rows, the prefix replaced by "P_".
func snapshot(tb testing.TB, db bun.IDB, prefix string) []string {
	tb.Helper()
	mine := "table_schema = DATABASE() AND LEFT(table_name, ?) = ? AND table_name NOT IN (?, ?)"
	args := []any{len(prefix), prefix, prefix + "goose", prefix + "migrate"}
	return sqlstoretest.Dump(tb, db, prefix,
		sqlstoretest.Query{Kind: "table", Args: args,
			SQL: "SELECT table_name, engine, table_collation FROM information_schema.tables WHERE " + mine + " ORDER BY table_name"},
		sqlstoretest.Query{Kind: "column", Args: args,
			SQL: "SELECT table_name, ordinal_position, column_name, column_type, is_nullable, column_default, character_set_name," +
				" collation_name FROM information_schema.columns WHERE " + mine + " ORDER BY table_name, ordinal_position"},
		sqlstoretest.Query{Kind: "index", Args: args,
			SQL: "SELECT table_name, index_name, seq_in_index, column_name, non_unique FROM information_schema.statistics WHERE " +
				mine + " ORDER BY table_name, index_name, seq_in_index"},
		sqlstoretest.Query{Kind: "version", SQL: fmt.Sprintf("SELECT version, oldest FROM `%sschema_version` ORDER BY version", prefix)},
	)
}
