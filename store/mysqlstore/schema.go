package mysqlstore

//go:generate go run ../../cmd/passreset schema files --dialect mysql --prefix passreset_ --tool goose --dir migrations/goose
//go:generate go run ../../cmd/passreset schema files --dialect mysql --prefix passreset_ --tool golang-migrate --dir migrations/golang-migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"

	"github.com/passreset/passreset/internal/sqlstore"
)

// SchemaVersion is the version of the schema this package needs. [Store.Migrate]
// brings the tables up to it; [Store.Check] refuses an older schema, and a
// newer one only when a contracting migration after this version has run
// (see "Schema" in the package documentation).
// It is the number of migrations, so the two cannot disagree.
const SchemaVersion = len(allMigrations) - withheld

// migrations are the migrations this build knows.
var migrations = allMigrations[:SchemaVersion]

// DefaultTablePrefix is the table-name prefix used when
// [Options.TablePrefix] is empty.
const DefaultTablePrefix = "passreset_"

// maxPrefixLen keeps the longest table name ("<prefix>schema_version")
// within MySQL's 64-character limit.
const maxPrefixLen = 64 - len("schema_version")

// allMigrations[i] holds the statements that take the schema from version i
// to version i+1. "%[1]s" stands for the table prefix. Every statement must
// be safe to run again, since two processes may migrate at the same time,
// and the statements of one migration run on one connection, in order.
//
// Append only, and expand only: a new migration adds tables, nullable
// columns or indexes, and never drops, renames or changes what the
// previous version's programs use, nor deletes rows (the ExpandOnly test
// of the stores' shared suite enforces it), so that the previous version keeps running on the result
// during a rolling upgrade and after a rollback. Taking something away is
// a later, separate migration whose Oldest names the first version that no
// longer uses it.
var allMigrations = [...]sqlstore.Migration{
	{Name: "tokens_cooldowns", SQL: []string{
		// One row per user: Rotate replaces it with an upsert on the primary
		// key. user_id is VARBINARY so that IDs compare byte for byte (no
		// collation folding case or trailing spaces).
		"CREATE TABLE IF NOT EXISTS `%[1]stokens` (\n" +
			"  user_id    VARBINARY(255) NOT NULL,\n" +
			"  token_hash BINARY(32)     NOT NULL,\n" +
			"  email      VARCHAR(320)   CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,\n" +
			"  created_at DATETIME(6)    NOT NULL,\n" +
			"  expires_at DATETIME(6)    NOT NULL,\n" +
			"  PRIMARY KEY (user_id),\n" +
			"  UNIQUE KEY token_hash (token_hash),\n" +
			"  KEY expires_at (expires_at)\n" +
			") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
		// The shared per-address cooldown. nonce identifies the call that
		// started the running cooldown, so that a retry after a lost
		// connection can tell its own write from someone else's.
		"CREATE TABLE IF NOT EXISTS `%[1]scooldowns` (\n" +
			"  cooldown_key BINARY(32)  NOT NULL,\n" +
			"  ends_at      DATETIME(6) NOT NULL,\n" +
			"  nonce        BINARY(16)  NOT NULL,\n" +
			"  PRIMARY KEY (cooldown_key),\n" +
			"  KEY ends_at (ends_at)\n" +
			") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
	}},
	{Name: "outbox", SQL: []string{
		// The durable outbox (outbox.Store). Times are UTC. sealed
		// holds an AES-GCM sealed message, never a token in the clear.
		// nonce is rewritten by every Save and Revive, so that such an
		// UPDATE always changes its row (rows affected then tells whether
		// the lease was held) and so that a retry after a lost answer can
		// recognise its own write. claim_order serves Claim's ORDER BY
		// and the due range; dead_created serves the pending count, the
		// oldest pending envelope and the list of dead ones.
		"CREATE TABLE IF NOT EXISTS `%[1]soutbox` (\n" +
			"  id          VARBINARY(64)   NOT NULL,\n" +
			"  kind        VARBINARY(32)   NOT NULL,\n" +
			"  email       VARCHAR(320)    CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,\n" +
			"  link        VARBINARY(2048) NOT NULL,\n" +
			"  sealed      MEDIUMBLOB      NULL,\n" +
			"  key_id      VARBINARY(64)   NOT NULL,\n" +
			"  attempts    INT             NOT NULL,\n" +
			"  claims      INT             NOT NULL,\n" +
			"  not_before  DATETIME(6)     NOT NULL,\n" +
			"  created_at  DATETIME(6)     NOT NULL,\n" +
			"  dead        BOOL            NOT NULL,\n" +
			"  last_error  VARCHAR(1000)   CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,\n" +
			"  lease_owner VARBINARY(255)  NULL,\n" +
			"  lease_until DATETIME(6)     NULL,\n" +
			"  nonce       BINARY(16)      NOT NULL,\n" +
			"  PRIMARY KEY (id),\n" +
			"  KEY claim_order (dead, not_before, created_at, id),\n" +
			"  KEY dead_created (dead, created_at, id)\n" +
			") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
	}},
	// Contracting: programs of version 2 read the columns it drops.
	{Name: "outbox_sealed_only", Oldest: 3, SQL: []string{
		// The outbox keeps nothing in the clear: sealed holds the typed
		// address, the link and the rendered email together, so email and
		// link go and sealed is required. Version 2 kept public requests
		// unsealed (sealed NULL); this version cannot read them, so they
		// are deleted (drain the outbox before upgrading to keep them).
		// MySQL has no DROP COLUMN IF EXISTS: the ALTER is prepared only
		// while the email column exists, so that running the statements
		// again does nothing. Run them on one connection (a session
		// variable and a prepared statement carry between them).
		"DELETE FROM `%[1]soutbox` WHERE sealed IS NULL",
		"SET @%[1]sv3 = (SELECT IF(COUNT(*) = 0, 'DO 0',\n" +
			"  'ALTER TABLE `%[1]soutbox` DROP COLUMN email, DROP COLUMN link, MODIFY sealed MEDIUMBLOB NOT NULL')\n" +
			"  FROM information_schema.columns\n" +
			"  WHERE table_schema = DATABASE() AND table_name = '%[1]soutbox' AND column_name = 'email')",
		"PREPARE %[1]sv3 FROM @%[1]sv3",
		"EXECUTE %[1]sv3",
		"DEALLOCATE PREPARE %[1]sv3",
	}},
	{Name: "budget", SQL: []string{
		// The provider budget shared by every instance (outbox.Store.Reserve):
		// one row per budget key, holding the budget's theoretical arrival
		// time (UTC).
		"CREATE TABLE IF NOT EXISTS `%[1]sbudget` (\n" +
			"  budget_key VARBINARY(255) NOT NULL,\n" +
			"  tat        DATETIME(6)    NOT NULL,\n" +
			"  PRIMARY KEY (budget_key)\n" +
			") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
	}},
	{Name: "secrets", SQL: []string{
		// The store's secrets, one row each, made at random by the first
		// instance that needs one: 'cooldown' keys the cooldowns.
		"CREATE TABLE IF NOT EXISTS `%[1]ssecrets` (\n" +
			"  name   VARBINARY(64) NOT NULL,\n" +
			"  secret VARBINARY(64) NOT NULL,\n" +
			"  PRIMARY KEY (name)\n" +
			") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
	}},
	{Name: "stamp_quotas", SQL: []string{
		// Expand only, so that a binary of version 5 keeps running on
		// this schema. stamp is the keyed hash of the account's
		// credential stamp (reset.Record.Stamp), NULL for none. MySQL has
		// no ADD COLUMN IF NOT EXISTS: the ALTER is prepared only while
		// the column is missing, as in version 3.
		"SET @%[1]sv6 = (SELECT IF(COUNT(*) > 0, 'DO 0',\n" +
			"  'ALTER TABLE `%[1]stokens` ADD COLUMN stamp BINARY(32) NULL')\n" +
			"  FROM information_schema.columns\n" +
			"  WHERE table_schema = DATABASE() AND table_name = '%[1]stokens' AND column_name = 'stamp')",
		"PREPARE %[1]sv6 FROM @%[1]sv6",
		"EXECUTE %[1]sv6",
		"DEALLOCATE PREPARE %[1]sv6",
		// The daily per-address budget (reset.Quota): one row per key
		// (HMAC of the address under the cooldown secret), holding its
		// uses in the last window (24 bytes each: time and owner) and
		// when the last of them stops counting.
		"CREATE TABLE IF NOT EXISTS `%[1]squotas` (\n" +
			"  quota_key BINARY(32)  NOT NULL,\n" +
			"  uses      BLOB        NOT NULL,\n" +
			"  ends_at   DATETIME(6) NOT NULL,\n" +
			"  PRIMARY KEY (quota_key),\n" +
			"  KEY ends_at (ends_at)\n" +
			") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
	}},
	{Name: "feedback", SQL: []string{
		// Expand only: delivery feedback (feedback.Store). address is the
		// keyed hash of the recipient, never the address. event_id is the
		// provider's delivery ID, whose uniqueness refuses replays; nonce
		// lets a retry after a lost answer recognise its own insert.
		"CREATE TABLE IF NOT EXISTS `%[1]sfb_events` (\n" +
			"  event_id    VARBINARY(255) NOT NULL,\n" +
			"  address     BINARY(32)     NOT NULL,\n" +
			"  type        VARBINARY(16)  NOT NULL,\n" +
			"  bounce      VARBINARY(8)   NOT NULL,\n" +
			"  detail      VARBINARY(64)  NOT NULL,\n" +
			"  happened_at DATETIME(6)    NOT NULL,\n" +
			"  received_at DATETIME(6)    NOT NULL,\n" +
			"  message_id  VARBINARY(64)  NOT NULL,\n" +
			"  provider_id VARBINARY(255) NOT NULL,\n" +
			"  nonce       BINARY(16)     NOT NULL,\n" +
			"  PRIMARY KEY (event_id),\n" +
			"  KEY address_time (address, happened_at, received_at, event_id),\n" +
			"  KEY received_at (received_at)\n" +
			") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
		// One row per address that was suppressed or cleared: the Time of
		// its latest hard bounce or complaint, and of its latest clear.
		"CREATE TABLE IF NOT EXISTS `%[1]ssuppressions` (\n" +
			"  address       BINARY(32)  NOT NULL,\n" +
			"  suppressed_at DATETIME(6) NULL,\n" +
			"  cleared_at    DATETIME(6) NULL,\n" +
			"  PRIMARY KEY (address)\n" +
			") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
	}},
}

