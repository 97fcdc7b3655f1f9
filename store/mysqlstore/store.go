package mysqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/passreset/passreset/internal/sqlretry"
	"github.com/passreset/passreset/internal/sqlstore"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
)

// Defaults for the zero values of [Options].
const (
	DefaultMaxAttempts = 9
	DefaultRetryDelay  = 10 * time.Millisecond
)

// Limits of the stored values, set by the column types.
const (
	MaxUserIDLen = 255 // bytes
	MaxEmailLen  = 320 // characters
)

// maxRetryDelay caps the delay before one retry.
const maxRetryDelay = time.Second

// Options configures a [Store]. The zero value means the documented
// defaults.
type Options struct {
	// TablePrefix is put before every table name: <prefix>tokens,
	// <prefix>cooldowns, <prefix>outbox and <prefix>schema_version. It
	// may hold ASCII letters, digits and '_', at most 50 bytes. Default
	// "passreset_".
	TablePrefix string

	// MaxAttempts bounds how many times one operation is tried when it
	// fails with a transient error: a deadlock (1213, also a Galera
	// certification conflict), a lock wait timeout (1205), a Galera node
	// that is not ready (1047) or a lost connection. Default 9: with the
	// default RetryDelay the waits between them add up to 1.1 to 2.3
	// seconds, enough for 100 concurrent writes of one row through three
	// Galera nodes (5 attempts were not: a third of them gave up). 1 turns
	// retries off. A Store made on a bun.Tx never retries, since a failed
	// statement may have ended the transaction.
	MaxAttempts int

	// RetryDelay is the longest wait before the first retry. Each later
	// retry doubles it, up to 1 second; the actual wait is a random
	// duration between half of that and all of it. Waits end early when
	// the context does. Default 10ms.
	RetryDelay time.Duration

	// AllowStaleReads makes [Store.Check] accept a connection to a Galera
	// cluster node whose wsrep_sync_wait lacks bit 1 or 2 (the DSN setting
	// wsrep_sync_wait=3 sets both). Unsafe: without them a read, UPDATE or
	// DELETE on one node can miss a write committed through another an
	// instant before, so a link that was just issued is refused as invalid
	// (measured here: 314 of 2000 reads), or survives a RevokeAll (7 of
	// 1000). Set it only if every instance reads and writes through the
	// same node. Default false: Check refuses such a connection. It changes
	// nothing on a server that is not a Galera node.
	AllowStaleReads bool
}

