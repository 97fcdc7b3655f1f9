package pgstore

//go:generate go run ../../cmd/passreset schema files --dialect postgres --prefix passreset_ --tool goose --dir migrations/goose
//go:generate go run ../../cmd/passreset schema files --dialect postgres --prefix passreset_ --tool golang-migrate --dir migrations/golang-migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/uptrace/bun"

	"github.com/passreset/passreset/internal/sqlstore"
)

// SchemaVersion is the version of the schema this package needs.
// [Store.Migrate] brings the tables up to it; [Store.Check] refuses an
// older schema, and a newer one only when a contracting migration after
// this version has run (see "Schema" in the package documentation).
// It is the number of migrations, so the two cannot disagree.
const SchemaVersion = len(allMigrations) - withheld

// migrations are the migrations this build knows.
var migrations = allMigrations[:SchemaVersion]

// DefaultTablePrefix is the table-name prefix used when
// [Options.TablePrefix] is empty.
const DefaultTablePrefix = "passreset_"

// maxIdentLen is PostgreSQL's limit on identifiers (NAMEDATALEN-1).
const maxIdentLen = 63

// longestSuffix is the longest name the store puts after the prefix.
const longestSuffix = "schema_version"

// maxPrefixLen keeps every table and index name within maxIdentLen.
const maxPrefixLen = maxIdentLen - len(longestSuffix)

// names holds the quoted, schema-qualified names of the store's tables.
// Index names are unqualified: PostgreSQL puts an index in its table's
// schema.
type names struct {
	schema, prefix                     string
	tokens, cooldowns, outbox, version string
	budget, secrets, quotas            string
	fbEvents, suppressions             string
}

// quote quotes an identifier for PostgreSQL. The store validates its
// identifiers, so this only adds the double quotes that keep them exact
// (case included).
func quote(id string) string { return `"` + strings.ReplaceAll(id, `"`, `""`) + `"` }

func newNames(schema, prefix string) (names, error) {
	if prefix == "" {
		prefix = DefaultTablePrefix
	}
	if err := checkIdent("TablePrefix", prefix, maxPrefixLen); err != nil {
		return names{}, err
	}
	if schema != "" {
		if err := checkIdent("Schema", schema, maxIdentLen); err != nil {
			return names{}, err
		}
	}
	n := names{schema: schema, prefix: prefix}
	qual := func(table string) string {
		if schema == "" {
			return quote(prefix + table)
		}
		return quote(schema) + "." + quote(prefix+table)
	}
	n.tokens, n.cooldowns, n.outbox, n.version = qual("tokens"), qual("cooldowns"), qual("outbox"), qual("schema_version")
	n.budget, n.secrets, n.quotas = qual("budget"), qual("secrets"), qual("quotas")
	n.fbEvents, n.suppressions = qual("fb_events"), qual("suppressions")
	return n, nil
}

// checkIdent validates a schema name or table prefix.
func checkIdent(field, id string, maxLen int) error {
	if len(id) > maxLen {
		return fmt.Errorf("pgstore: %s %q is longer than %d bytes", field, id, maxLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return fmt.Errorf("pgstore: %s %q may hold only ASCII letters, digits and '_'", field, id)
		}
	}
	return nil
}

