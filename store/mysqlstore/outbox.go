package mysqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"

	"github.com/passreset/passreset/internal/sqlretry"
	"github.com/passreset/passreset/internal/sqlstore"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
)

// errDuplicateEntry is ER_DUP_ENTRY.
const errDuplicateEntry = 1062

// outboxQueries holds the outbox's statements with the table name filled
// in. Like the rest of the store, bun formats every argument into the
// text, so each statement is one round trip.
type outboxQueries struct {
	claim, claimUpdate, hold, release, nonce, stats, dead, revive, pruneDead string
}

// envelopeColumns is what every read of whole envelopes selects, in the
// order readEnvelopes scans.
var envelopeColumns = "id, kind, sealed, key_id, attempts, claims, " +
	fmt.Sprintf(sqlTime, "not_before") + ", " + fmt.Sprintf(sqlTime, "created_at") + ", dead, last_error"

func newOutboxQueries(p string) outboxQueries {
	t := "`" + p + "outbox`"
	set := "sealed = ?, key_id = ?, attempts = ?, not_before = ?, dead = ?, last_error = ?, nonce = ?"
	held := " WHERE id = ? AND lease_owner = ? AND lease_until IS NOT NULL"
	return outboxQueries{
		// Due, not dead, not leased (or the lease ended): oldest first,
		// skipping the rows another claim has locked this instant. The
		// index hints hold even with the statistics of a young table: a
		// table scan would lock rows the claim does not take, and the
		// UPDATE would then wait for a removal of such a row while that
		// removal waits for the claim's lock (a deadlock the tests met).
		claim: "SELECT " + envelopeColumns + " FROM " + t + " FORCE INDEX (claim_order)" +
			" WHERE dead = 0 AND not_before <= CAST(? AS DATETIME(6))" +
			" AND (lease_until IS NULL OR lease_until <= CAST(? AS DATETIME(6)))" +
			" ORDER BY not_before, created_at, id LIMIT ? FOR UPDATE SKIP LOCKED",
		claimUpdate: "UPDATE " + t + " FORCE INDEX (PRIMARY) SET lease_owner = ?, lease_until = ?, claims = claims + 1 WHERE id IN (",
		hold:        "UPDATE " + t + " SET " + set + held,
		release:     "UPDATE " + t + " SET " + set + ", lease_owner = NULL, lease_until = NULL" + held,
		nonce:       "SELECT nonce FROM " + t + " WHERE id = ?",
		// Each count reads at most limit entries of dead_created; MIN
		// reads one.
		stats: "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM " + t + " WHERE dead = 0 LIMIT ?) p)," +
			" (SELECT COUNT(*) FROM (SELECT 1 FROM " + t + " WHERE dead = 1 LIMIT ?) d)," +
			" (SELECT " + fmt.Sprintf(sqlTime, "MIN(created_at)") + " FROM " + t + " WHERE dead = 0)",
		dead: "SELECT " + envelopeColumns + " FROM " + t + " WHERE dead = 1 ORDER BY created_at, id LIMIT ?",
		revive: "UPDATE " + t + " SET dead = 0, attempts = 0, claims = 0, not_before = ?, lease_owner = NULL, lease_until = NULL," +
			" nonce = ? WHERE id = ? AND dead = 1",
		pruneDead: "DELETE FROM " + t + " WHERE dead = 1 AND created_at < CAST(? AS DATETIME(6))" +
			" ORDER BY dead, created_at, id LIMIT ?",
	}
}

// Enqueue implements [outbox.Store] with one INSERT: see
// [sqlstore.Outbox.Enqueue]. It does not count the outbox, so an enqueue
// costs the same whatever the backlog.
func (s *Store) Enqueue(ctx context.Context, e outbox.Envelope) error {
	return s.ob.Enqueue(ctx, e)
}