// Store is a [reset.Store] on MySQL or MariaDB through bun. It also
// implements [reset.Pruner], [reset.Cooldowner] and [outbox.Store],
// a durable outbox that workers in every instance drain. It is safe for
// concurrent use, holds no state besides its configuration and whether
// the server offers a safe DELETE ... RETURNING (learnt by [Store.Check]),
// and starts no goroutine: there is nothing to close. Create it with
// [New].
type Store struct {
	db         bun.IDB
	prefix     string
	attempts   int
	retryDelay time.Duration
	allowStale bool
	returning  atomic.Bool // Consume may use DELETE ... RETURNING (MariaDB, not Galera); set by Check
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
// itself, so each statement is one round trip.
type queries struct {
	lookup, consume, consumeReturning, rotate, revoke, pruneTokens, pruneCooldowns, cooldown, cooldownNonce string
	secretInsert, secretSelect, pruneQuotas                                                                 string
	quota                                                                                                   sqlstore.QuotaQueries
}

// timeFormat is how the store writes and reads DATETIME(6) values: UTC
// wall-clock text, independent of the DSN's parseTime and loc and of the
// dialect's time location.
const (
	timeFormat = "2006-01-02 15:04:05.000000"
	sqlTime    = "DATE_FORMAT(%s, '%%Y-%%m-%%d %%H:%%i:%%s.%%f')"
)

func newQueries(p string) queries {
	tokens, cooldowns := "`"+p+"tokens`", "`"+p+"cooldowns`"
	recordColumns := "user_id, email, " + fmt.Sprintf(sqlTime, "created_at") + ", " + fmt.Sprintf(sqlTime, "expires_at") + ", stamp"
	secrets, quotas := "`"+p+"secrets`", "`"+p+"quotas`"
	return queries{
		quota: sqlstore.QuotaQueries{
			Select: "SELECT uses FROM " + quotas + " WHERE quota_key = ?",
			// Rows affected: 1 inserted, 0 the key has a row (the no-op
			// update changes nothing).
			Insert: "INSERT INTO " + quotas + " (quota_key, uses, ends_at) VALUES (?, ?, ?)" +
				" ON DUPLICATE KEY UPDATE quota_key = quota_key",
			Update: "UPDATE " + quotas + " SET uses = ?, ends_at = ? WHERE quota_key = ? AND uses = ?",
		},
		pruneQuotas: "DELETE FROM " + quotas + " WHERE ends_at <= CAST(? AS DATETIME(6))" +
			" ORDER BY ends_at, quota_key LIMIT ?",
		secretInsert:     "INSERT IGNORE INTO " + secrets + " (name, secret) VALUES ('cooldown', ?)",
		secretSelect:     "SELECT secret FROM " + secrets + " WHERE name = 'cooldown'",
		lookup:           "SELECT " + recordColumns + " FROM " + tokens + " WHERE token_hash = ?",
		consumeReturning: "DELETE FROM " + tokens + " WHERE token_hash = ? RETURNING " + recordColumns,
		// Conditional on the exact hash: a row that a concurrent Rotate
		// replaced between the SELECT and this DELETE is left alone.
		consume: "DELETE FROM " + tokens + " WHERE user_id = ? AND token_hash = ?",
		rotate: "INSERT INTO " + tokens + " (user_id, token_hash, email, created_at, expires_at, stamp) VALUES (?, ?, ?, ?, ?, ?)" +
			" ON DUPLICATE KEY UPDATE token_hash = ?, email = ?, created_at = ?, expires_at = ?, stamp = ?",
		revoke: "DELETE FROM " + tokens + " WHERE user_id = ?",
		pruneTokens: "DELETE FROM " + tokens + " WHERE expires_at <= CAST(? AS DATETIME(6))" +
			" ORDER BY expires_at, user_id LIMIT ?",
		pruneCooldowns: "DELETE FROM " + cooldowns + " WHERE ends_at <= CAST(? AS DATETIME(6))" +
			" ORDER BY ends_at, cooldown_key LIMIT ?",
		// Rows affected: 1 inserted, 2 replaced an ended cooldown, 0 one
		// is running (the row is unchanged). nonce is assigned first so
		// that it still sees the old ends_at.
		cooldown: "INSERT INTO " + cooldowns + " (cooldown_key, ends_at, nonce) VALUES (?, ?, ?)" +
			" ON DUPLICATE KEY UPDATE nonce = IF(ends_at <= CAST(? AS DATETIME(6)), ?, nonce)," +
			" ends_at = IF(ends_at <= CAST(? AS DATETIME(6)), ?, ends_at)",
		cooldownNonce: "SELECT nonce FROM " + cooldowns + " WHERE cooldown_key = ?",
	}
}

// New returns a Store that keeps its tables in db, which must use bun's
// MySQL dialect. Pass the application's *bun.DB; the Store never closes
// it. New does no I/O: call [Store.Migrate] (or [Store.Check] when you run
// [SchemaSQL] yourself) before use.
func New(db bun.IDB, opts Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("mysqlstore: New: db is nil")
	}
	if d, ok := db.(*bun.DB); ok && d == nil {
		return nil, errors.New("mysqlstore: New: db is a nil *bun.DB")
	}
	if name := db.Dialect().Name(); name != dialect.MySQL {
		return nil, fmt.Errorf("mysqlstore: New: db uses bun's %s dialect; build it with mysqldialect.New()", name)
	}
	prefix, err := checkPrefix(opts.TablePrefix)
	if err != nil {
		return nil, err
	}
	if opts.MaxAttempts < 0 || opts.RetryDelay < 0 {
		return nil, errors.New("mysqlstore: New: MaxAttempts and RetryDelay must not be negative")
	}
	s := &Store{
		db:         db,
		prefix:     prefix,
		attempts:   opts.MaxAttempts,
		retryDelay: opts.RetryDelay,
		allowStale: opts.AllowStaleReads,
		q:          newQueries(prefix),
		oq:         newOutboxQueries(prefix),
	}
	if s.attempts == 0 {
		s.attempts = DefaultMaxAttempts
	}
	if s.retryDelay == 0 {
		s.retryDelay = DefaultRetryDelay
	}
	s.retrier = sqlretry.Retrier{Prefix: "mysqlstore", Attempts: s.attempts, Delay: s.retryDelay, MaxDelay: maxRetryDelay,
		Transient: transient}
	s.ob = s.newOutbox()
	switch db.(type) {
	case bun.Tx, *bun.Tx:
		s.attempts = 1
	}
	return s, nil
}