// allMigrations[i] holds the statements that take the schema from version
// i to version i+1. {tokens}, {cooldowns}, {outbox} stand for the
// qualified table names and {p} for the table prefix, which also starts
// the (quoted) index names. Every statement must be safe to run again.
//
// Append only, and expand only: a new migration adds tables, nullable
// columns or indexes, and never drops, renames or changes what the
// previous version's programs use, nor deletes rows (the ExpandOnly test
// of the stores' shared suite enforces it), so that the previous version keeps running on the result
// during a rolling upgrade and after a rollback. Taking something away is
// a later, separate migration whose Oldest names the first version that no
// longer uses it.
var allMigrations = [...]sqlstore.Migration{
	{Name: "tokens_cooldowns_outbox", SQL: []string{
		// One row per user: Rotate replaces it with an upsert on the
		// primary key. COLLATE "C" compares user IDs byte for byte.
		"CREATE TABLE IF NOT EXISTS {tokens} (\n" +
			"  user_id    text COLLATE \"C\" NOT NULL PRIMARY KEY,\n" +
			"  token_hash bytea       NOT NULL UNIQUE,\n" +
			"  email      text        NOT NULL,\n" +
			"  created_at timestamptz NOT NULL,\n" +
			"  expires_at timestamptz NOT NULL\n" +
			")",
		"CREATE INDEX IF NOT EXISTS \"{p}tokens_expires\" ON {tokens} (expires_at)",
		// The shared per-address cooldown, keyed by a hash of the
		// address. nonce identifies the call that started the running
		// cooldown, so that a retry after a lost answer recognises its
		// own write.
		"CREATE TABLE IF NOT EXISTS {cooldowns} (\n" +
			"  cooldown_key bytea       NOT NULL PRIMARY KEY,\n" +
			"  ends_at      timestamptz NOT NULL,\n" +
			"  nonce        bytea       NOT NULL\n" +
			")",
		"CREATE INDEX IF NOT EXISTS \"{p}cooldowns_ends\" ON {cooldowns} (ends_at)",
		// The durable outbox (outbox.Store). sealed is opaque: the
		// core's AES-256-GCM sealed content. nonce is written by Save and
		// Revive and cleared by Claim, so that a retry after a lost answer
		// recognises its own write. The partial indexes serve Claim (due
		// pending envelopes, oldest first), the bounded pending count and
		// the oldest pending envelope, and the dead ones.
		"CREATE TABLE IF NOT EXISTS {outbox} (\n" +
			"  id          text COLLATE \"C\" NOT NULL PRIMARY KEY,\n" +
			"  kind        text        NOT NULL,\n" +
			"  sealed      bytea       NOT NULL,\n" +
			"  key_id      text        NOT NULL,\n" +
			"  attempts    integer     NOT NULL,\n" +
			"  claims      integer     NOT NULL,\n" +
			"  not_before  timestamptz NOT NULL,\n" +
			"  created_at  timestamptz NOT NULL,\n" +
			"  dead        boolean     NOT NULL,\n" +
			"  last_error  text        NOT NULL,\n" +
			"  lease_owner text,\n" +
			"  lease_until timestamptz,\n" +
			"  nonce       bytea\n" +
			")",
		"CREATE INDEX IF NOT EXISTS \"{p}outbox_claim\" ON {outbox} (not_before, created_at, id) WHERE NOT dead",
		"CREATE INDEX IF NOT EXISTS \"{p}outbox_pending\" ON {outbox} (created_at) WHERE NOT dead",
		"CREATE INDEX IF NOT EXISTS \"{p}outbox_dead\" ON {outbox} (created_at, id) WHERE dead",
	}},
	{Name: "budget", SQL: []string{
		// The provider budget shared by every instance (outbox.Store.Reserve):
		// one row per budget key, holding its theoretical arrival time.
		"CREATE TABLE IF NOT EXISTS {budget} (\n" +
			"  budget_key text COLLATE \"C\" NOT NULL PRIMARY KEY,\n" +
			"  tat        timestamptz NOT NULL\n" +
			")",
	}},
	{Name: "secrets", SQL: []string{
		// The store's secrets, one row each, made at random by the first
		// instance that needs one: 'cooldown' keys the cooldowns.
		"CREATE TABLE IF NOT EXISTS {secrets} (\n" +
			"  name   text COLLATE \"C\" NOT NULL PRIMARY KEY,\n" +
			"  secret bytea NOT NULL\n" +
			")",
	}},
	{Name: "stamp_quotas", SQL: []string{
		// Expand only, so that a program of version 3 keeps running on
		// this schema. stamp is the keyed hash of the account's
		// credential stamp (reset.Record.Stamp), NULL for none.
		"ALTER TABLE {tokens} ADD COLUMN IF NOT EXISTS stamp bytea",
		// The daily per-address budget (reset.Quota): one row per key
		// (HMAC of the address under the cooldown secret), holding its
		// uses in the last window (24 bytes each: time and owner) and
		// when the last of them stops counting.
		"CREATE TABLE IF NOT EXISTS {quotas} (\n" +
			"  quota_key bytea       NOT NULL PRIMARY KEY,\n" +
			"  uses      bytea       NOT NULL,\n" +
			"  ends_at   timestamptz NOT NULL\n" +
			")",
		"CREATE INDEX IF NOT EXISTS \"{p}quotas_ends\" ON {quotas} (ends_at)",
	}},
	{Name: "feedback", SQL: []string{
		// Expand only: delivery feedback (feedback.Store). address is the
		// keyed hash of the recipient, never the address. event_id is the
		// provider's delivery ID, whose uniqueness refuses replays; nonce
		// lets a retry after a lost answer recognise its own insert.
		"CREATE TABLE IF NOT EXISTS {fb_events} (\n" +
			"  event_id    text COLLATE \"C\" NOT NULL PRIMARY KEY,\n" +
			"  address     bytea       NOT NULL,\n" +
			"  type        text        NOT NULL,\n" +
			"  bounce      text        NOT NULL,\n" +
			"  detail      text        NOT NULL,\n" +
			"  happened_at timestamptz NOT NULL,\n" +
			"  received_at timestamptz NOT NULL,\n" +
			"  message_id  text        NOT NULL,\n" +
			"  provider_id text        NOT NULL,\n" +
			"  nonce       bytea       NOT NULL\n" +
			")",
		"CREATE INDEX IF NOT EXISTS \"{p}fb_events_addr\" ON {fb_events} (address, happened_at, received_at, event_id)",
		"CREATE INDEX IF NOT EXISTS \"{p}fb_events_recv\" ON {fb_events} (received_at)",
		// One row per address that was suppressed or cleared: the Time of
		// its latest hard bounce or complaint, and of its latest clear.
		"CREATE TABLE IF NOT EXISTS {suppressions} (\n" +
			"  address       bytea       NOT NULL PRIMARY KEY,\n" +
			"  suppressed_at timestamptz NULL,\n" +
			"  cleared_at    timestamptz NULL\n" +
			")",
	}},
}

