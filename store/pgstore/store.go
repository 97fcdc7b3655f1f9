package pgstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/passreset/passreset/internal/sqlretry"
	"github.com/passreset/passreset/internal/sqlstore"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
)

// Defaults for the zero values of [Options].
const (
	DefaultMaxAttempts = 6
	DefaultRetryDelay  = 10 * time.Millisecond
)

// Limits of the stored values.
const (
	MaxUserIDLen = 255 // bytes of valid UTF-8 without NUL
	MaxEmailLen  = 320 // characters of valid UTF-8 without NUL
)

// maxRetryDelay caps the delay before one retry.
const maxRetryDelay = time.Second

// Options configures a [Store]. The zero value means the documented
// defaults.
type Options struct {
	// Schema is the PostgreSQL schema that holds the tables. It may hold
	// ASCII letters, digits and '_', at most 63 bytes; [Store.Migrate]
	// creates it if it is missing. Default "": the first schema of the
	// connection's search_path (usually public), unqualified.
	Schema string

	// TablePrefix is put before every table and index name:
	// <prefix>tokens, <prefix>cooldowns, <prefix>outbox and
	// <prefix>schema_version. It may hold ASCII letters, digits and '_',
	// at most 49 bytes. Default "passreset_".
	TablePrefix string

	// MaxAttempts bounds how many times one operation is tried when it
	// fails with a transient error: a serialization failure (40001), a
	// deadlock (40P01), a server that is starting or shutting down (57P01,
	// 57P02, 57P03) or a lost connection, and only where repeating the
	// statement is safe (see "Errors and retries" in the package
	// documentation). Default 6: with the default RetryDelay the waits
	// between attempts add up to 0.16 to 0.31 seconds, so that an outage
	// fails fast with an error instead of holding requests. 1 turns
	// retries off. A Store made on a bun.Tx never retries, since a failed
	// statement ends the transaction.
	MaxAttempts int

	// RetryDelay is the longest wait before the first retry. Each later
	// retry doubles it, up to 1 second; the actual wait is a random
	// duration between half of that and all of it. Waits end early when
	// the context does. Default 10ms.
	RetryDelay time.Duration

	// Migrate makes [Open] run [Store.Migrate], which creates or upgrades
	// the tables. Default false: Open only runs [Store.Check], which reads
	// the schema version and changes nothing, so that a tool that opens
	// the store never changes the schema. New ignores it.
	Migrate bool
}

// Store is a [reset.Store] on PostgreSQL through bun. It also implements
// [reset.Pruner], [reset.Cooldowner] and [outbox.Store], a durable
// outbox that workers in every instance drain. It is safe for concurrent
// use, holds no state besides its configuration and starts no goroutine:
// there is nothing to close. Create it with [New] or [Open].
type Store struct {
	db         bun.IDB
	schema     string
	prefix     string
	attempts   int
	retryDelay time.Duration
	q          queries
	oq         outboxQueries
	ob         sqlstore.Outbox
	retrier    sqlretry.Retrier
}

var (
	_ reset.Store         = (*Store)(nil)
	_ reset.Pruner        = (*Store)(nil)
	_ reset.Cooldowner    = (*Store)(nil)
	_ reset.Quota         = (*Store)(nil)
	_ outbox.Store        = (*Store)(nil)
	_ outbox.BudgetReader = (*Store)(nil)
)

// queries holds the store's statements with the table names filled in.
// Placeholders are bun's '?': bun formats every argument into the SQL text
// itself, and pgx sends a statement without arguments with the simple
// query protocol, so each statement is one round trip.
type queries struct {
	lookup, consume, rotate, revoke, pruneTokens, pruneCooldowns, cooldown string
	secretInsert, secretSelect, pruneQuotas                                string
	quota                                                                  sqlstore.QuotaQueries
}

// ts is how the store writes a time: a text literal cast to timestamptz,
// in UTC (see dbTime).
const ts = "CAST(? AS timestamptz)"