// TablePrefix returns the prefix of the store's table names.
func (s *Store) TablePrefix() string { return s.prefix }

// dbTime formats t for a DATETIME(6) column: UTC, truncated to the
// microsecond.
func dbTime(t time.Time) (string, error) {
	t = t.UTC()
	if y := t.Year(); y < 1000 || y > 9999 {
		return "", fmt.Errorf("time %v is outside the DATETIME range (years 1000 to 9999)", t)
	}
	return t.Format(timeFormat), nil
}

// parseTime reads a time written by the sqlTime expression.
func parseTime(b []byte) (time.Time, error) {
	return time.ParseInLocation(timeFormat, string(b), time.UTC)
}

// Rotate implements [reset.Store] with one INSERT ... ON DUPLICATE KEY
// UPDATE keyed on the user: the new record replaces the user's old one in
// a single atomic statement. Running it twice stores the same row, so it is
// retried freely.
func (s *Store) Rotate(ctx context.Context, rec reset.Record) error {
	switch {
	case rec.UserID == "":
		return errors.New("mysqlstore: rotate: empty user ID")
	case len(rec.UserID) > MaxUserIDLen:
		return fmt.Errorf("mysqlstore: rotate: user ID longer than %d bytes", MaxUserIDLen)
	case !utf8.ValidString(rec.Email) || utf8.RuneCountInString(rec.Email) > MaxEmailLen:
		return fmt.Errorf("mysqlstore: rotate: email address is not valid UTF-8 of at most %d characters", MaxEmailLen)
	}
	created, err := dbTime(rec.CreatedAt)
	if err != nil {
		return fmt.Errorf("mysqlstore: rotate: CreatedAt: %w", err)
	}
	expires, err := dbTime(rec.ExpiresAt)
	if err != nil {
		return fmt.Errorf("mysqlstore: rotate: ExpiresAt: %w", err)
	}
	// Strings go in as bytes: bun writes them as hex literals, which no
	// sql_mode (NO_BACKSLASH_ESCAPES) can reinterpret and which keep NUL
	// bytes that bun's string quoting would drop.
	user, email, stamp := []byte(rec.UserID), []byte(rec.Email), sqlstore.StampArg(rec.Stamp)
	return s.retry(ctx, "rotate", func() error {
		_, err := s.db.ExecContext(ctx, s.q.rotate,
			user, rec.Hash[:], email, created, expires, stamp,
			rec.Hash[:], email, created, expires, stamp)
		return err
	})
}

// Lookup implements [reset.Store] with one SELECT.
func (s *Store) Lookup(ctx context.Context, h reset.Hash) (reset.Record, error) {
	var rec reset.Record
	err := s.retry(ctx, "lookup", func() (err error) {
		rec, err = s.lookup(ctx, h)
		return err
	})
	return rec, err
}

func (s *Store) lookup(ctx context.Context, h reset.Hash) (reset.Record, error) {
	return s.scanRecord(h, s.db.QueryRowContext(ctx, s.q.lookup, h[:]))
}

// scanRecord reads the record with hash h from a row of recordColumns.
func (s *Store) scanRecord(h reset.Hash, row *sql.Row) (reset.Record, error) {
	var user, email, created, expires, stamp []byte
	err := row.Scan(&user, &email, &created, &expires, &stamp)
	if errors.Is(err, sql.ErrNoRows) {
		return reset.Record{}, reset.ErrNotFound
	}
	if err != nil {
		return reset.Record{}, err
	}
	rec := reset.Record{Hash: h, UserID: string(user), Email: string(email)}
	if err := sqlstore.ReadStamp(&rec.Stamp, stamp); err != nil {
		return reset.Record{}, sqlretry.Permanent{Err: err}
	}
	if rec.CreatedAt, err = parseTime(created); err != nil {
		return reset.Record{}, sqlretry.Permanent{Err: fmt.Errorf("reading created_at: %w", err)}
	}
	if rec.ExpiresAt, err = parseTime(expires); err != nil {
		return reset.Record{}, sqlretry.Permanent{Err: fmt.Errorf("reading expires_at: %w", err)}
	}
	return rec, nil
}