// versionTable holds one row per applied migration: its version and the
// oldest program version that runs on the schema it leaves (NULL in rows
// written before the column existed). The ALTER adds the column to a
// table made without it.
var versionTable = []string{
	"CREATE TABLE IF NOT EXISTS {version} (\n" +
		"  version integer NOT NULL PRIMARY KEY,\n" +
		"  oldest  integer\n" +
		")",
	"ALTER TABLE {version} ADD COLUMN IF NOT EXISTS oldest integer",
}

const recordVersion = "INSERT INTO {version} (version, oldest) VALUES (%d, %d) ON CONFLICT DO NOTHING"

// fill puts the table and index names into a statement.
func (n names) fill(stmt string) string {
	return strings.NewReplacer("{tokens}", n.tokens, "{cooldowns}", n.cooldowns, "{outbox}", n.outbox,
		"{version}", n.version, "{budget}", n.budget, "{secrets}", n.secrets, "{quotas}", n.quotas,
		"{fb_events}", n.fbEvents, "{suppressions}", n.suppressions, "{p}", n.prefix).Replace(stmt)
}

// script renders the migrations with the names filled in.
func (n names) script() sqlstore.Script {
	fill := func(stmts []string) []string {
		out := make([]string, len(stmts))
		for i, stmt := range stmts {
			out[i] = n.fill(stmt)
		}
		return out
	}
	sc := sqlstore.Script{Store: "pgstore", Dialect: "postgres", Prefix: n.prefix, Schema: n.schema,
		Record: func(v int) string { return n.fill(fmt.Sprintf(recordVersion, v, sqlstore.OldestAt(migrations, v))) }}
	if n.schema != "" {
		sc.Bootstrap = append(sc.Bootstrap, "CREATE SCHEMA IF NOT EXISTS "+quote(n.schema))
	}
	sc.Bootstrap = append(sc.Bootstrap, fill(versionTable)...)
	for _, m := range migrations {
		m.SQL = fill(m.SQL)
		sc.Migrations = append(sc.Migrations, m)
	}
	return sc
}