// versionTable holds one row per applied migration: its version and the
// oldest program version that runs on the schema it leaves (NULL in rows
// written before the column existed). The statements after the CREATE add
// the oldest column to a table made without it; they run on one
// connection, like a migration's.
var versionTable = []string{
	"CREATE TABLE IF NOT EXISTS `%[1]sschema_version` (\n" +
		"  version INT UNSIGNED NOT NULL,\n" +
		"  oldest  INT UNSIGNED NULL,\n" +
		"  PRIMARY KEY (version)\n" +
		") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
	"SET @%[1]sv0 = (SELECT IF(COUNT(*) > 0, 'DO 0',\n" +
		"  'ALTER TABLE `%[1]sschema_version` ADD COLUMN oldest INT UNSIGNED NULL')\n" +
		"  FROM information_schema.columns\n" +
		"  WHERE table_schema = DATABASE() AND table_name = '%[1]sschema_version' AND column_name = 'oldest')",
	"PREPARE %[1]sv0 FROM @%[1]sv0",
	"EXECUTE %[1]sv0",
	"DEALLOCATE PREPARE %[1]sv0",
}

const recordVersion = "INSERT IGNORE INTO `%[1]sschema_version` (version, oldest) VALUES (%[2]d, %[3]d)"

// script renders the migrations for prefix p.
func script(p string) sqlstore.Script {
	fill := func(stmts []string) []string {
		out := make([]string, len(stmts))
		for i, stmt := range stmts {
			out[i] = fmt.Sprintf(stmt, p)
		}
		return out
	}
	sc := sqlstore.Script{Store: "mysqlstore", Dialect: "mysql", Prefix: p, Bootstrap: fill(versionTable),
		Record: func(v int) string { return fmt.Sprintf(recordVersion, p, v, sqlstore.OldestAt(migrations, v)) }}
	for _, m := range migrations {
		m.SQL = fill(m.SQL)
		sc.Migrations = append(sc.Migrations, m)
	}
	return sc
}