func newQueries(n names) queries {
	return queries{
		secretInsert: "INSERT INTO " + n.secrets + " (name, secret) VALUES ('cooldown', ?) ON CONFLICT DO NOTHING",
		secretSelect: "SELECT secret FROM " + n.secrets + " WHERE name = 'cooldown'",
		lookup:       "SELECT user_id, email, created_at, expires_at, stamp FROM " + n.tokens + " WHERE token_hash = ?",
		// One statement: of concurrent deletes of one row exactly one
		// returns it.
		consume: "DELETE FROM " + n.tokens + " WHERE token_hash = ? RETURNING user_id, email, created_at, expires_at, stamp",
		rotate: "INSERT INTO " + n.tokens + " AS t (user_id, token_hash, email, created_at, expires_at, stamp)" +
			" VALUES (?, ?, ?, " + ts + ", " + ts + ", ?)" +
			" ON CONFLICT (user_id) DO UPDATE SET token_hash = EXCLUDED.token_hash, email = EXCLUDED.email," +
			" created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, stamp = EXCLUDED.stamp",
		quota: sqlstore.QuotaQueries{
			Select: "SELECT uses FROM " + n.quotas + " WHERE quota_key = ?",
			Insert: "INSERT INTO " + n.quotas + " (quota_key, uses, ends_at) VALUES (?, ?, " + ts + ") ON CONFLICT DO NOTHING",
			Update: "UPDATE " + n.quotas + " SET uses = ?, ends_at = " + ts + " WHERE quota_key = ? AND uses = ?",
		},
		pruneQuotas: "DELETE FROM " + n.quotas + " WHERE quota_key IN (SELECT quota_key FROM " + n.quotas +
			" WHERE ends_at <= " + ts + " ORDER BY ends_at LIMIT ? FOR UPDATE SKIP LOCKED)" +
			" AND ends_at <= " + ts,
		revoke: "DELETE FROM " + n.tokens + " WHERE user_id = ?",
		// A batch by key: rows that a request holds locked right now are
		// skipped, not waited for, and the condition is checked again on
		// the row as it is when it is deleted, so that a token rotated
		// meanwhile survives.
		pruneTokens: "DELETE FROM " + n.tokens + " WHERE user_id IN (SELECT user_id FROM " + n.tokens +
			" WHERE expires_at <= " + ts + " ORDER BY expires_at LIMIT ? FOR UPDATE SKIP LOCKED)" +
			" AND expires_at <= " + ts,
		pruneCooldowns: "DELETE FROM " + n.cooldowns + " WHERE cooldown_key IN (SELECT cooldown_key FROM " + n.cooldowns +
			" WHERE ends_at <= " + ts + " ORDER BY ends_at LIMIT ? FOR UPDATE SKIP LOCKED)" +
			" AND ends_at <= " + ts,
		// A row comes back when this call started the cooldown: it
		// inserted one, or replaced one that had ended, or (after a lost
		// answer) finds the row its own earlier attempt wrote, recognised
		// by the nonce. A running cooldown of anyone else returns nothing.
		cooldown: "INSERT INTO " + n.cooldowns + " AS c (cooldown_key, ends_at, nonce) VALUES (?, " + ts + ", ?)" +
			" ON CONFLICT (cooldown_key) DO UPDATE SET ends_at = EXCLUDED.ends_at, nonce = EXCLUDED.nonce" +
			" WHERE c.ends_at <= " + ts + " OR c.nonce = EXCLUDED.nonce RETURNING 1",
	}
}

