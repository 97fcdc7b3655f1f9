// Package pgstore is the [reset.Store] for PostgreSQL, built on
// uptrace/bun with bun's pgdialect and the pgx driver through its
// database/sql adapter (github.com/jackc/pgx/v5/stdlib). It also
// implements [reset.Pruner] and [reset.Cooldowner], so that the
// per-address cooldown holds across every app instance that shares the
// database, and [outbox.Store], the durable queue of package
// [github.com/passreset/passreset/reset/outbox].
//
// # Setup
//
// The store uses the application's own *bun.DB and never closes it. It
// holds no global state and starts no goroutine:
//
//	cfg, err := pgx.ParseConfig("postgres://app:secret@db:5432/app")
//	...
//	db := bun.NewDB(stdlib.OpenDB(*cfg), pgdialect.New())
//	store, err := pgstore.New(db, pgstore.Options{})
//	...
//	if err := store.Migrate(ctx); err != nil { ... }
//	svc, err := reset.New(reset.Config{Store: store, ...})
//
// or, in one line that does all of the above but the Service:
//
//	store, db, err := pgstore.Open(ctx, os.Getenv("DATABASE_URL"), pgstore.Options{Migrate: true})
//
// Times are stored as timestamptz, written as UTC literals and read back
// in UTC, whatever the session's TimeZone; they keep microseconds
// (nanoseconds are truncated, never rounded up). The store needs a UTF8
// database and standard_conforming_strings on (both the defaults), and a
// primary: [Store.Check] (and so [Store.Migrate] and [Open]) refuses a
// standby (pg_is_in_recovery()) or a read-only session with [ErrReadOnly].
//
// # Schema
//
// [Store.Migrate] creates the tables, or upgrades them to [SchemaVersion],
// and records the version in <prefix>schema_version. It runs in one
// transaction under an advisory lock, so it is idempotent and safe to run
// from several instances at once. [New], [Store.Check] and [Open] (unless
// [Options.Migrate] is set) never change the schema: run Migrate, or
// `passreset schema migrate`, from a deployment step, or at startup if
// that suits. Teams that run their own migrations apply [SchemaSQL], or
// the goose or golang-migrate files of the module's store/pgstore/migrations
// directory (see [MigrationFiles]), and call [Store.Check] at startup.
// [Options.Schema] puts the tables in a schema of their own,
// [Options.TablePrefix] changes the prefix; every name is validated and
// quoted.
//
// Migrations are expand-only: each adds tables, nullable columns or
// indexes and takes nothing away that the previous version uses, and none
// deletes queued mail. Each version row also records the oldest program
// version that runs on the schema it leaves, so [Store.Check] accepts a
// newer schema as long as every migration after [SchemaVersion] was
// expand-only, and refuses one only after a contracting migration (there
// is none so far). So a running fleet upgrades with no stop: migrate
// first, then roll the instances; the old and the new version run side by
// side, and rolling the program back needs no change to the schema.
//
// With the defaults the SQL is:
//
//	CREATE TABLE IF NOT EXISTS "passreset_schema_version" (
//	  version integer NOT NULL PRIMARY KEY,
//	  oldest  integer
//	);
//	ALTER TABLE "passreset_schema_version" ADD COLUMN IF NOT EXISTS oldest integer;
//	CREATE TABLE IF NOT EXISTS "passreset_tokens" (
//	  user_id    text COLLATE "C" NOT NULL PRIMARY KEY,
//	  token_hash bytea       NOT NULL UNIQUE,
//	  email      text        NOT NULL,
//	  created_at timestamptz NOT NULL,
//	  expires_at timestamptz NOT NULL
//	);
//	CREATE INDEX IF NOT EXISTS "passreset_tokens_expires" ON "passreset_tokens" (expires_at);
//	CREATE TABLE IF NOT EXISTS "passreset_cooldowns" (
//	  cooldown_key bytea       NOT NULL PRIMARY KEY,
//	  ends_at      timestamptz NOT NULL,
//	  nonce        bytea       NOT NULL
//	);
//	CREATE INDEX IF NOT EXISTS "passreset_cooldowns_ends" ON "passreset_cooldowns" (ends_at);
//	CREATE TABLE IF NOT EXISTS "passreset_outbox" (
//	  id          text COLLATE "C" NOT NULL PRIMARY KEY,
//	  kind        text        NOT NULL,
//	  sealed      bytea       NOT NULL,
//	  key_id      text        NOT NULL,
//	  attempts    integer     NOT NULL,
//	  claims      integer     NOT NULL,
//	  not_before  timestamptz NOT NULL,
//	  created_at  timestamptz NOT NULL,
//	  dead        boolean     NOT NULL,
//	  last_error  text        NOT NULL,
//	  lease_owner text,
//	  lease_until timestamptz,
//	  nonce       bytea
//	);
//	CREATE INDEX IF NOT EXISTS "passreset_outbox_claim" ON "passreset_outbox" (not_before, created_at, id) WHERE NOT dead;
//	CREATE INDEX IF NOT EXISTS "passreset_outbox_pending" ON "passreset_outbox" (created_at) WHERE NOT dead;
//	CREATE INDEX IF NOT EXISTS "passreset_outbox_dead" ON "passreset_outbox" (created_at, id) WHERE dead;
//	INSERT INTO "passreset_schema_version" (version, oldest) VALUES (1, 1) ON CONFLICT DO NOTHING;
//	CREATE TABLE IF NOT EXISTS "passreset_budget" (
//	  budget_key text COLLATE "C" NOT NULL PRIMARY KEY,
//	  tat        timestamptz NOT NULL
//	);
//	INSERT INTO "passreset_schema_version" (version, oldest) VALUES (2, 1) ON CONFLICT DO NOTHING;
//	CREATE TABLE IF NOT EXISTS "passreset_secrets" (
//	  name   text COLLATE "C" NOT NULL PRIMARY KEY,
//	  secret bytea NOT NULL
//	);
//	INSERT INTO "passreset_schema_version" (version, oldest) VALUES (3, 1) ON CONFLICT DO NOTHING;
//	ALTER TABLE "passreset_tokens" ADD COLUMN IF NOT EXISTS stamp bytea;
//	CREATE TABLE IF NOT EXISTS "passreset_quotas" (
//	  quota_key bytea       NOT NULL PRIMARY KEY,
//	  uses      bytea       NOT NULL,
//	  ends_at   timestamptz NOT NULL
//	);
//	CREATE INDEX IF NOT EXISTS "passreset_quotas_ends" ON "passreset_quotas" (ends_at);
//	INSERT INTO "passreset_schema_version" (version, oldest) VALUES (4, 1) ON CONFLICT DO NOTHING;
//	CREATE TABLE IF NOT EXISTS "passreset_fb_events" (
//	  event_id    text COLLATE "C" NOT NULL PRIMARY KEY,
//	  address     bytea       NOT NULL,
//	  type        text        NOT NULL,
//	  bounce      text        NOT NULL,
//	  detail      text        NOT NULL,
//	  happened_at timestamptz NOT NULL,
//	  received_at timestamptz NOT NULL,
//	  message_id  text        NOT NULL,
//	  provider_id text        NOT NULL,
//	  nonce       bytea       NOT NULL
//	);
//	CREATE INDEX IF NOT EXISTS "passreset_fb_events_addr" ON "passreset_fb_events" (address, happened_at, received_at, event_id);
//	CREATE INDEX IF NOT EXISTS "passreset_fb_events_recv" ON "passreset_fb_events" (received_at);
//	CREATE TABLE IF NOT EXISTS "passreset_suppressions" (
//	  address       bytea       NOT NULL PRIMARY KEY,
//	  suppressed_at timestamptz NULL,
//	  cleared_at    timestamptz NULL
//	);
//	INSERT INTO "passreset_schema_version" (version, oldest) VALUES (5, 1) ON CONFLICT DO NOTHING;
//
// # What each table holds, and for how long
//
// Nothing the store keeps is a token or a usable link.
//
//   - <prefix>tokens: one row per user with a live reset token: the
//     token's SHA-256 (or HMAC-SHA-256, with [reset.Config.TokenKey])
//     hash as bytea, the user ID, the email address the link was sent to
//     (the "your password was changed" notice goes there), and when the
//     token was issued and expires. A row goes when the token is used
//     (Consume), when a new request replaces it (Rotate), when the
//     password is reset (RevokeAll), or, once expired (1 hour by default),
//     at the next prune. When the application gives a credential stamp,
//     stamp holds an HMAC of it keyed with the token itself (NULL
//     without one; added by schema version 4).
//   - <prefix>cooldowns: one row per address that asked recently: a keyed
//     hash of the address (never the address), when its cooldown ends, and
//     a random nonce. Pruned once the cooldown has ended (60 s by default).
//   - <prefix>quotas: one row per address that asked in the last 24
//     hours: a keyed hash of the address (never the address), the uses of
//     its daily budget in that window (per use, its time and an owner
//     derived from the request's ID, 24 bytes), and when the last use
//     stops counting. Pruned after that. Added by schema version 4, which
//     only expands (this table and the nullable tokens.stamp): a program
//     of version 3 keeps running on it (its Check accepts a newer schema,
//     its statements name their columns, its tokens have no stamp), so
//     instances can be upgraded one at a time after Migrate.
//   - <prefix>outbox: one row per queued public request or email: the
//     core's AES-256-GCM sealed content as opaque bytes (sealed, key_id),
//     and bookkeeping (id, kind, attempts, claims, not_before, created_at,
//     dead, last_error without secrets, the lease and a nonce). No
//     address, link or token is stored in the clear. A row goes when its
//     email is sent, or when the request turns out to have no account;
//     a dead row (moved aside after a permanent failure or too many
//     attempts) stays until the outbox prunes it ([Store.PruneDead]), or
//     until it is revived and sent.
//   - <prefix>budget: per budget key (default "mail"), one time: when the
//     provider budget's next call is due (outbox.Options.Rate). One row
//     per key, never pruned. Added by schema version 2.
//   - <prefix>secrets: one random 32-byte secret, made by the first
//     instance that needs it ([Store.CooldownSecret]); the cooldowns and
//     daily budgets are keyed with it. Never pruned. Added by schema version 3, which only
//     adds this table: queued mail stays where it is.
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
//     schema version 5, which only adds these tables.
//   - <prefix>schema_version: the applied schema versions.
//
// # Atomicity and round trips
//
//   - Rotate is one INSERT ... ON CONFLICT (user_id) DO UPDATE: of any
//     number of concurrent rotations for one user exactly one token
//     remains valid.
//   - Consume is one DELETE ... WHERE token_hash = ... RETURNING: of
//     concurrent consumes exactly one gets the record.
//   - Cooldown is one INSERT ... ON CONFLICT DO UPDATE ... WHERE ends_at
//     <= now RETURNING 1: of concurrent calls for one key while none runs
//     exactly one starts it.
//   - Spend (the daily budget) reads the key's uses, decides, and writes
//     the new uses with an UPDATE conditional on the uses it read (an
//     INSERT ... ON CONFLICT DO NOTHING for a new key); a write that
//     changes no row lost a race, and the call reads again. No lock is
//     held between round trips.
//   - Prune deletes up to a batch of each kind by key, chosen with FOR
//     UPDATE SKIP LOCKED and checked again on the row it deletes: it never
//     waits for a request's row, and a token rotated meanwhile survives.
//
// Without retries, a password-lost request costs the store at most four
// round trips: one for Cooldown and two for Spend (public and throttled
// requests only), and one for Rotate. Lookup costs one, Consume one, RevokeAll one, so a
// completed reset costs two. Every statement is formatted by bun on the
// client and sent by pgx without arguments, with the simple query
// protocol: none needs a prepare round trip. TestRoundTrips and
// TestOutboxRoundTrips count them with a bun query hook.
//
// # Durable outbox
//
//   - Enqueue: one INSERT; it counts nothing.
//   - Claim: one statement, UPDATE ... SET lease ... WHERE id IN (SELECT id
//     ... ORDER BY not_before, created_at, id LIMIT n FOR UPDATE SKIP
//     LOCKED) RETURNING ...: concurrent claims, in any number of processes,
//     take disjoint envelopes without waiting for each other.
//   - Save, Revive: one UPDATE conditional on the worker holding the lease
//     (or the envelope being dead); PostgreSQL's rows affected decide.
//   - Replace (a batch formed from its members, a batch's answer, or a
//     removal): one transaction, BEGIN; DELETE of the removed rows the
//     worker holds; INSERT of the added ones; COMMIT. The DELETE is the
//     lease check: unless it removed every row asked for, the transaction
//     is rolled back and nothing changes. A batch envelope of 100 rendered
//     emails (about 2 MiB sealed) fits a bytea easily; the INSERTs carry
//     at most 1 MiB of sealed content each.
//   - Renew: one UPDATE ... RETURNING of the leases still held.
//   - Stats(limit): one SELECT whose two counts read at most limit
//     entries of a partial index each (SELECT count(*) FROM (SELECT 1 ...
//     LIMIT limit)), and whose oldest pending envelope is the first entry
//     of another: its cost does not grow with the outbox.
//   - Dead: one SELECT; PruneDead: one DELETE of at most limit rows;
//     Reserve: one upsert ... RETURNING; Pause: one UPDATE.
//
// A lease that a dead worker held runs out at its lease_until, and the
// next claim takes the envelope: its sealed email is sent again with the
// same idempotency key, which the provider drops as a replay.
//
// # Errors and retries
//
// Serialization failures (40001), deadlocks (40P01), lock timeouts
// (55P03), a server starting or stopping (57P01, 57P02, 57P03) and lost
// connections are retried with a bounded, jittered exponential backoff
// that stops when the context ends ([Options.MaxAttempts],
// [Options.RetryDelay]). Only what is safe to repeat is repeated: Rotate,
// RevokeAll, Lookup, the reads and Prune are idempotent; Enqueue
// recognises its own row (a unique violation after a lost answer means
// success); Cooldown, Save and Revive write a random nonce and match it,
// so that a retry recognises its own write in the same statement; Replace
// looks for the nonce of the rows it added, or for its removed rows gone;
// a Claim whose answer was lost
// only delays its envelopes until their lease ends. Consume cannot know
// who deleted a row whose DELETE answer was lost: it then returns the
// connection error, not [reset.ErrNotFound]. A server that refuses writes
// (25006, a standby) gives [ErrReadOnly] at once. Every error is wrapped
// as "pgstore: <operation>: ...", so errors.Is still finds
// [reset.ErrNotFound], [ErrReadOnly] and the driver's errors.
//
// After a server restart the pool reconnects by itself: requests during
// the outage fail with such an error (the HTTP handler answers 503), and
// later requests work again with the same *bun.DB.
//
// # Pruning
//
// [Store.Prune] removes expired records and ended cooldowns, and
// [Store.PruneDead] old dead envelopes, a batch of each per call;
// [reset.Service.Prune] calls Prune until nothing is left, and an outbox's
// Run prunes periodically. Without the outbox, run Service.Prune from a
// ticker or a cron job.
//
// # Tests
//
// The tests run against a real server given by PASSRESET_PG_DSN; the
// repository's scripts/postgres.sh starts a throwaway PostgreSQL 15 and
// prints one, and PASSRESET_PG_SCRIPT (its path) lets the restart test
// stop and start a server of its own. Without a DSN they skip, and with
// CI=true a missing DSN fails them.
package pgstore