// checkPrefix validates a table prefix and applies the default.
func checkPrefix(prefix string) (string, error) {
	if prefix == "" {
		return DefaultTablePrefix, nil
	}
	if len(prefix) > maxPrefixLen {
		return "", fmt.Errorf("mysqlstore: TablePrefix %q is longer than %d bytes", prefix, maxPrefixLen)
	}
	for _, r := range prefix {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return "", fmt.Errorf("mysqlstore: TablePrefix %q may hold only ASCII letters, digits and '_'", prefix)
		}
	}
	return prefix, nil
}

// SchemaSQL returns the SQL that creates the schema at [SchemaVersion] for
// tablePrefix ("" means [DefaultTablePrefix]), for teams that run their own
// migrations: semicolon-terminated statements, the same ones
// [Store.Migrate] runs, each migration followed by the row that records
// its version. Every statement is idempotent; run them in order on one
// connection (some pass a session variable from one statement to the
// next), as the mariadb and mysql clients do with a script. The same
// statements, one migration a file, are in [MigrationFiles] for goose and
// golang-migrate. After applying them, call [Store.Check] at startup.
func SchemaSQL(tablePrefix string) (string, error) {
	p, err := checkPrefix(tablePrefix)
	if err != nil {
		return "", err
	}
	return script(p).SQL(), nil
}

