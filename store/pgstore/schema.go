package pgstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/uptrace/bun"
)

// SchemaVersion is the version of the schema this package needs.
// [Store.Migrate] brings the tables up to it; [Store.Check] refuses an
// older schema.
// It is the number of migrations, so the two cannot disagree.
const SchemaVersion = len(migrations)

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

// migrations[i] holds the statements that take the schema from version i
// to version i+1. {tokens}, {cooldowns}, {outbox} stand for the qualified
// table names and {p} for the table prefix, which also starts the (quoted)
// index names. Every statement must
// be safe to run again.
var migrations = [...][]string{
	{
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
	},
	{
		// The provider budget shared by every instance (outbox.Store.Reserve):
		// one row per budget key, holding its theoretical arrival time.
		"CREATE TABLE IF NOT EXISTS {budget} (\n" +
			"  budget_key text COLLATE \"C\" NOT NULL PRIMARY KEY,\n" +
			"  tat        timestamptz NOT NULL\n" +
			")",
	},
	{
		// The store's secrets, one row each, made at random by the first
		// instance that needs one: 'cooldown' keys the cooldowns.
		"CREATE TABLE IF NOT EXISTS {secrets} (\n" +
			"  name   text COLLATE \"C\" NOT NULL PRIMARY KEY,\n" +
			"  secret bytea NOT NULL\n" +
			")",
	},
	{
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
	},
	{
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
	},
}

const createVersionTable = "CREATE TABLE IF NOT EXISTS {version} (\n" +
	"  version integer NOT NULL PRIMARY KEY\n" +
	")"

const recordVersion = "INSERT INTO {version} (version) VALUES (%d) ON CONFLICT DO NOTHING"

// fill puts the table and index names into a statement.
func (n names) fill(stmt string) string {
	return strings.NewReplacer("{tokens}", n.tokens, "{cooldowns}", n.cooldowns, "{outbox}", n.outbox,
		"{version}", n.version, "{budget}", n.budget, "{secrets}", n.secrets, "{quotas}", n.quotas,
		"{fb_events}", n.fbEvents, "{suppressions}", n.suppressions, "{p}", n.prefix).Replace(stmt)
}

// script returns the statements that create the schema at SchemaVersion,
// ending with the row that records each version.
func (n names) script() []string {
	var out []string
	if n.schema != "" {
		out = append(out, "CREATE SCHEMA IF NOT EXISTS "+quote(n.schema))
	}
	out = append(out, n.fill(createVersionTable))
	for i, m := range migrations {
		for _, stmt := range m {
			out = append(out, n.fill(stmt))
		}
		out = append(out, n.fill(fmt.Sprintf(recordVersion, i+1)))
	}
	return out
}

// SchemaSQL returns the SQL that creates the schema at [SchemaVersion] in
// schema ("" for the connection's current schema) with tablePrefix (""
// means [DefaultTablePrefix]), for teams that run their own migrations
// (goose, atlas, golang-migrate): semicolon-terminated statements, the
// same ones [Store.Migrate] runs, ending with the row that records the
// version. Every statement is idempotent. After applying it, call
// [Store.Check] at startup.
func SchemaSQL(schema, tablePrefix string) (string, error) {
	n, err := newNames(schema, tablePrefix)
	if err != nil {
		return "", err
	}
	return strings.Join(n.script(), ";\n") + ";\n", nil
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
// processes at once; call it at startup, or apply [SchemaSQL] with your own
// migration tool instead. It refuses a read-only server (a standby) with
// [ErrReadOnly], and fails if the database holds a newer schema than this
// package knows.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.checkServer(ctx); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	n := s.names()
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", lockKey(n.schema))); err != nil {
			return err
		}
		if n.schema != "" {
			if _, err := tx.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+quote(n.schema)); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, n.fill(createVersionTable)); err != nil {
			return err
		}
		cur, err := version(ctx, tx, n)
		if err != nil {
			return err
		}
		if cur > SchemaVersion {
			return fmt.Errorf("the tables with prefix %q are at schema version %d, newer than this package's %d", n.prefix, cur, SchemaVersion)
		}
		for v := cur; v < SchemaVersion; v++ {
			for _, stmt := range migrations[v] {
				if _, err := tx.ExecContext(ctx, n.fill(stmt)); err != nil {
					return fmt.Errorf("to version %d: %w", v+1, err)
				}
			}
			if _, err := tx.ExecContext(ctx, n.fill(fmt.Sprintf(recordVersion, v+1))); err != nil {
				return fmt.Errorf("to version %d: %w", v+1, err)
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

// version returns the highest applied schema version, 0 for none.
func version(ctx context.Context, db bun.IConn, n names) (int, error) {
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT max(version) FROM "+n.version).Scan(&v); err != nil {
		return 0, err
	}
	return int(v.Int64), nil
}

// Version reads the schema version installed in the database: the
// highest one recorded in <prefix>schema_version, 0 when that table (or
// the store's schema) does not exist: nothing is installed. It only
// reads, with one SELECT; compare it with [SchemaVersion], or call
// [Store.Check] for everything the store needs.
func (s *Store) Version(ctx context.Context) (int, error) {
	v, err := version(ctx, s.db, s.names())
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
// what it refuses) and that the tables exist at [SchemaVersion].
// [Store.Migrate] calls it; call it at startup if you apply [SchemaSQL]
// yourself.
func (s *Store) Check(ctx context.Context) error {
	if err := s.checkServer(ctx); err != nil {
		return fmt.Errorf("pgstore: check: %w", err)
	}
	n := s.names()
	v, err := version(ctx, s.db, n)
	switch {
	case missing(err):
		return fmt.Errorf("pgstore: check: no tables with prefix %q: run Migrate or apply SchemaSQL: %w", n.prefix, err)
	case err != nil:
		return fmt.Errorf("pgstore: check: %w", err)
	case v < SchemaVersion:
		return fmt.Errorf("pgstore: check: the tables with prefix %q are at schema version %d, want %d: run Migrate", n.prefix, v, SchemaVersion)
	case v > SchemaVersion:
		return fmt.Errorf("pgstore: check: the tables with prefix %q are at schema version %d, newer than this package's %d", n.prefix, v, SchemaVersion)
	}
	return nil
}
