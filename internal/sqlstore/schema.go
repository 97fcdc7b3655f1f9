package sqlstore

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Migration is one step of a store's schema: the statements that take it
// from the version before to this one. Each store keeps an ordered list of
// them; [Store.Migrate], SchemaSQL and the goose and golang-migrate files
// are all made from that list.
type Migration struct {
	// Name names the migration in file names: lower case, digits and '_'.
	Name string
	// SQL holds the statements, with the store's placeholders for table
	// names. Every statement must be safe to run again.
	SQL []string
	// Oldest is the oldest schema version a program may be built for and
	// still run on the schema this migration leaves. 0 means that the
	// migration is expand-only (new tables, new nullable columns, new
	// indexes): programs that ran before it still run after it, and
	// Oldest is the previous migration's. A migration that drops,
	// renames or changes what existing programs use (a contracting
	// one) sets it to the first version whose programs no longer use
	// what it takes away.
	Oldest int
}

// OldestAt returns the oldest program version that runs on the schema at
// version v (at least 1): the highest Oldest of the migrations up to v.
func OldestAt(ms []Migration, v int) int {
	oldest := 1
	for _, m := range ms[:min(v, len(ms))] {
		oldest = max(oldest, m.Oldest)
	}
	return oldest
}

// ErrNoTables says that the store's tables, or its version table, do not
// exist.
var ErrNoTables = errors.New("no tables")

// MigrateHint is what a refused schema tells the operator to run.
const MigrateHint = "run `passreset schema migrate` or Store.Migrate, or apply the migration files"

// Compatible decides whether a program built for schema version want runs
// on a database at version have whose migrations need programs of version
// oldest or newer (oldest < 0: unknown, the rows do not say). A newer
// schema is fine while every migration after want was expand-only.
func Compatible(prefix string, want, have, oldest int) error {
	switch {
	case have == 0:
		return fmt.Errorf("no tables with prefix %q: %s: %w", prefix, MigrateHint, ErrNoTables)
	case have < want:
		return fmt.Errorf("the tables with prefix %q are at schema version %d, this program needs %d: %s", prefix, have, want, MigrateHint)
	case have > want && oldest < 0:
		return fmt.Errorf("the tables with prefix %q are at schema version %d, newer than this program's %d, and do not say which programs still run on them", prefix, have, want)
	case have > want && oldest > want:
		return fmt.Errorf("the tables with prefix %q are at schema version %d, which needs a program of schema version %d or newer (this one is %d): a contracting migration ran; deploy the newer program", prefix, have, oldest, want)
	}
	return nil
}

// contracting finds statements that take away or change what a running
// program may use: dropped or renamed tables and columns, changed column
// types, deleted rows.
var contracting = regexp.MustCompile(`(?i)\b(DROP\s+(TABLE|COLUMN|INDEX|KEY|CONSTRAINT|SCHEMA)|RENAME|MODIFY|CHANGE\s+COLUMN|ALTER\s+COLUMN|DELETE\s+FROM|TRUNCATE)\b`)