// MigrationFiles returns the migration files for tool, "goose" or
// "golang-migrate", with tablePrefix ("" means [DefaultTablePrefix]): file
// name to content, one file (golang-migrate: one up file and one down
// file) per migration, made from the same statements as [Store.Migrate]
// and [SchemaSQL]. Each up file also records its version in
// <prefix>schema_version, so that [Store.Check] accepts the result. Down
// files only delete that row and leave the tables, on which the previous
// program version runs; a contracting migration has none. The files for
// the default prefix are in the module's store/mysqlstore/migrations
// directory; `passreset schema files` writes them for another prefix.
// golang-migrate runs a file as one query: put multiStatements=true in
// its DSN.
func MigrationFiles(tool, tablePrefix string) (map[string]string, error) {
	p, err := checkPrefix(tablePrefix)
	if err != nil {
		return nil, err
	}
	files, err := script(p).Files(tool)
	if err != nil {
		return nil, fmt.Errorf("mysqlstore: %w", err)
	}
	return files, nil
}

// Migrate creates or upgrades the store's tables to [SchemaVersion] and then
// runs [Store.Check]. It is idempotent and safe to run from several
// processes at once; call it from a deployment step (`passreset schema
// migrate`) or at startup, or apply [SchemaSQL] or [MigrationFiles] with
// your own migration tool instead. On a newer schema that this version
// runs on (every later migration expand-only) it changes nothing; on one
// it does not run on it fails.
func (s *Store) Migrate(ctx context.Context) error {
	if _, err := s.checkCluster(ctx); err != nil {
		return fmt.Errorf("mysqlstore: migrate: %w", err)
	}
	// One connection for all: a migration's statements share session state.
	conn := s.db
	if db, ok := s.db.(*bun.DB); ok {
		c, err := db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("mysqlstore: migrate: %w", err)
		}
		defer c.Close()
		conn = c
	}
	sc := script(s.prefix)
	if err := execAll(ctx, conn, sc.Bootstrap); err != nil {
		return fmt.Errorf("mysqlstore: migrate: %w", err)
	}
	cur, oldest, err := version(ctx, conn, s.prefix)
	if err != nil {
		return fmt.Errorf("mysqlstore: migrate: %w", err)
	}
	if cur > SchemaVersion {
		if err := sqlstore.Compatible(s.prefix, SchemaVersion, cur, oldest); err != nil {
			return fmt.Errorf("mysqlstore: migrate: %w", err)
		}
	}
	for v := cur; v < SchemaVersion; v++ {
		if err := execAll(ctx, conn, append(sc.Migrations[v].SQL, sc.Record(v+1))); err != nil {
			return fmt.Errorf("mysqlstore: migrate to version %d: %w", v+1, err)
		}
	}
	return s.Check(ctx)
}