// Consume implements [reset.Store]. On MariaDB that is not a Galera
// cluster node (once [Store.Check] or [Store.Migrate] has seen it) it is
// one round trip:
//
//	DELETE FROM <prefix>tokens WHERE token_hash = h RETURNING user_id, email, created_at, expires_at
//
// Of concurrent calls only one DELETE removes the row and returns it.
// MySQL has no DELETE ... RETURNING, and on Galera a certification
// conflict does not take back rows already returned: there Consume reads
// the record by hash, then deletes it with a DELETE conditional on the
// same user and hash, and returns the record only when that DELETE
// removed exactly one row; a row that a concurrent Rotate replaced has
// another hash and is left alone. Two round trips.
//
// When the connection is lost after the DELETE was sent and the retry
// finds the record gone, Consume cannot tell whether its own DELETE or a
// concurrent call removed it. It then returns the connection error (not
// [reset.ErrNotFound]): the token may be used up, and the person may have
// to ask for a new link.
func (s *Store) Consume(ctx context.Context, h reset.Hash) (reset.Record, error) {
	var rec reset.Record
	var lost error // set when a DELETE may have been applied though its answer was lost
	unknown := func() error {
		return sqlretry.Permanent{Err: fmt.Errorf("outcome unknown, the token may have been used: %w", lost)}
	}
	if s.returning.Load() {
		err := s.retry(ctx, "consume", func() error {
			r, err := s.scanRecord(h, s.db.QueryRowContext(ctx, s.q.consumeReturning, h[:]))
			switch {
			case errors.Is(err, reset.ErrNotFound) && lost != nil:
				return unknown()
			case mayHaveApplied(err):
				lost = err
			}
			rec = r
			return err
		})
		return rec, err
	}
	err := s.retry(ctx, "consume", func() error {
		r, err := s.lookup(ctx, h)
		if errors.Is(err, reset.ErrNotFound) && lost != nil {
			return unknown()
		}
		if err != nil {
			return err
		}
		res, err := s.db.ExecContext(ctx, s.q.consume, []byte(r.UserID), h[:])
		if err != nil {
			if mayHaveApplied(err) {
				lost = err
			}
			return err
		}
		n, err := res.RowsAffected()
		switch {
		case err != nil:
			return err
		case n == 1:
			rec = r
			return nil
		case lost != nil:
			return unknown()
		default:
			return reset.ErrNotFound
		}
	})
	return rec, err
}

// RevokeAll implements [reset.Store] with one DELETE. Running it twice
// removes the same rows, so it is retried freely.
func (s *Store) RevokeAll(ctx context.Context, userID string) error {
	if userID == "" || len(userID) > MaxUserIDLen {
		return nil // no such record can exist
	}
	return s.retry(ctx, "revoke all", func() error {
		_, err := s.db.ExecContext(ctx, s.q.revoke, []byte(userID))
		return err
	})
}

// Prune implements [reset.Pruner] with three autocommit DELETE statements,
// one per kind, each removing at most limit rows in index order and
// holding locks only on the rows it removes and the index range it reads:
//
//	DELETE FROM <prefix>tokens WHERE expires_at <= now ORDER BY expires_at, user_id LIMIT limit
//	DELETE FROM <prefix>cooldowns WHERE ends_at <= now ORDER BY ends_at, cooldown_key LIMIT limit
//	DELETE FROM <prefix>quotas WHERE ends_at <= now ORDER BY ends_at, quota_key LIMIT limit
//
// [reset.Service.Prune] calls it again while a count reaches limit. After
// a lost connection a statement is retried, and the rows its first attempt
// removed are not counted.
func (s *Store) Prune(ctx context.Context, now time.Time, limit int) (reset.Pruned, error) {
	var n reset.Pruned
	at, err := dbTime(now)
	if err != nil {
		return n, fmt.Errorf("mysqlstore: prune: %w", err)
	}
	if limit <= 0 {
		return n, nil
	}
	if n.Tokens, err = s.ob.Count(ctx, "prune", s.q.pruneTokens, at, limit); err != nil {
		return n, err
	}
	if n.Cooldowns, err = s.ob.Count(ctx, "prune", s.q.pruneCooldowns, at, limit); err != nil {
		return n, err
	}
	n.Quotas, err = s.ob.Count(ctx, "prune", s.q.pruneQuotas, at, limit)
	return n, err
}