// New returns a Store that keeps its tables in db, which must use bun's
// PostgreSQL dialect (pgdialect) on the pgx driver's database/sql adapter
// (github.com/jackc/pgx/v5/stdlib). Pass the application's *bun.DB; the
// Store never closes it. New does no I/O: call [Store.Migrate] (or
// [Store.Check] when you apply [SchemaSQL] yourself) before use, or use
// [Open].
func New(db bun.IDB, opts Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("pgstore: New: db is nil")
	}
	if d, ok := db.(*bun.DB); ok && d == nil {
		return nil, errors.New("pgstore: New: db is a nil *bun.DB")
	}
	if name := db.Dialect().Name(); name != dialect.PG {
		return nil, fmt.Errorf("pgstore: New: db uses bun's %s dialect; build it with pgdialect.New()", name)
	}
	n, err := newNames(opts.Schema, opts.TablePrefix)
	if err != nil {
		return nil, err
	}
	if opts.MaxAttempts < 0 || opts.RetryDelay < 0 {
		return nil, errors.New("pgstore: New: MaxAttempts and RetryDelay must not be negative")
	}
	s := &Store{
		db:         db,
		schema:     opts.Schema,
		prefix:     n.prefix,
		attempts:   opts.MaxAttempts,
		retryDelay: opts.RetryDelay,
		q:          newQueries(n),
		oq:         newOutboxQueries(n),
	}
	if s.attempts == 0 {
		s.attempts = DefaultMaxAttempts
	}
	if s.retryDelay == 0 {
		s.retryDelay = DefaultRetryDelay
	}
	switch db.(type) {
	case bun.Tx, *bun.Tx:
		s.attempts = 1
	}
	s.retrier = sqlretry.Retrier{Prefix: "pgstore", Attempts: s.attempts, Delay: s.retryDelay, MaxDelay: maxRetryDelay,
		Transient: transient, Report: classifyReadOnly}
	s.ob = s.newOutbox(n)
	return s, nil
}

// Open connects to the PostgreSQL server at dsn (a URL such as
// postgres://app:secret@db:5432/app or a key=value string, as pgx parses
// it) through pgx's database/sql adapter, builds a *bun.DB with pgdialect,
// makes a Store on it and runs [Store.Check], which changes nothing and
// fails when the tables are missing or older than [SchemaVersion] (run
// `passreset schema migrate` then); with [Options.Migrate] it runs
// [Store.Migrate] instead. The caller owns the returned *bun.DB (use it
// for its own tables too) and closes it when done; on error nothing is
// left open.
//
//	store, db, err := pgstore.Open(ctx, os.Getenv("DATABASE_URL"), pgstore.Options{Migrate: true})
func Open(ctx context.Context, dsn string, opts Options) (*Store, *bun.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("pgstore: Open: %w", err)
	}
	db := bun.NewDB(stdlib.OpenDB(*cfg), pgdialect.New())
	s, err := New(db, opts)
	switch {
	case err == nil && opts.Migrate:
		err = s.Migrate(ctx)
	case err == nil:
		err = s.Check(ctx)
	}
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return s, db, nil
}

// TablePrefix returns the prefix of the store's table names.
func (s *Store) TablePrefix() string { return s.prefix }

// Schema returns the schema of the store's tables ("" for the
// connection's current schema).
func (s *Store) Schema() string { return s.schema }

// dbTime formats t for a timestamptz column: UTC, truncated to the
// microsecond (PostgreSQL would round).
func dbTime(t time.Time) (string, error) {
	t = t.UTC().Truncate(time.Microsecond)
	if y := t.Year(); y < 1 || y > 9999 {
		return "", fmt.Errorf("time %v is outside the supported range (years 1 to 9999)", t)
	}
	return t.Format("2006-01-02 15:04:05.000000") + "+00", nil
}

