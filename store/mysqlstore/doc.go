// Package mysqlstore is the production [reset.Store] for MySQL and MariaDB,
// built on uptrace/bun with bun's mysqldialect and go-sql-driver/mysql. It
// also implements [reset.Pruner] and [reset.Cooldowner], so that the
// per-address cooldown holds across every app instance that shares the
// database, and [outbox.Store], the durable queue of package
// [github.com/passreset/passreset/reset/outbox] (see "Durable outbox"
// below).
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
// (truncated). The DSN settings the store refuses are clientFoundRows=true
// (see [Store.Cooldown]) and, on a Galera cluster, a missing
// wsrep_sync_wait=3 (see "Galera clusters" below); [Store.Check] reports
// them.
//
// # Schema
//
// [Store.Migrate] creates the tables, or upgrades them to [SchemaVersion],
// and records the version in <prefix>schema_version. It is idempotent and
// safe to run from several instances at once. [New] and [Store.Check]
// never change the schema: run Migrate, or `passreset schema migrate`,
// from a deployment step, or at startup if that suits. Teams that run
// their own migrations apply [SchemaSQL], or the goose or golang-migrate
// files of the module's store/mysqlstore/migrations directory (see
// [MigrationFiles]), and call [Store.Check] at startup.
//
// Migrations are expand-only: each adds tables, nullable columns or
// indexes and takes nothing away that the previous version uses, and none
// deletes queued mail. Each version row also records the oldest program
// version that runs on the schema it leaves, so [Store.Check] accepts a
// newer schema as long as every migration after [SchemaVersion] was
// expand-only, and refuses one only after a contracting migration (which
// names the first version that no longer needs what it removes; the only
// one is version 3, which dropped the outbox's plaintext columns). So a
// running fleet upgrades with no stop: migrate first, then roll the
// instances; the old and the new version run side by side, and rolling
// the program back needs no change to the schema.
//
// With the default prefix ("passreset_", see [Options.TablePrefix]) the SQL
// is:
//
//	CREATE TABLE IF NOT EXISTS `passreset_schema_version` (
//	  version INT UNSIGNED NOT NULL,
//	  oldest  INT UNSIGNED NULL,
//	  PRIMARY KEY (version)
//	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
//	SET @passreset_v0 = (SELECT IF(COUNT(*) > 0, 'DO 0',
//	  'ALTER TABLE `passreset_schema_version` ADD COLUMN oldest INT UNSIGNED NULL')
//	  FROM information_schema.columns
//	  WHERE table_schema = DATABASE() AND table_name = 'passreset_schema_version' AND column_name = 'oldest');
//	PREPARE passreset_v0 FROM @passreset_v0;
//	EXECUTE passreset_v0;
//	DEALLOCATE PREPARE passreset_v0;
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
//	INSERT IGNORE INTO `passreset_schema_version` (version, oldest) VALUES (1, 1);
//	CREATE TABLE IF NOT EXISTS `passreset_outbox` (
//	  id          VARBINARY(64)   NOT NULL,
//	  kind        VARBINARY(32)   NOT NULL,
//	  email       VARCHAR(320)    CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
//	  link        VARBINARY(2048) NOT NULL,
//	  sealed      MEDIUMBLOB      NULL,
//	  key_id      VARBINARY(64)   NOT NULL,
//	  attempts    INT             NOT NULL,
//	  claims      INT             NOT NULL,
//	  not_before  DATETIME(6)     NOT NULL,
//	  created_at  DATETIME(6)     NOT NULL,
//	  dead        BOOL            NOT NULL,
//	  last_error  VARCHAR(1000)   CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
//	  lease_owner VARBINARY(255)  NULL,
//	  lease_until DATETIME(6)     NULL,
//	  nonce       BINARY(16)      NOT NULL,
//	  PRIMARY KEY (id),
//	  KEY claim_order (dead, not_before, created_at, id),
//	  KEY dead_created (dead, created_at, id)
//	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
//	INSERT IGNORE INTO `passreset_schema_version` (version, oldest) VALUES (2, 1);
//	DELETE FROM `passreset_outbox` WHERE sealed IS NULL;
//	SET @passreset_v3 = (SELECT IF(COUNT(*) = 0, 'DO 0',
//	  'ALTER TABLE `passreset_outbox` DROP COLUMN email, DROP COLUMN link, MODIFY sealed MEDIUMBLOB NOT NULL')
//	  FROM information_schema.columns
//	  WHERE table_schema = DATABASE() AND table_name = 'passreset_outbox' AND column_name = 'email');
//	PREPARE passreset_v3 FROM @passreset_v3;
//	EXECUTE passreset_v3;
//	DEALLOCATE PREPARE passreset_v3;
//	INSERT IGNORE INTO `passreset_schema_version` (version, oldest) VALUES (3, 3);
//	CREATE TABLE IF NOT EXISTS `passreset_budget` (
//	  budget_key VARBINARY(255) NOT NULL,
//	  tat        DATETIME(6)    NOT NULL,
//	  PRIMARY KEY (budget_key)
//	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
//	INSERT IGNORE INTO `passreset_schema_version` (version, oldest) VALUES (4, 3);
//	CREATE TABLE IF NOT EXISTS `passreset_secrets` (
//	  name   VARBINARY(64) NOT NULL,
//	  secret VARBINARY(64) NOT NULL,
//	  PRIMARY KEY (name)
//	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
//	INSERT IGNORE INTO `passreset_schema_version` (version, oldest) VALUES (5, 3);
//	SET @passreset_v6 = (SELECT IF(COUNT(*) > 0, 'DO 0',
//	  'ALTER TABLE `passreset_tokens` ADD COLUMN stamp BINARY(32) NULL')
//	  FROM information_schema.columns
//	  WHERE table_schema = DATABASE() AND table_name = 'passreset_tokens' AND column_name = 'stamp');
//	PREPARE passreset_v6 FROM @passreset_v6;
//	EXECUTE passreset_v6;
//	DEALLOCATE PREPARE passreset_v6;
//	CREATE TABLE IF NOT EXISTS `passreset_quotas` (
//	  quota_key BINARY(32)  NOT NULL,
//	  uses      BLOB        NOT NULL,
//	  ends_at   DATETIME(6) NOT NULL,
//	  PRIMARY KEY (quota_key),
//	  KEY ends_at (ends_at)
//	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
//	INSERT IGNORE INTO `passreset_schema_version` (version, oldest) VALUES (6, 3);
//	CREATE TABLE IF NOT EXISTS `passreset_fb_events` (
//	  event_id    VARBINARY(255) NOT NULL,
//	  address     BINARY(32)     NOT NULL,
//	  type        VARBINARY(16)  NOT NULL,
//	  bounce      VARBINARY(8)   NOT NULL,
//	  detail      VARBINARY(64)  NOT NULL,
//	  happened_at DATETIME(6)    NOT NULL,
//	  received_at DATETIME(6)    NOT NULL,
//	  message_id  VARBINARY(64)  NOT NULL,
//	  provider_id VARBINARY(255) NOT NULL,
//	  nonce       BINARY(16)     NOT NULL,
//	  PRIMARY KEY (event_id),
//	  KEY address_time (address, happened_at, received_at, event_id),
//	  KEY received_at (received_at)
//	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
//	CREATE TABLE IF NOT EXISTS `passreset_suppressions` (
//	  address       BINARY(32)  NOT NULL,
//	  suppressed_at DATETIME(6) NULL,
//	  cleared_at    DATETIME(6) NULL,
//	  PRIMARY KEY (address)
//	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
//	INSERT IGNORE INTO `passreset_schema_version` (version, oldest) VALUES (7, 3);
//
// Run the statements in order on one connection, as the mariadb and mysql
// command-line clients do with a script: the upgrade to version 3 passes a
// session variable from one statement to the next, since MySQL has no
// DROP COLUMN IF EXISTS (and the upgrade to version 6 likewise, since it
// has no ADD COLUMN IF NOT EXISTS).
//
// Version 2 added <prefix>outbox; Migrate creates it in a version 1
// schema and leaves the other tables as they are. Version 3 seals
// everything an envelope holds: it drops the outbox's plaintext email and
// link columns and makes sealed required. Version 2 queued public
// requests unsealed; this version cannot read them, so the upgrade
// deletes them (sealed envelopes stay). To keep them, drain the outbox
// with the older version before upgrading. A program built with this
// version refuses (in Check) tables at an older version, whether or not it
// uses the outbox, and an older program cannot enqueue into a version 3
// outbox: upgrade every instance before running Migrate. Version 4 adds
// <prefix>budget, the provider budget (outbox.Options.Rate) that every
// instance shares; nothing else changes. Version 5 adds <prefix>secrets,
// which holds the secret that keys the cooldowns; it only adds a table, so
// queued mail stays where it is. Version 6 only expands: it adds the
// nullable column <prefix>tokens.stamp and the table <prefix>quotas. A
// program of version 5 keeps running on it (its Check accepts a newer
// version, its statements name their columns, and the tokens it issues
// have no stamp), so instances can be upgraded one at a time after
// Migrate; only its Migrate refuses the newer schema.
//
// # What is stored, and for how long
//
// Never a token, and nothing of an envelope in the clear:
//
//   - <prefix>tokens: per user, the hash of the one valid token, the user
//     ID, the address the link went to (for the "password changed"
//     notice), when it was issued and expires, and, when the application
//     gives a credential stamp, an HMAC of the stamp keyed with the token
//     itself (NULL without one). The row goes when the
//     token is used (Consume), replaced (Rotate), revoked (RevokeAll), or
//     by the first prune after it expires.
//   - <prefix>cooldowns: a keyed hash of an address (not the address),
//     when its cooldown ends, and a random nonce. The row goes with the
//     first prune after the cooldown ends.
//   - <prefix>quotas: a keyed hash of an address (not the address), the
//     uses of its daily budget in the last 24 hours (per use, its time
//     and an owner derived from the request's ID, 24 bytes), and when the
//     last use stops counting. The row goes with the first prune after
//     that.
//   - <prefix>outbox: the sealed content (AES-256-GCM under the
//     application's key: the typed address, the caller's link, the
//     rendered email), the ID of the key, and bookkeeping (kind, attempts,
//     claims, due time, creation time, lease, last error without secrets).
//     A row goes when its email has been sent. A dead row (moved aside
//     after MaxAttempts or MaxAge) stays for an operator to list and
//     revive until the outbox prunes it ([Store.PruneDead]).
//   - <prefix>budget: per budget key (default "mail"), one time: when the
//     provider budget's next call is due. One row per key, never pruned.
//   - <prefix>secrets: one random 32-byte secret, made by the first
//     instance that needs it ([Store.CooldownSecret]); the cooldowns and
//     the daily budgets are keyed with it. Never pruned.
//   - <prefix>fb_events: what the mail provider reported about each
//     email (feedback.Store): the keyed hash of the recipient (HMAC under
//     the application's feedback key, never the address), the event's
//     type, bounce kind and short reason, its time and when it was
//     received, passreset's message ID, the provider's email ID, the
//     provider's delivery ID (unique: it refuses replays) and a nonce.
//     Rows go when the application prunes them (feedback.Feedback.Prune).
//   - <prefix>suppressions: per keyed hash of an address that bounced
//     hard, complained or was cleared, the time of its latest hard bounce
//     or complaint and of its latest clear. Never pruned. Both added by
//     schema version 7, which only adds these tables.
//
// An outbox's Run prunes periodically; without the outbox, call
// [reset.Service.Prune] periodically.
// User IDs compare byte for byte (up to [MaxUserIDLen] bytes); a user has
// at most one token row.
//
// # Atomicity and round trips
//
//   - Rotate is one INSERT ... ON DUPLICATE KEY UPDATE keyed on the user:
//     of any number of concurrent rotations for one user exactly one token
//     remains valid.
//   - Consume is one DELETE ... RETURNING by hash on MariaDB: of
//     concurrent consumes exactly one gets the row. On MySQL, which lacks
//     RETURNING, and on a Galera cluster, where a certification conflict
//     does not take back rows already returned (measured: 3 winners of
//     100 concurrent consumes through three nodes), it reads the record
//     by hash, then deletes it with a DELETE conditional on that user and
//     hash, and wins only if exactly one row went away. [Store.Check]
//     learns which server it is.
//   - Cooldown is one INSERT ... ON DUPLICATE KEY UPDATE that replaces the
//     row only if its cooldown has ended, and decides from the rows
//     affected.
//   - Spend (the daily budget) reads the key's uses, decides, and writes
//     the new uses with an UPDATE conditional on the uses it read (an
//     INSERT ... ON DUPLICATE KEY UPDATE for a new key); an UPDATE that
//     changes no row lost a race, and the call reads again. No lock is
//     held between round trips; on Galera, certification refuses the
//     loser of two writes through different nodes, and it is retried.
//
// Round trips per operation, without retries (TestRoundTrips and
// TestOutboxRoundTrips count them):
//
//	Rotate, Lookup, RevokeAll, Cooldown           1 each
//	Consume                                       1 on MariaDB, 2 on MySQL and Galera
//	Prune                                         3 (one DELETE per kind, at most limit rows each)
//	Spend                                         2 (SELECT, then UPDATE or INSERT); 1 when refused
//	CooldownSecret                                2 (INSERT IGNORE, SELECT), once per Service
//	trusted request (Cooldown, Spend if throttled, Rotate) 1 or 4
//	Complete (Consume, RevokeAll)                 2 on MariaDB (3 on MySQL, Galera), plus one
//	                                              Enqueue of the notice with the outbox, plus one
//	                                              Users lookup (not the store's) for a token with a stamp
//	public request with the outbox                1 (Enqueue)
//
// Every statement is formatted by bun on the client, so none needs a
// prepare round trip. Apart from Consume's RETURNING, used only on
// MariaDB, the statements use nothing MariaDB-specific (no VALUES()
// function), so the same SQL runs on MySQL 8; the tests run on MariaDB
// 10.11.
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
// On a Galera cluster, see "Galera clusters" below.
//
// # Durable outbox
//
// With an outbox (package reset/outbox) as the Service's queue, the mail
// waits in <prefix>outbox: a public password-lost request is one enqueue,
// and workers (the outbox's Run, in as many processes as you like) claim
// envelopes, issue the token, seal the rendered email, send it and
// remove it. Each operation, without retries:
//
//   - Enqueue: one INSERT. It does not count the outbox, so its cost
//     does not grow with the backlog; the outbox bounds itself from
//     Stats, read in the background (see outbox.Options.MaxPending).
//   - Claim: one transaction of four round trips (BEGIN; SELECT ... FOR
//     UPDATE SKIP LOCKED of the due envelopes, oldest first; UPDATE of
//     their lease; COMMIT), three when nothing is due. SKIP LOCKED needs
//     MariaDB 10.6 or MySQL 8.0. Concurrent claims take disjoint
//     envelopes.
//   - Save: one UPDATE, conditional on the worker holding the lease (it
//     claimed the envelope last and has not released it); rows affected
//     decide, so clientFoundRows must be off.
//   - Replace (a batch formed from its members, a batch's answer, or a
//     removal): one transaction, BEGIN; DELETE of the removed rows the
//     worker holds; INSERT of the added ones; COMMIT. The DELETE is the
//     lease check: unless it removed every row asked for, the transaction
//     is rolled back and nothing changes. A batch envelope holds up to 100
//     rendered emails, about 2 MiB sealed: the sealed column is a
//     MEDIUMBLOB (16 MiB), and the INSERTs carry at most 1 MiB of sealed
//     content each (2 MiB formatted in hexadecimal), well within MariaDB's
//     default max_allowed_packet (16 MiB) and the driver's.
//   - Renew: one UPDATE of the leases, then one SELECT of those still held.
//   - Stats: one SELECT that reads at most limit entries of the
//     (dead, created_at) index per count and one for the oldest pending
//     envelope, whatever the size of the outbox. Dead: one SELECT; Revive:
//     one UPDATE; PruneDead: one DELETE of at most limit rows.
//   - Reserve: one transaction (the upsert of the budget's row, then its
//     SELECT); Pause: one UPDATE.
//
// So a message for a known account costs, besides the claim (shared by up
// to a batch of messages): Cooldown, Rotate, Save of the sealed message,
// then a Replace that removes it after the send. A lease that a dead worker held runs out at
// its lease_until, and the next claim takes the envelope: its sealed
// message is sent again with the same idempotency key, which the provider
// drops as a replay. Deadlocks, lock wait timeouts and lost connections
// are retried as for the other operations; a retried write recognises its
// own earlier attempt (a duplicate key for Enqueue, the nonce column for
// Save and Revive, the nonce of its added rows or its removed rows gone
// for Replace), and a claim whose COMMIT answer was lost only delays its
// envelopes until their lease ends.
//
// # Galera clusters
//
// Several app instances may share a multi-primary MariaDB Galera cluster,
// each connected to a node of its own. Three things make the store
// correct there.
//
// See writes made through other nodes. Galera replicates a commit to the
// other nodes at once but applies it there a moment later, so a statement
// on node B just after a commit on node A can miss it: a SELECT would
// call a link issued by another instance invalid (measured on loopback:
// 314 of 2000 reads), and an UPDATE or DELETE that then matches no row
// writes nothing, so certification (below) cannot catch it: a RevokeAll
// would leave a token just issued through another node valid (7 of 1000),
// and an outbox worker would lose a lease it holds. Put wsrep_sync_wait=3
// in the DSN, which go-sql-driver/mysql turns into SET wsrep_sync_wait=3
// on every new connection; reads (bit 1) and UPDATE and DELETE (bit 2)
// then wait until the node has applied everything committed before them
// (none of those misses happened with it):
//
//	app:secret@tcp(node1:3306)/app?parseTime=true&wsrep_sync_wait=3
//
// [Store.Check] (and so [Store.Migrate]) refuses a connection to a Galera
// node (@@wsrep_on=ON) whose wsrep_sync_wait lacks either bit, with an
// error that names the setting, and a connection that turned wsrep_on off
// (its writes would not be replicated). [Options.AllowStaleReads]
// overrides the first refusal; it is unsafe unless every instance uses the
// same node. INSERTs need no wait: the store's INSERTs always write their
// row, and a write based on a stale row is refused at commit, as the next
// paragraph explains.
//
// Certification conflicts. Two nodes that change one row at the same time
// both execute; at commit the cluster certifies them in one global order,
// and the later one fails with 1213 (about half of the time for concurrent
// writes of one row through two nodes). A 1213 means the statement was
// rolled back and nothing of it was committed anywhere, so retrying it
// cannot apply it twice; and a write based on a row that another node
// changed meanwhile fails the same way instead of committing. Each
// operation retries ([Options.MaxAttempts]): Rotate writes the same row
// again (it is idempotent); Consume reads the record again and deletes it
// only if it is still there with the same hash, so of concurrent consumes
// on different nodes exactly one wins; Cooldown runs its conditional
// upsert again, and finds the cooldown another node started meanwhile (the
// nonce covers lost answers). The outbox's Claim runs its whole
// transaction again: row locks are local to a node, so SKIP LOCKED does
// not keep claims on different nodes apart, but certification does. Every
// table has a primary key, as Galera needs.
//
// No process memory. Tokens, cooldowns and, with the outbox as the
// Service's queue, queued mail live in the cluster, so every instance sees the same state
// and any instance may die at any time. Without the outbox, mail waits in
// the instance's memory until it is sent, and is lost if the instance
// crashes. The per-client rate limit of package httpadapter lives in each
// instance's memory: it is a courtesy limit per instance (n instances
// allow n times the rate), not a security invariant; the per-address
// cooldown and daily budget, which decide how much mail an address gets,
// hold across the cluster.
//
// A node that is not ready (joining, or cut off from the majority) refuses
// statements with 1047 before running them; the store retries those too.
// When a node dies, the instance connected to it gets errors (the HTTP
// handler answers 503) until the node is back, and then works again with
// the same *bun.DB. The other nodes stall writes and synchronised reads
// for a few seconds, until the cluster has excluded the dead node
// (Galera's evs.suspect_timeout, 5 seconds by default), then go on.
//
// # Pruning
//
// [Store.Prune] removes at most limit expired tokens, ended cooldowns and
// budgets with no use left in their window, and [Store.PruneDead] at most limit dead envelopes, each kind with one
// autocommit DELETE ... ORDER BY <indexed column> LIMIT, so that a prune
// holds the locks of one small batch at a time and Rotate, Consume and the
// outbox wait for one batch at most. [reset.Service.Prune] repeats Prune
// in batches, resting three times as long as each batch took, until
// nothing is left; an outbox's Run prunes periodically.
//
// # Tests
//
// The tests run against a real server given by PASSRESET_MYSQL_DSN; the
// repository's scripts/mariadb.sh starts a throwaway MariaDB and prints
// one. Without a DSN they skip, and with CI=true a missing DSN fails them.
package mysqlstore