// execAll runs stmts in order on conn.
func execAll(ctx context.Context, conn bun.IConn, stmts []string) error {
	for _, stmt := range stmts {
		_, err := conn.ExecContext(ctx, stmt)
		var me *mysql.MySQLError
		if errors.As(err, &me) && (me.Number == errCantDropField || me.Number == errDupFieldName) {
			// A concurrent Migrate dropped or added the columns
			// between this one's check and its ALTER.
			err = nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// errCantDropField is ER_CANT_DROP_FIELD_OR_KEY.
const errCantDropField = 1091

// errDupFieldName is ER_DUP_FIELDNAME.
const errDupFieldName = 1060

// version returns the highest applied schema version (0 for none) and,
// when it is newer than SchemaVersion, the oldest program version that
// runs on it (-1 when the rows do not say).
func version(ctx context.Context, db bun.IConn, prefix string) (v, oldest int, err error) {
	var n sql.NullInt64
	q := fmt.Sprintf("SELECT MAX(version) FROM `%sschema_version`", prefix)
	if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return 0, 0, err
	}
	v = int(n.Int64)
	if v <= SchemaVersion {
		return v, sqlstore.OldestAt(migrations, v), nil
	}
	// A row without oldest (unknown) makes the whole answer unknown.
	var unknown int
	q = fmt.Sprintf("SELECT MAX(oldest), COUNT(*) - COUNT(oldest) FROM `%sschema_version` WHERE version > %d", prefix, SchemaVersion)
	if err := db.QueryRowContext(ctx, q).Scan(&n, &unknown); err != nil {
		return 0, 0, err
	}
	if !n.Valid || unknown > 0 {
		return v, -1, nil
	}
	return v, int(n.Int64), nil
}

// Version reads the schema version installed in the database: the
// highest one recorded in <prefix>schema_version, 0 when that table does
// not exist (nothing is installed). It only reads, with one SELECT;
// compare it with [SchemaVersion], or call [Store.Check] for everything
// the store needs.
func (s *Store) Version(ctx context.Context) (int, error) {
	v, _, err := version(ctx, s.db, s.prefix)
	var me *mysql.MySQLError
	switch {
	case errors.As(err, &me) && me.Number == errNoSuchTable:
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("mysqlstore: version: %w", err)
	}
	return v, nil
}

// errNoSuchTable is ER_NO_SUCH_TABLE.
const errNoSuchTable = 1146

// errClientFoundRows explains the one connection setting the store cannot
// work with.
var errClientFoundRows = errors.New("the connection reports found rows instead of changed rows " +
	"(clientFoundRows=true in the DSN): Cooldown needs the default, clientFoundRows=false")

// Check verifies that the tables exist at [SchemaVersion], or at a newer
// version whose later migrations were all expand-only (see "Schema" in
// the package documentation), and that the connection behaves as the
// store needs: it must report changed rows, not
// found rows (clientFoundRows must be off, the driver's default), and on
// a Galera cluster node it must see writes made through other nodes
// (wsrep_sync_wait=3 in the DSN, see "Galera clusters" in the package
// documentation, and [Options.AllowStaleReads]). Times
// need no setting: the store writes and reads its DATETIME columns as UTC
// text itself, so it is correct with or without parseTime and whatever the
// DSN's loc or the dialect's time location. [Store.Migrate] calls Check;
// call it at startup if you apply [SchemaSQL] yourself.
func (s *Store) Check(ctx context.Context) error {
	// First, since the reads below are only reliable on a Galera node
	// with the right settings.
	node, err := s.checkCluster(ctx)
	if err != nil {
		return fmt.Errorf("mysqlstore: check: %w", err)
	}
	v, oldest, err := version(ctx, s.db, s.prefix)
	var me *mysql.MySQLError
	switch {
	case errors.As(err, &me) && me.Number == errNoSuchTable:
		return fmt.Errorf("mysqlstore: check: %w", sqlstore.Compatible(s.prefix, SchemaVersion, 0, 0))
	case err != nil:
		return fmt.Errorf("mysqlstore: check: %w", err)
	}
	if err := sqlstore.Compatible(s.prefix, SchemaVersion, v, oldest); err != nil {
		return fmt.Errorf("mysqlstore: check: %w", err)
	}
	// An UPDATE that matches one row and changes nothing reports 0 rows
	// affected by default, 1 with CLIENT_FOUND_ROWS.
	res, err := s.db.ExecContext(ctx, fmt.Sprintf("UPDATE `%sschema_version` SET version = version WHERE version = %d", s.prefix, SchemaVersion))
	if err != nil {
		return fmt.Errorf("mysqlstore: check: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("mysqlstore: check: %w", err)
	} else if n != 0 {
		return fmt.Errorf("mysqlstore: check: %w", errClientFoundRows)
	}
	// MariaDB has DELETE ... RETURNING, which makes Consume one round
	// trip. Not on a Galera node: there, of 100 concurrent consumes of one
	// token through three nodes, 3 got the row (a certification conflict
	// does not take back rows already returned), so Galera gets the
	// portable read-then-conditional-delete, whose rows affected it does
	// certify.
	var server string
	if err := s.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&server); err != nil {
		return fmt.Errorf("mysqlstore: check: %w", err)
	}
	s.returning.Store(strings.Contains(server, "MariaDB") && !node)
	return nil
}
