// Package mysqlstore is the production [reset.Store] for MySQL and MariaDB,
// built on uptrace/bun with bun's mysqldialect and go-sql-driver/mysql. It
// also implements [reset.Pruner] and [reset.Cooldowner], so that the
// per-address cooldown holds across every app instance that shares the
// database.
//
// # Setup
//
// The store uses the application's own *bun.DB and never closes it. It
// holds no global state and starts no goroutine:
//
//	sqldb, err := sql.Open("mysql", "app:secret@tcp(db:3306)/app?parseTime=true")
//	...
//	db := bun.NewDB(sqldb, mysqldialect.New(mysqldialect.WithTimeLocation("UTC")))
//	store, err := mysqlstore.New(db, mysqlstore.Options{})
//	...
//	if err := store.Migrate(ctx); err != nil { ... }
//	svc, err := reset.New(reset.Config{Store: store, ...})
//
// Build bun with mysqldialect.WithTimeLocation("UTC"), as above: without
// it bun writes the time.Time values of your own tables in the process's
// local time zone. The store itself does not depend on it, nor on the
// DSN's parseTime and loc: it writes and reads its DATETIME(6) columns as
// UTC text, so a DSN without parseTime=true or with loc=Asia/Tokyo still
// stores and returns the right instants. Times are kept to the microsecond
// (truncated). The one DSN setting the store refuses is clientFoundRows=true
// (see [Store.Cooldown]); [Store.Check] reports it.
//
// # Schema
//
// [Store.Migrate] creates the tables, or upgrades them to [SchemaVersion],
// and records the version in <prefix>schema_version. It is idempotent and
// safe to run from several instances at once. Teams that run their own
// migrations apply [SchemaSQL] instead and call [Store.Check] at startup.
// With the default prefix ("passreset_", see [Options.TablePrefix]) the SQL
// is:
//
//	CREATE TABLE IF NOT EXISTS `passreset_schema_version` (
//	  version INT UNSIGNED NOT NULL,
//	  PRIMARY KEY (version)
//	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
//	CREATE TABLE IF NOT EXISTS `passreset_tokens` (
//	  user_id    VARBINARY(255) NOT NULL,
//	  token_hash BINARY(32)     NOT NULL,
//	  email      VARCHAR(320)   CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
//	  created_at DATETIME(6)    NOT NULL,
//	  expires_at DATETIME(6)    NOT NULL,
//	  PRIMARY KEY (user_id),
//	  UNIQUE KEY token_hash (token_hash),
//	  KEY expires_at (expires_at)
//	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
//	CREATE TABLE IF NOT EXISTS `passreset_cooldowns` (
//	  cooldown_key BINARY(32)  NOT NULL,
//	  ends_at      DATETIME(6) NOT NULL,
//	  nonce        BINARY(16)  NOT NULL,
//	  PRIMARY KEY (cooldown_key),
//	  KEY ends_at (ends_at)
//	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
//	INSERT IGNORE INTO `passreset_schema_version` (version) VALUES (1);
//
// Only token hashes are stored, never tokens. A user has at most one row;
// user IDs compare byte for byte (up to [MaxUserIDLen] bytes). A cooldown
// row holds a hash of the address, not the address.
//
// # Atomicity and round trips
//
//   - Rotate is one INSERT ... ON DUPLICATE KEY UPDATE keyed on the user:
//     of any number of concurrent rotations for one user exactly one token
//     remains valid.
//   - Consume reads the record by hash, then deletes it with a DELETE
//     conditional on that user and hash, and wins only if exactly one row
//     went away; it needs no DELETE ... RETURNING, which MySQL lacks.
//   - Cooldown is one INSERT ... ON DUPLICATE KEY UPDATE that replaces the
//     row only if its cooldown has ended, and decides from the rows
//     affected.
//
// Without retries, a password-lost request costs the store at most two round
// trips: one for Cooldown (public and throttled requests only) and one for
// Rotate. Lookup costs one; Consume costs two. Every statement is formatted by bun on
// the client, so none needs a prepare round trip. The statements use
// nothing MariaDB-specific (no RETURNING, no VALUES() function), so the
// same SQL runs on MySQL 8; the tests run on MariaDB 10.11.
//
// # Errors and retries
//
// Deadlocks (1213, which is also what a Galera cluster reports for a
// certification conflict), lock wait timeouts (1205) and lost connections
// are retried with a bounded, jittered exponential backoff that stops when
// the context ends ([Options.MaxAttempts], [Options.RetryDelay]). Every
// write is idempotent or conditional, so a retry never applies twice; where
// a lost connection leaves the outcome of Consume unknown, it returns an
// error instead of guessing. Other errors are returned at once. Every error is wrapped as
// "mysqlstore: <operation>: ...", so errors.Is still finds
// [reset.ErrNotFound] and the driver's errors.
//
// After a server restart the pool reconnects by itself: requests during
// the outage fail with such an error, and later requests work again with
// the same *bun.DB.
//
// On a Galera cluster, add wsrep_sync_wait=1 to the DSN, so that a read
// on one node sees a token that was just written through another.
//
// # Pruning
//
// [Store.Prune] removes expired records and ended cooldowns in batches
// ([Options.PruneBatch]); run [reset.Service.Prune] periodically, for
// example from a cron job or a ticker in your main.
//
// # Tests
//
// The tests run against a real server given by PASSRESET_MYSQL_DSN; the
// repository's scripts/mariadb.sh starts a throwaway MariaDB and prints
// one. Without a DSN they skip, and with CI=true a missing DSN fails them.
package mysqlstore
