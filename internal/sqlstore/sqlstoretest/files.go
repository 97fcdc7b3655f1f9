package sqlstoretest

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/golang-migrate/migrate/v4"
	migratedb "github.com/golang-migrate/migrate/v4/database"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/pressly/goose/v3"
	"github.com/uptrace/bun"

	"github.com/passreset/passreset/internal/sqlstore"
)

// Files describes a store's migration files to the suite.
type Files struct {
	// Render returns the files of tool for the table prefix ("" for the
	// default), as the store's MigrationFiles does.
	Render func(tool, prefix string) (map[string]string, error)
	// Goose is goose's name of the dialect.
	Goose goose.Dialect
	// SQLDB opens a database/sql handle on the test database, closed
	// when tb ends, that runs a string of several statements as one
	// query (golang-migrate sends each file so).
	SQLDB func(tb testing.TB) *sql.DB
	// Migrate returns golang-migrate's driver on db that keeps its
	// version in table.
	Migrate func(db *sql.DB, table string) (migratedb.Driver, error)
	// Snapshot describes the tables named with prefix, the prefix
	// replaced by "P_": their columns with types, nullability, defaults
	// and collations, their indexes, and the rows of the version table.
	Snapshot func(tb testing.TB, db bun.IDB, prefix string) []string
}

// The checked-in migration files are what the store renders now, and
// goose and golang-migrate applying them give the schema Migrate makes,
// with the version rows the store reads.
func testMigrationFiles(t *testing.T, h Harness) {
	for _, tool := range []string{sqlstore.Goose, sqlstore.GolangMigrate} {
		want, err := h.Files.Render(tool, "")
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join("migrations", tool)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			got[e.Name()] = string(b)
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s holds %v, the store renders %v: run go generate ./store/...", dir, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
	}

	db := h.DB(t)
	ctx := t.Context()
	ref := h.NewStore(t, db, 0)
	want := h.Files.Snapshot(t, db, ref.TablePrefix())
	if len(want) == 0 {
		t.Fatal("empty snapshot of the migrated tables")
	}
	apply := map[string]func(t *testing.T, fsys fstest.MapFS, prefix string){
		sqlstore.Goose: func(t *testing.T, fsys fstest.MapFS, prefix string) {
			sqldb := h.Files.SQLDB(t)
			p, err := goose.NewProvider(h.Files.Goose, sqldb, fsys, goose.WithTableName(prefix+"goose"), goose.WithDisableGlobalRegistry(true))
			if err != nil {
				t.Fatal(err)
			}
			h.dropExtra(t, db, prefix+"goose")
			if _, err := p.Up(ctx); err != nil {
				t.Fatal(err)
			}
			if v, err := p.GetDBVersion(ctx); err != nil || v != int64(h.SchemaVersion) {
				t.Fatalf("goose's version %d, %v; want %d", v, err, h.SchemaVersion)
			}
			// Down (the newest migration is expand-only) removes only the
			// version row; the tables stay for the previous program.
			tables := func() []string {
				return slices.DeleteFunc(h.Files.Snapshot(t, db, prefix), func(l string) bool { return strings.HasPrefix(l, "version ") })
			}
			before := tables()
			if _, err := p.Down(ctx); err != nil {
				t.Fatal(err)
			}
			s, err := h.New(db, prefix, 0)
			if err != nil {
				t.Fatal(err)
			}
			if v, err := s.Version(ctx); err != nil || v != h.SchemaVersion-1 || !slices.Equal(tables(), before) {
				t.Fatalf("after goose down: version %d, %v; tables changed: %v", v, err, !slices.Equal(tables(), before))
			}
			if _, err := p.Up(ctx); err != nil {
				t.Fatal(err)
			}
		},
		sqlstore.GolangMigrate: func(t *testing.T, fsys fstest.MapFS, prefix string) {
			sqldb := h.Files.SQLDB(t)
			src, err := iofs.New(fsys, ".")
			if err != nil {
				t.Fatal(err)
			}
			drv, err := h.Files.Migrate(sqldb, prefix+"migrate")
			if err != nil {
				t.Fatal(err)
			}
			h.dropExtra(t, db, prefix+"migrate")
			m, err := migrate.NewWithInstance("iofs", src, "db", drv)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Up(); err != nil {
				t.Fatal(err)
			}
			if v, dirty, err := m.Version(); err != nil || dirty || v != uint(h.SchemaVersion) {
				t.Fatalf("golang-migrate's version %d (dirty %v), %v; want %d", v, dirty, err, h.SchemaVersion)
			}
		},
	}
	for _, tool := range []string{sqlstore.Goose, sqlstore.GolangMigrate} {
		t.Run(tool, func(t *testing.T) {
			prefix := NewPrefix()
			files, err := h.Files.Render(tool, prefix)
			if err != nil {
				t.Fatal(err)
			}
			fsys := fstest.MapFS{}
			for name, body := range files {
				fsys[name] = &fstest.MapFile{Data: []byte(body)}
			}
			s, err := h.New(db, prefix, 0)
			if err != nil {
				t.Fatal(err)
			}
			h.Drop(t, db, prefix)
			apply[tool](t, fsys, prefix)
			if got := h.Files.Snapshot(t, db, prefix); !slices.Equal(got, want) {
				t.Errorf("%s made another schema than Migrate:\n%s\nMigrate:\n%s", tool, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if err := s.Check(ctx); err != nil {
				t.Fatalf("Check after %s: %v", tool, err)
			}
			if v, err := s.Version(ctx); err != nil || v != h.SchemaVersion {
				t.Fatalf("Version after %s = %d, %v", tool, v, err)
			}
			// Migrate after the tool changes nothing.
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if got := h.Files.Snapshot(t, db, prefix); !slices.Equal(got, want) {
				t.Errorf("Migrate after %s changed the schema:\n%s", tool, strings.Join(got, "\n"))
			}
		})
	}
}

// Query is one query of a snapshot: its rows become lines that start
// with Kind.
type Query struct {
	Kind, SQL string
	Args      []any
}

// Dump returns the rows of the queries as lines that start with their
// kind, each value quoted, with prefix replaced by "P_": a Snapshot.
func Dump(tb testing.TB, db bun.IDB, prefix string, queries ...Query) []string {
	tb.Helper()
	var out []string
	for _, q := range queries {
		out = append(out, dump(tb, db, prefix, q.Kind, q.SQL, q.Args...)...)
	}
	return out
}

func dump(tb testing.TB, db bun.IDB, prefix, kind, q string, args ...any) []string {
	tb.Helper()
	rows, err := db.QueryContext(context.Background(), q, args...)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			tb.Fatal(err)
		}
		line := kind
		for _, v := range vals {
			line += fmt.Sprintf(" %q", strings.ReplaceAll(v.String, prefix, "P_"))
		}
		out = append(out, line)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// dropExtra drops table when tb ends.
func (h Harness) dropExtra(tb testing.TB, db bun.IDB, table string) {
	tb.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+h.Quote(table)); err != nil {
			tb.Errorf("dropping %s: %v", table, err)
		}
	})
}