// Claim implements [outbox.Store] with one transaction:
//
//	SELECT <envelope> FROM <prefix>outbox
//	WHERE dead = 0 AND not_before <= now AND (lease_until IS NULL OR lease_until <= now)
//	ORDER BY not_before, created_at, id LIMIT max FOR UPDATE SKIP LOCKED;
//	UPDATE <prefix>outbox SET lease_owner = worker, lease_until = leaseUntil, claims = claims + 1
//	WHERE id IN (...);
//	COMMIT
//
// SKIP LOCKED (MariaDB 10.6 and later, MySQL 8.0) makes concurrent claims
// pass over each other's rows instead of waiting for them, so that
// workers in any number of processes take disjoint envelopes. Four round
// trips (BEGIN, SELECT, UPDATE, COMMIT), three when nothing is due. Under
// REPEATABLE READ the SELECT also keeps the leased rows it passes over
// locked until the COMMIT, so a Save or Replace of one of them waits those
// few round trips.
//
// A claim that fails with a deadlock, a lock wait timeout or a lost
// connection is retried as a whole. When the connection is lost during
// the COMMIT, the first attempt may have been applied: its envelopes then
// stay leased to worker, unseen, until leaseUntil, when any worker claims
// them again. Nothing is lost or sent twice; they are only delayed.
func (s *Store) Claim(ctx context.Context, worker string, now, leaseUntil time.Time, max int) ([]outbox.Envelope, error) {
	if sqlstore.CheckID("worker name", worker, sqlstore.MaxWorkerLen) != nil {
		return nil, fmt.Errorf("mysqlstore: claim: worker name must be 1 to %d bytes of UTF-8", sqlstore.MaxWorkerLen)
	}
	if max <= 0 {
		return nil, nil
	}
	nowAt, err := dbTime(now)
	if err != nil {
		return nil, fmt.Errorf("mysqlstore: claim: %w", err)
	}
	untilAt, err := dbTime(leaseUntil)
	if err != nil {
		return nil, fmt.Errorf("mysqlstore: claim: %w", err)
	}
	var out []outbox.Envelope
	err = s.retry(ctx, "claim", func() error {
		out = nil
		return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			envs, err := s.readEnvelopes(ctx, tx, s.oq.claim, nowAt, nowAt, max)
			if err != nil || len(envs) == 0 {
				return err
			}
			var q strings.Builder
			q.WriteString(s.oq.claimUpdate)
			args := make([]any, 0, 2+len(envs))
			args = append(args, []byte(worker), untilAt)
			for i, e := range envs {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString("?")
				args = append(args, []byte(e.ID))
			}
			q.WriteString(")")
			res, err := tx.ExecContext(ctx, q.String(), args...)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n != int64(len(envs)) {
				return sqlretry.Permanent{Err: fmt.Errorf("leased %d of %d locked envelopes", n, len(envs))}
			}
			for i := range envs {
				envs[i].Claims++
			}
			out = envs
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// readEnvelopes runs query and reads whole envelopes.
func (s *Store) readEnvelopes(ctx context.Context, db bun.IDB, query string, args ...any) ([]outbox.Envelope, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []outbox.Envelope
	for rows.Next() {
		var id, kind, keyID, notBefore, created, lastErr []byte
		var e outbox.Envelope
		if err := rows.Scan(&id, &kind, &e.Sealed, &keyID, &e.Attempts, &e.Claims,
			&notBefore, &created, &e.Dead, &lastErr); err != nil {
			return nil, err
		}
		e.ID, e.Kind, e.KeyID, e.LastError = string(id), string(kind), string(keyID), string(lastErr)
		if e.NotBefore, err = parseTime(notBefore); err != nil {
			return nil, sqlretry.Permanent{Err: fmt.Errorf("reading not_before: %w", err)}
		}
		if e.CreatedAt, err = parseTime(created); err != nil {
			return nil, sqlretry.Permanent{Err: fmt.Errorf("reading created_at: %w", err)}
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Save implements [outbox.Store] with one UPDATE conditional on
// worker holding the lease: the holder is the worker that claimed the
// envelope last, until it releases it, even after the lease ran out, as
// long as no other worker has claimed the envelope since. Every Save
// writes a fresh random nonce, so the row always changes and the rows
// affected (1 or 0, with the driver's default clientFoundRows=false) tell
// whether the lease was held; 0 gives [outbox.ErrLeaseLost].
//
// If the connection is lost after the UPDATE was sent, the retry may find
// the lease already released by its own first attempt; it then reads the
// nonce (one more round trip, only in that case) to tell its own write
// from a lost lease.
func (s *Store) Save(ctx context.Context, worker string, e outbox.Envelope, hold bool) error {
	q := s.oq.release
	if hold {
		q = s.oq.hold
	}
	id := []byte(e.ID)
	var unsure bool
	return s.ob.Save(ctx, worker, e, func(notBefore string, nonce []byte) error {
		res, err := s.db.ExecContext(ctx, q,
			e.Sealed, []byte(e.KeyID), e.Attempts, notBefore, e.Dead, []byte(sqlstore.LastError(e.LastError)), nonce,
			id, []byte(worker))
		if err != nil {
			unsure = unsure || mayHaveApplied(err)
			return err
		}
		return s.changedOne(ctx, res, unsure, id, nonce, outbox.ErrLeaseLost)
	})
}

// changedOne decides the outcome of an UPDATE of one envelope that wrote
// nonce: nil if it changed the row, otherwise notHeld, unless an earlier
// attempt whose answer was lost (unsure) wrote the row.
func (s *Store) changedOne(ctx context.Context, res sql.Result, unsure bool, id, nonce []byte, notHeld error) error {
	n, err := res.RowsAffected()
	switch {
	case err != nil:
		return err
	case n == 1:
		return nil
	case n != 0:
		return sqlretry.Permanent{Err: fmt.Errorf("unexpected %d rows affected", n)}
	case !unsure:
		return notHeld
	}
	var got []byte
	err = s.db.QueryRowContext(ctx, s.oq.nonce, id).Scan(&got)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return notHeld
	case err != nil:
		return err
	case bytes.Equal(got, nonce):
		return nil
	}
	return notHeld
}

// Replace implements [outbox.Store] in one transaction: see
// [sqlstore.Outbox.Replace] for the statements and for how a retry after
// a lost answer recognises its own write.
func (s *Store) Replace(ctx context.Context, worker string, remove []string, add []outbox.Envelope, holdUntil time.Time) error {
	return s.ob.Replace(ctx, worker, remove, add, holdUntil)
}

// Stats implements [outbox.Store] with one SELECT of three
// subqueries, each served by the index on (dead, created_at): the two
// counts read at most limit index entries each, the oldest pending
// envelope one. Its cost therefore depends on limit, not on the size of
// the outbox.
func (s *Store) Stats(ctx context.Context, limit int) (outbox.Stats, error) {
	var st outbox.Stats
	limit = max(limit, 0)
	err := s.retry(ctx, "outbox stats", func() error {
		var oldest []byte
		if err := s.db.QueryRowContext(ctx, s.oq.stats, limit, limit).Scan(&st.Pending, &st.Dead, &oldest); err != nil {
			return err
		}
		st.Oldest = time.Time{}
		if oldest != nil {
			t, err := parseTime(oldest)
			if err != nil {
				return sqlretry.Permanent{Err: fmt.Errorf("reading created_at: %w", err)}
			}
			st.Oldest = t
		}
		return nil
	})
	return st, err
}

// Dead implements [outbox.Store] with one SELECT.
func (s *Store) Dead(ctx context.Context, limit int) ([]outbox.Envelope, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []outbox.Envelope
	err := s.retry(ctx, "dead", func() (err error) {
		out, err = s.readEnvelopes(ctx, s.db, s.oq.dead, limit)
		return err
	})
	return out, err
}

// Revive implements [outbox.Store] with one UPDATE conditional on the
// envelope being dead; like [Store.Save] it writes a nonce so that a retry
// after a lost answer recognises its own write.
func (s *Store) Revive(ctx context.Context, id string, now time.Time) error {
	if sqlstore.CheckID("envelope ID", id, sqlstore.MaxEnvelopeIDLen) != nil {
		return fmt.Errorf("mysqlstore: revive: %w", reset.ErrNotFound)
	}
	at, err := dbTime(now)
	if err != nil {
		return fmt.Errorf("mysqlstore: revive: %w", err)
	}
	bid, nonce := []byte(id), sqlstore.Nonce()
	var unsure bool
	return s.retry(ctx, "revive", func() error {
		res, err := s.db.ExecContext(ctx, s.oq.revive, at, nonce, bid)
		if err != nil {
			unsure = unsure || mayHaveApplied(err)
			return err
		}
		return s.changedOne(ctx, res, unsure, bid, nonce, reset.ErrNotFound)
	})
}

// PruneDead implements [outbox.Store] with one DELETE of at most limit
// rows in index order:
//
//	DELETE FROM <prefix>outbox WHERE dead = 1 AND created_at < before ORDER BY dead, created_at, id LIMIT limit
func (s *Store) PruneDead(ctx context.Context, before time.Time, limit int) (int, error) {
	at, err := dbTime(before)
	if err != nil {
		return 0, fmt.Errorf("mysqlstore: prune dead: %w", err)
	}
	if limit <= 0 {
		return 0, nil
	}
	return s.ob.Count(ctx, "prune dead", s.oq.pruneDead, at, limit)
}

// newOutbox returns the shared outbox operations on the store's table.
func (s *Store) newOutbox() sqlstore.Outbox {
	t := "`" + s.prefix + "outbox`"
	return sqlstore.Outbox{
		DB:             s.db,
		Retry:          s.retry,
		MayHaveApplied: mayHaveApplied,
		Arg:            func(id string) any { return []byte(id) },
		Time:           dbTime,
		DeleteHeld:     "DELETE FROM " + t + " WHERE lease_owner = ? AND lease_until IS NOT NULL AND id IN ",
		Insert: "INSERT INTO " + t + " (id, kind, sealed, key_id, attempts, claims, not_before, created_at," +
			" dead, last_error, lease_owner, lease_until, nonce) VALUES ",
		Row: sqlstore.Placeholders(13),
		RowArgs: func(e outbox.Envelope, notBefore, createdAt string, owner, until any, nonce []byte) []any {
			return []any{[]byte(e.ID), []byte(e.Kind), e.Sealed, []byte(e.KeyID), e.Attempts, e.Claims,
				notBefore, createdAt, e.Dead, []byte(sqlstore.LastError(e.LastError)), owner, until, nonce}
		},
		Written: "SELECT 1 FROM " + t + " WHERE id = ? AND nonce = ?",
		Exists:  "SELECT COUNT(*) FROM " + t + " WHERE id IN ",
		Duplicate: func(err error) bool {
			var me *mysql.MySQLError
			return errors.As(err, &me) && me.Number == errDuplicateEntry
		},
	}
}