// Spend implements [reset.Quota] with compare-and-swap rounds of single
// statements, usually two round trips:
//
//	SELECT uses FROM <prefix>quotas WHERE quota_key = key
//	UPDATE <prefix>quotas SET uses = uses', ends_at = ends WHERE quota_key = key AND uses = uses
//
// (an INSERT ... ON DUPLICATE KEY UPDATE for a key without a row). An
// UPDATE that changes no row lost a race and starts a new round; on a
// Galera cluster the loser of two writes through different nodes fails
// certification and is retried. A refused request writes nothing.
func (s *Store) Spend(ctx context.Context, key reset.Hash, owner string, now time.Time, window time.Duration, limit int) (bool, error) {
	return s.ob.Spend(ctx, s.q.quota, key[:], owner, now, window, limit)
}

// CooldownSecret implements [reset.Cooldowner] with two statements:
//
//	INSERT IGNORE INTO <prefix>secrets (name, secret) VALUES ('cooldown', <32 random bytes>)
//	SELECT secret FROM <prefix>secrets WHERE name = 'cooldown'
//
// The first call anywhere inserts the secret; every later or concurrent
// one (on Galera, a conflicting insert through another node is retried)
// ignores its own and reads the one that is there.
func (s *Store) CooldownSecret(ctx context.Context) ([]byte, error) {
	return s.ob.Secret(ctx, s.q.secretInsert, s.q.secretSelect)
}

// Cooldown implements [reset.Cooldowner] with one statement:
//
//	INSERT INTO <prefix>cooldowns (cooldown_key, ends_at, nonce) VALUES (key, until, nonce)
//	ON DUPLICATE KEY UPDATE nonce = IF(ends_at <= now, nonce', nonce), ends_at = IF(ends_at <= now, until, ends_at)
//
// MySQL reports 1 row affected for an insert, 2 for an update that changed
// the row and 0 for one that left it as it was, so 1 or 2 means this call
// started the cooldown and 0 means one is running. This needs the driver's
// default clientFoundRows=false ([Store.Check] verifies it): with it on, an
// unchanged row would also report 1. Concurrent calls for one key are
// serialised by the row lock, so exactly one of them starts the cooldown.
//
// If the connection is lost after the statement was sent, the retry finds
// a running cooldown either way; it then reads the row's nonce (one more
// round trip, only in that case) to learn whether the running cooldown is
// its own.
func (s *Store) Cooldown(ctx context.Context, key reset.Hash, owner string, now, until time.Time) (bool, error) {
	if !until.After(now) {
		return true, nil // a cooldown that has already ended never runs
	}
	nowAt, err := dbTime(now)
	if err != nil {
		return false, fmt.Errorf("mysqlstore: cooldown: %w", err)
	}
	untilAt, err := dbTime(until)
	if err != nil {
		return false, fmt.Errorf("mysqlstore: cooldown: %w", err)
	}
	nonce := sqlstore.OwnerNonce(owner)
	var started, unsure bool
	err = s.retry(ctx, "cooldown", func() error {
		res, err := s.db.ExecContext(ctx, s.q.cooldown,
			key[:], untilAt, nonce,
			nowAt, nonce,
			nowAt, untilAt)
		if err != nil {
			unsure = unsure || mayHaveApplied(err)
			return err
		}
		n, err := res.RowsAffected()
		switch {
		case err != nil:
			return err
		case n == 1 || n == 2:
			started = true
			return nil
		case n != 0:
			return sqlretry.Permanent{Err: fmt.Errorf("unexpected %d rows affected", n)}
		case !unsure && owner == "":
			started = false
			return nil
		}
		// A running cooldown: this call's own if a lost answer hid that it
		// started it, or its owner's (the same request asking again).
		var got []byte
		err = s.db.QueryRowContext(ctx, s.q.cooldownNonce, key[:]).Scan(&got)
		if errors.Is(err, sql.ErrNoRows) {
			started = false
			return nil
		}
		started = err == nil && bytes.Equal(got, nonce)
		return err
	})
	return started, err
}