// SchemaSQL returns the SQL that creates the schema at [SchemaVersion] in
// schema ("" for the connection's current schema) with tablePrefix (""
// means [DefaultTablePrefix]), for teams that run their own migrations:
// semicolon-terminated statements, the same ones [Store.Migrate] runs,
// each migration followed by the row that records its version. Every
// statement is idempotent. The same statements, one migration a file, are
// in [MigrationFiles] for goose and golang-migrate. After applying them,
// call [Store.Check] at startup.
func SchemaSQL(schema, tablePrefix string) (string, error) {
	n, err := newNames(schema, tablePrefix)
	if err != nil {
		return "", err
	}
	return n.script().SQL(), nil
}

// MigrationFiles returns the migration files for tool, "goose" or
// "golang-migrate", in schema ("" for the connection's current one) with
// tablePrefix ("" means [DefaultTablePrefix]): file name to content, one
// file (golang-migrate: one up file and one down file) per migration, made
// from the same statements as [Store.Migrate] and [SchemaSQL]. Each up
// file also records its version in <prefix>schema_version, so that
// [Store.Check] accepts the result. Down files only delete that row and
// leave the tables, on which the previous program version runs. The files
// for the defaults are in the module's store/pgstore/migrations directory;
// `passreset schema files` writes them for another prefix.
func MigrationFiles(tool, schema, tablePrefix string) (map[string]string, error) {
	n, err := newNames(schema, tablePrefix)
	if err != nil {
		return nil, err
	}
	files, err := n.script().Files(tool)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	return files, nil
}

// names returns the store's names.
func (s *Store) names() names {
	n, _ := newNames(s.schema, s.prefix) // validated by New
	return n
}

// Migrate creates or upgrades the store's tables to [SchemaVersion] (and
// the schema of [Options.Schema] if it is missing), then runs
// [Store.Check]. It runs in one transaction that holds a transaction-level
// advisory lock, so it is idempotent and safe to run from several
// processes at once; call it from a deployment step (`passreset schema
// migrate`) or at startup, or apply [SchemaSQL] or [MigrationFiles] with
// your own migration tool instead. It refuses a read-only server (a
// standby) with [ErrReadOnly]. On a newer schema that this version runs on
// (every later migration expand-only) it changes nothing; on one it does
// not run on it fails.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.checkServer(ctx); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	n := s.names()
	sc := n.script()
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", lockKey(n.schema))); err != nil {
			return err
		}
		for _, stmt := range sc.Bootstrap {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		cur, oldest, err := version(ctx, tx, n)
		if err != nil {
			return err
		}
		if cur > SchemaVersion {
			return sqlstore.Compatible(n.prefix, SchemaVersion, cur, oldest)
		}
		for v := cur; v < SchemaVersion; v++ {
			for _, stmt := range append(sc.Migrations[v].SQL, sc.Record(v+1)) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("to version %d: %w", v+1, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", classifyReadOnly(err))
	}
	return s.Check(ctx)
}

// lockKey is the advisory lock that serialises migrations of one schema.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("passreset/pgstore migrate " + schema))
	return int64(h.Sum64())
}