// CheckExpandOnly returns an error for every migration that claims to be
// expand-only (Oldest 0) but holds a statement that drops, renames or
// changes an existing table or column, or deletes rows. A migration that
// deletes queued mail is never expand-only.
func CheckExpandOnly(ms []Migration) error {
	var errs []error
	for i, m := range ms {
		if m.Oldest != 0 {
			continue
		}
		for _, stmt := range m.SQL {
			if w := contracting.FindString(stmt); w != "" {
				errs = append(errs, fmt.Errorf("migration %d (%s) is marked expand-only but says %q in %q", i+1, m.Name, w, firstLine(stmt)))
			}
		}
	}
	return errors.Join(errs...)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// Migration file tools.
const (
	Goose         = "goose"
	GolangMigrate = "golang-migrate"
)

// Script is a store's migrations rendered for one table prefix (and
// schema): Bootstrap creates the version table, Steps[i] holds migration
// i+1's statements, Record(v) the statement that records version v.
type Script struct {
	Store      string // "mysqlstore" or "pgstore"
	Dialect    string // "mysql" or "postgres", for the regeneration hint
	Prefix     string // the table prefix
	Schema     string // the PostgreSQL schema ("" for none)
	Bootstrap  []string
	Migrations []Migration // with the names filled in
	Record     func(version int) string
}

// Files renders the migration files for tool: goose's NNNNN_name.sql with
// Up and Down sections, or golang-migrate's NNNNNN_name.up.sql and
// .down.sql. Each file applies one migration and writes the store's own
// version row, so that a store opened on the result reads the version
// (Store.Check, Store.Version) as if Store.Migrate had run. Down files only
// remove that row: the schema stays, since every migration but a
// contracting one leaves a schema the previous program runs on; a
// contracting migration has no down file.
func (s Script) Files(tool string) (map[string]string, error) {
	if tool != Goose && tool != GolangMigrate {
		return nil, fmt.Errorf("unknown migration tool %q: want %q or %q", tool, Goose, GolangMigrate)
	}
	files := map[string]string{}
	for i, m := range s.Migrations {
		v := i + 1
		var up []string
		if i == 0 {
			up = append(up, s.Bootstrap...)
		}
		up = append(up, m.SQL...)
		up = append(up, s.Record(v))
		down := ""
		if m.Oldest == 0 || v == 1 {
			down = fmt.Sprintf("DELETE FROM %s WHERE version = %d;\n", s.versionTable(), v)
		}
		head := s.header(tool, v, m)
		switch tool {
		case Goose:
			b := head + "-- +goose Up\n" + statements(up)
			if down != "" {
				b += "\n-- +goose Down\n" + down
			}
			files[fmt.Sprintf("%05d_%s.sql", v, m.Name)] = b
		default: // GolangMigrate
			files[fmt.Sprintf("%06d_%s.up.sql", v, m.Name)] = head + statements(up)
			if down != "" {
				files[fmt.Sprintf("%06d_%s.down.sql", v, m.Name)] = head + down
			}
		}
	}
	return files, nil
}

// SQL returns every statement, semicolon-terminated, one after another:
// the bootstrap, then each migration followed by the row that records its
// version.
func (s Script) SQL() string {
	var b strings.Builder
	b.WriteString(statements(s.Bootstrap))
	for i, m := range s.Migrations {
		b.WriteString(statements(m.SQL))
		b.WriteString(s.Record(i+1) + ";\n")
	}
	return b.String()
}

// versionTable is the quoted version table.
func (s Script) versionTable() string {
	if s.Dialect == "mysql" {
		return "`" + s.Prefix + "schema_version`"
	}
	t := `"` + s.Prefix + `schema_version"`
	if s.Schema != "" {
		t = `"` + s.Schema + `".` + t
	}
	return t
}

func (s Script) header(tool string, v int, m Migration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "-- passreset %s schema version %d (%s), for %s.\n", s.Store, v, m.Name, tool)
	fmt.Fprintf(&b, "-- Generated from the migrations that %s's Store.Migrate runs; do not edit.\n", s.Store)
	fmt.Fprintf(&b, "-- Table prefix %q", s.Prefix)
	if s.Schema != "" {
		fmt.Fprintf(&b, ", schema %q", s.Schema)
	}
	fmt.Fprintf(&b, ". For another one: passreset schema files --dialect %s --tool %s --prefix P --dir D\n", s.Dialect, tool)
	if m.Oldest == 0 || v == 1 {
		b.WriteString("-- Expand-only: the previous program version keeps running on the result.\n")
	} else {
		fmt.Fprintf(&b, "-- Contracting: programs older than schema version %d stop; it has no down migration.\n", m.Oldest)
	}
	b.WriteString("\n")
	return b.String()
}

func statements(stmts []string) string {
	var b strings.Builder
	for _, s := range stmts {
		b.WriteString(s + ";\n")
	}
	return b.String()
}