// Rotate implements [reset.Store] with one INSERT ... ON CONFLICT (user_id)
// DO UPDATE: the new record replaces the user's old one in a single atomic
// statement. Running it twice stores the same row, so it is retried freely.
func (s *Store) Rotate(ctx context.Context, rec reset.Record) error {
	if rec.UserID == "" {
		return errors.New("pgstore: rotate: empty user ID")
	}
	if err := sqlstore.CheckText("user ID", rec.UserID, MaxUserIDLen, 0); err != nil {
		return fmt.Errorf("pgstore: rotate: %w", err)
	}
	if err := sqlstore.CheckText("email address", rec.Email, 0, MaxEmailLen); err != nil {
		return fmt.Errorf("pgstore: rotate: %w", err)
	}
	created, err := dbTime(rec.CreatedAt)
	if err != nil {
		return fmt.Errorf("pgstore: rotate: CreatedAt: %w", err)
	}
	expires, err := dbTime(rec.ExpiresAt)
	if err != nil {
		return fmt.Errorf("pgstore: rotate: ExpiresAt: %w", err)
	}
	return s.retry(ctx, "rotate", func() error {
		_, err := s.db.ExecContext(ctx, s.q.rotate, rec.UserID, rec.Hash[:], rec.Email, created, expires, sqlstore.StampArg(rec.Stamp))
		return err
	})
}

// Lookup implements [reset.Store] with one SELECT.
func (s *Store) Lookup(ctx context.Context, h reset.Hash) (reset.Record, error) {
	var rec reset.Record
	err := s.retry(ctx, "lookup", func() (err error) {
		rec, err = s.scanRecord(s.db.QueryRowContext(ctx, s.q.lookup, h[:]), h)
		return err
	})
	return rec, err
}

func (s *Store) scanRecord(row *sql.Row, h reset.Hash) (reset.Record, error) {
	rec := reset.Record{Hash: h}
	var stamp []byte
	err := row.Scan(&rec.UserID, &rec.Email, &rec.CreatedAt, &rec.ExpiresAt, &stamp)
	if errors.Is(err, sql.ErrNoRows) {
		return reset.Record{}, reset.ErrNotFound
	}
	if err != nil {
		return reset.Record{}, err
	}
	if err := sqlstore.ReadStamp(&rec.Stamp, stamp); err != nil {
		return reset.Record{}, sqlretry.Permanent{Err: err}
	}
	rec.CreatedAt, rec.ExpiresAt = rec.CreatedAt.UTC(), rec.ExpiresAt.UTC()
	return rec, nil
}

// Consume implements [reset.Store] with one DELETE ... RETURNING: of
// concurrent calls exactly one deletes the row and gets it back. One round
// trip.
//
// When the connection is lost after the DELETE may have reached the server
// and the retry finds the record gone, Consume cannot tell whether its own
// DELETE or a concurrent call removed it. It then returns the connection
// error (not [reset.ErrNotFound]): the token may be used up, and the
// person may have to ask for a new link.
func (s *Store) Consume(ctx context.Context, h reset.Hash) (reset.Record, error) {
	var rec reset.Record
	var lost error // set when a DELETE may have been applied though its answer was lost
	err := s.retry(ctx, "consume", func() error {
		r, err := s.scanRecord(s.db.QueryRowContext(ctx, s.q.consume, h[:]), h)
		switch {
		case err == nil:
			rec = r
			return nil
		case errors.Is(err, reset.ErrNotFound) && lost != nil:
			return sqlretry.Permanent{Err: fmt.Errorf("outcome unknown, the token may have been used: %w", lost)}
		case mayHaveApplied(err):
			lost = err
		}
		return err
	})
	return rec, err
}

// RevokeAll implements [reset.Store] with one DELETE. Running it twice
// removes the same rows, so it is retried freely.
func (s *Store) RevokeAll(ctx context.Context, userID string) error {
	if userID == "" || sqlstore.CheckText("user ID", userID, MaxUserIDLen, 0) != nil {
		return nil // no such record can exist
	}
	return s.retry(ctx, "revoke all", func() error {
		_, err := s.db.ExecContext(ctx, s.q.revoke, userID)
		return err
	})
}