// version returns the highest applied schema version (0 for none) and,
// when it is newer than SchemaVersion, the oldest program version that
// runs on it (-1 when the rows do not say).
func version(ctx context.Context, db bun.IConn, n names) (v, oldest int, err error) {
	var x sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT max(version) FROM "+n.version).Scan(&x); err != nil {
		return 0, 0, err
	}
	v = int(x.Int64)
	if v <= SchemaVersion {
		return v, sqlstore.OldestAt(migrations, v), nil
	}
	// A row without oldest (unknown) makes the whole answer unknown.
	var unknown int
	if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT max(oldest), count(*) - count(oldest) FROM %s WHERE version > %d", n.version, SchemaVersion)).Scan(&x, &unknown); err != nil {
		return 0, 0, err
	}
	if !x.Valid || unknown > 0 {
		return v, -1, nil
	}
	return v, int(x.Int64), nil
}

// Version reads the schema version installed in the database: the
// highest one recorded in <prefix>schema_version, 0 when that table (or
// the store's schema) does not exist: nothing is installed. It only
// reads, with one SELECT; compare it with [SchemaVersion], or call
// [Store.Check] for everything the store needs.
func (s *Store) Version(ctx context.Context) (int, error) {
	v, _, err := version(ctx, s.db, s.names())
	switch {
	case missing(err):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("pgstore: version: %w", err)
	}
	return v, nil
}

// missing reports whether err says that a table or schema does not exist.
func missing(err error) bool {
	return sqlState(err) == "42P01" || sqlState(err) == "3F000" // undefined_table, invalid_schema_name
}

// ErrReadOnly is what the store returns when the server refuses writes:
// the connection goes to a standby (pg_is_in_recovery() is true) or its
// transactions are read-only (default_transaction_read_only, SQLSTATE
// 25006). Connect to the primary. It is checked with errors.Is; it may be
// wrapped.
var ErrReadOnly = errors.New("pgstore: the server is read-only (a standby, or default_transaction_read_only is on): connect to the primary")

// checkServer refuses a connection the store cannot work on: a standby or
// a read-only session, a database whose encoding is not UTF8, and
// standard_conforming_strings off (bun writes string and bytea literals
// for it being on).
func (s *Store) checkServer(ctx context.Context) error {
	var recovery bool
	var readOnly, encoding, conforming string
	err := s.db.QueryRowContext(ctx, "SELECT pg_is_in_recovery(), current_setting('transaction_read_only'),"+
		" current_setting('server_encoding'), current_setting('standard_conforming_strings')").
		Scan(&recovery, &readOnly, &encoding, &conforming)
	switch {
	case err != nil:
		return err
	case recovery:
		return fmt.Errorf("%w (pg_is_in_recovery() is true)", ErrReadOnly)
	case readOnly == "on":
		return fmt.Errorf("%w (transaction_read_only is on)", ErrReadOnly)
	case encoding != "UTF8":
		return fmt.Errorf("the database's encoding is %s; the store needs UTF8 (CREATE DATABASE ... ENCODING 'UTF8')", encoding)
	case conforming != "on":
		return errors.New("standard_conforming_strings is off; the store needs it on (the default)")
	}
	return nil
}

// Check verifies that the connection can be used (see [Store.Migrate] for
// what it refuses) and that the tables exist at [SchemaVersion], or at a
// newer version whose later migrations were all expand-only (see "Schema"
// in the package documentation). It changes nothing. [Store.Migrate] and
// [Open] call it; call it at startup if you apply [SchemaSQL] or
// [MigrationFiles] yourself.
func (s *Store) Check(ctx context.Context) error {
	if err := s.checkServer(ctx); err != nil {
		return fmt.Errorf("pgstore: check: %w", err)
	}
	n := s.names()
	v, oldest, err := version(ctx, s.db, n)
	switch {
	case missing(err):
		return fmt.Errorf("pgstore: check: %w", sqlstore.Compatible(n.prefix, SchemaVersion, 0, 0))
	case err != nil:
		return fmt.Errorf("pgstore: check: %w", err)
	}
	if err := sqlstore.Compatible(n.prefix, SchemaVersion, v, oldest); err != nil {
		return fmt.Errorf("pgstore: check: %w", err)
	}
	return nil
}