// Prune implements [reset.Pruner] with one DELETE per kind, each removing
// up to limit rows chosen by key with FOR UPDATE SKIP LOCKED, so that a
// prune neither waits for nor blocks a request for longer than its own
// rows take: the token records that expired at or before now, the
// cooldowns that ended at or before now, and the budgets whose last use
// stopped counting at or before now. After a lost connection a batch
// is retried and its count may be missed.
func (s *Store) Prune(ctx context.Context, now time.Time, limit int) (reset.Pruned, error) {
	var p reset.Pruned
	at, err := dbTime(now)
	if err != nil {
		return p, fmt.Errorf("pgstore: prune: %w", err)
	}
	if limit <= 0 {
		return p, nil
	}
	if p.Tokens, err = s.ob.Count(ctx, "prune", s.q.pruneTokens, at, limit, at); err != nil {
		return p, err
	}
	if p.Cooldowns, err = s.ob.Count(ctx, "prune", s.q.pruneCooldowns, at, limit, at); err != nil {
		return p, err
	}
	p.Quotas, err = s.ob.Count(ctx, "prune", s.q.pruneQuotas, at, limit, at)
	return p, err
}

// Spend implements [reset.Quota] with compare-and-swap rounds of single
// statements, usually two round trips:
//
//	SELECT uses FROM <prefix>quotas WHERE quota_key = key
//	UPDATE <prefix>quotas SET uses = uses', ends_at = ends WHERE quota_key = key AND uses = uses
//
// (an INSERT ... ON CONFLICT DO NOTHING for a key without a row). A write
// that changes no row lost a race and starts a new round. A refused
// request writes nothing.
func (s *Store) Spend(ctx context.Context, key reset.Hash, owner string, now time.Time, window time.Duration, limit int) (bool, error) {
	return s.ob.Spend(ctx, s.q.quota, key[:], owner, now, window, limit)
}

// CooldownSecret implements [reset.Cooldowner] with two statements:
//
//	INSERT INTO <prefix>secrets (name, secret) VALUES ('cooldown', <32 random bytes>) ON CONFLICT DO NOTHING
//	SELECT secret FROM <prefix>secrets WHERE name = 'cooldown'
//
// The first call anywhere inserts the secret; every later or concurrent
// one keeps the one that is there and reads it.
func (s *Store) CooldownSecret(ctx context.Context) ([]byte, error) {
	return s.ob.Secret(ctx, s.q.secretInsert, s.q.secretSelect)
}

// Cooldown implements [reset.Cooldowner] with one statement:
//
//	INSERT INTO <prefix>cooldowns AS c (cooldown_key, ends_at, nonce) VALUES (key, until, nonce)
//	ON CONFLICT (cooldown_key) DO UPDATE SET ends_at = EXCLUDED.ends_at, nonce = EXCLUDED.nonce
//	WHERE c.ends_at <= now OR c.nonce = EXCLUDED.nonce
//	RETURNING 1
//
// A returned row means this call started the cooldown. Concurrent calls
// for one key wait for each other on the key's unique index and row lock,
// and each evaluates the WHERE on the row as the one before it left it, so
// exactly one of them starts the cooldown. nonce is random per call: if
// the connection is lost after the statement was sent, the retry finds the
// row its own first attempt wrote and still reports true, while a cooldown
// started by anyone else gives false.
func (s *Store) Cooldown(ctx context.Context, key reset.Hash, owner string, now, until time.Time) (bool, error) {
	if !until.After(now) {
		return true, nil // a cooldown that has already ended never runs
	}
	nowAt, err := dbTime(now)
	if err != nil {
		return false, fmt.Errorf("pgstore: cooldown: %w", err)
	}
	untilAt, err := dbTime(until)
	if err != nil {
		return false, fmt.Errorf("pgstore: cooldown: %w", err)
	}
	nonce := sqlstore.OwnerNonce(owner)
	var started bool
	err = s.retry(ctx, "cooldown", func() error {
		var one int
		err := s.db.QueryRowContext(ctx, s.q.cooldown, key[:], untilAt, nonce, nowAt).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			started = false
			return nil
		case err != nil:
			return err
		}
		started = true
		return nil
	})
	return started, err
}
