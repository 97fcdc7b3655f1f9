package mysqlstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"

	"github.com/passreset/passreset/reset"
)

var _ reset.OutboxStore = (*Store)(nil)

// Limits of the outbox's columns. Enqueue refuses an envelope that does
// not fit; LastError is cut to fit instead.
const (
	maxEnvelopeIDLen = 64        // bytes
	maxKindLen       = 32        // bytes
	maxKeyIDLen      = 64        // bytes, as reset accepts
	maxWorkerLen     = 255       // bytes
	maxSealedLen     = 1<<24 - 1 // MEDIUMBLOB
	maxLastErrorLen  = 1000      // characters
)

// errDuplicateEntry is ER_DUP_ENTRY.
const errDuplicateEntry = 1062

// outboxQueries holds the outbox's statements with the table name filled
// in. Like the rest of the store, bun formats every argument into the
// text, so each statement is one round trip.
type outboxQueries struct {
	enqueue, exists, claim, claimUpdate, hold, release, del, nonce, stats, dead, revive, pruneDead string
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
		enqueue: "INSERT INTO " + t + " (id, kind, sealed, key_id, attempts, claims, not_before, created_at," +
			" dead, last_error, lease_owner, lease_until, nonce) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?)",
		exists: "SELECT 1 FROM " + t + " WHERE id = ?",
		// Due, not dead, not leased (or the lease ended): oldest first,
		// skipping the rows another claim has locked this instant. The
		// index hints hold even with the statistics of a young table: a
		// table scan would lock rows the claim does not take, and the
		// UPDATE would then wait for a Delete of such a row while that
		// Delete waits for the claim's lock (a deadlock the tests met).
		claim: "SELECT " + envelopeColumns + " FROM " + t + " FORCE INDEX (claim_order)" +
			" WHERE dead = 0 AND not_before <= CAST(? AS DATETIME(6))" +
			" AND (lease_until IS NULL OR lease_until <= CAST(? AS DATETIME(6)))" +
			" ORDER BY not_before, created_at, id LIMIT ? FOR UPDATE SKIP LOCKED",
		claimUpdate: "UPDATE " + t + " FORCE INDEX (PRIMARY) SET lease_owner = ?, lease_until = ?, claims = claims + 1 WHERE id IN (",
		hold:        "UPDATE " + t + " SET " + set + held,
		release:     "UPDATE " + t + " SET " + set + ", lease_owner = NULL, lease_until = NULL" + held,
		del:         "DELETE FROM " + t + held,
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

// lastError makes s fit the last_error column: valid UTF-8 of at most
// maxLastErrorLen characters.
func lastError(s string) []byte {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) > maxLastErrorLen {
		r := []rune(s)
		s = string(r[:maxLastErrorLen-1]) + "…"
	}
	return []byte(s)
}

// checkEnvelope reports an envelope whose fields do not fit the columns.
func checkEnvelope(e reset.Envelope) error {
	switch {
	case e.ID == "" || len(e.ID) > maxEnvelopeIDLen:
		return fmt.Errorf("envelope ID must have 1 to %d bytes", maxEnvelopeIDLen)
	case len(e.Kind) > maxKindLen:
		return fmt.Errorf("envelope kind longer than %d bytes", maxKindLen)
	}
	return checkContent(e)
}

// checkContent reports sealed content that does not fit the columns.
func checkContent(e reset.Envelope) error {
	switch {
	case len(e.KeyID) > maxKeyIDLen:
		return fmt.Errorf("key ID longer than %d bytes", maxKeyIDLen)
	case len(e.Sealed) == 0:
		return errors.New("the envelope's Sealed content is empty")
	case len(e.Sealed) > maxSealedLen:
		return fmt.Errorf("sealed content longer than %d bytes", maxSealedLen)
	}
	return nil
}

// newNonce returns the random value a write stores in the nonce column.
func newNonce() []byte {
	var n [16]byte
	rand.Read(n[:]) // never fails
	return n[:]
}

// Enqueue implements [reset.OutboxStore] with one INSERT. It does not
// count the outbox: the Service bounds it from [Store.OutboxStats], read
// in the background, so an enqueue costs the same whatever the backlog.
//
// If the connection is lost after the INSERT was sent, the retry
// recognises the row its first attempt inserted (a duplicate key then
// means success).
func (s *Store) Enqueue(ctx context.Context, e reset.Envelope) error {
	if err := checkEnvelope(e); err != nil {
		return fmt.Errorf("mysqlstore: enqueue: %w", err)
	}
	notBefore, err := dbTime(e.NotBefore)
	if err != nil {
		return fmt.Errorf("mysqlstore: enqueue: NotBefore: %w", err)
	}
	created, err := dbTime(e.CreatedAt)
	if err != nil {
		return fmt.Errorf("mysqlstore: enqueue: CreatedAt: %w", err)
	}
	id, nonce := []byte(e.ID), newNonce()
	var lost error // set when an INSERT may have been applied though its answer was lost
	return s.retry(ctx, "enqueue", func() error {
		_, err := s.db.ExecContext(ctx, s.oq.enqueue,
			id, []byte(e.Kind), e.Sealed, []byte(e.KeyID),
			e.Attempts, e.Claims, notBefore, created, e.Dead, lastError(e.LastError), nonce)
		var me *mysql.MySQLError
		switch {
		case err == nil:
			return nil
		case lost != nil && errors.As(err, &me) && me.Number == errDuplicateEntry:
			return nil // the row the lost attempt inserted
		case mayHaveApplied(err):
			lost = err
		}
		return err
	})
}

// Claim implements [reset.OutboxStore] with one transaction:
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
// locked until the COMMIT, so a Save or Delete of one of them waits those
// few round trips.
//
// A claim that fails with a deadlock, a lock wait timeout or a lost
// connection is retried as a whole. When the connection is lost during
// the COMMIT, the first attempt may have been applied: its envelopes then
// stay leased to worker, unseen, until leaseUntil, when any worker claims
// them again. Nothing is lost or sent twice; they are only delayed.
func (s *Store) Claim(ctx context.Context, worker string, now, leaseUntil time.Time, max int) ([]reset.Envelope, error) {
	if worker == "" || len(worker) > maxWorkerLen {
		return nil, fmt.Errorf("mysqlstore: claim: worker name must have 1 to %d bytes", maxWorkerLen)
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
	var out []reset.Envelope
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
				return permanent{fmt.Errorf("leased %d of %d locked envelopes", n, len(envs))}
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
func (s *Store) readEnvelopes(ctx context.Context, db bun.IDB, query string, args ...any) ([]reset.Envelope, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []reset.Envelope
	for rows.Next() {
		var id, kind, keyID, notBefore, created, lastErr []byte
		var e reset.Envelope
		if err := rows.Scan(&id, &kind, &e.Sealed, &keyID, &e.Attempts, &e.Claims,
			&notBefore, &created, &e.Dead, &lastErr); err != nil {
			return nil, err
		}
		e.ID, e.Kind, e.KeyID, e.LastError = string(id), string(kind), string(keyID), string(lastErr)
		if e.NotBefore, err = parseTime(notBefore); err != nil {
			return nil, permanent{fmt.Errorf("reading not_before: %w", err)}
		}
		if e.CreatedAt, err = parseTime(created); err != nil {
			return nil, permanent{fmt.Errorf("reading created_at: %w", err)}
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Save implements [reset.OutboxStore] with one UPDATE conditional on
// worker holding the lease: the holder is the worker that claimed the
// envelope last, until it releases it, even after the lease ran out, as
// long as no other worker has claimed the envelope since. Every Save
// writes a fresh random nonce, so the row always changes and the rows
// affected (1 or 0, with the driver's default clientFoundRows=false) tell
// whether the lease was held; 0 gives [reset.ErrLeaseLost].
//
// If the connection is lost after the UPDATE was sent, the retry may find
// the lease already released by its own first attempt; it then reads the
// nonce (one more round trip, only in that case) to tell its own write
// from a lost lease.
func (s *Store) Save(ctx context.Context, worker string, e reset.Envelope, hold bool) error {
	if err := checkContent(e); err != nil {
		return fmt.Errorf("mysqlstore: save: %w", err)
	}
	if e.ID == "" || len(e.ID) > maxEnvelopeIDLen || worker == "" || len(worker) > maxWorkerLen {
		return fmt.Errorf("mysqlstore: save: %w", reset.ErrLeaseLost) // no such lease can exist
	}
	notBefore, err := dbTime(e.NotBefore)
	if err != nil {
		return fmt.Errorf("mysqlstore: save: NotBefore: %w", err)
	}
	q := s.oq.release
	if hold {
		q = s.oq.hold
	}
	id, nonce := []byte(e.ID), newNonce()
	var unsure bool
	return s.retry(ctx, "save", func() error {
		res, err := s.db.ExecContext(ctx, q,
			e.Sealed, []byte(e.KeyID), e.Attempts, notBefore, e.Dead, lastError(e.LastError), nonce,
			id, []byte(worker))
		if err != nil {
			unsure = unsure || mayHaveApplied(err)
			return err
		}
		return s.changedOne(ctx, res, unsure, id, nonce, reset.ErrLeaseLost)
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
		return permanent{fmt.Errorf("unexpected %d rows affected", n)}
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

// Delete implements [reset.OutboxStore] with one DELETE conditional on
// worker holding the lease (see [Store.Save]), deciding from the rows
// affected. If the connection is lost after the DELETE was sent and the
// retry finds the envelope gone, Delete returns nil: the envelope is
// deleted, whichever attempt did it.
func (s *Store) Delete(ctx context.Context, worker, id string) error {
	if id == "" || len(id) > maxEnvelopeIDLen || worker == "" || len(worker) > maxWorkerLen {
		return fmt.Errorf("mysqlstore: delete: %w", reset.ErrLeaseLost)
	}
	bid := []byte(id)
	var unsure bool
	return s.retry(ctx, "delete", func() error {
		res, err := s.db.ExecContext(ctx, s.oq.del, bid, []byte(worker))
		if err != nil {
			unsure = unsure || mayHaveApplied(err)
			return err
		}
		n, err := res.RowsAffected()
		switch {
		case err != nil:
			return err
		case n == 1:
			return nil
		case !unsure:
			return reset.ErrLeaseLost
		}
		var one int
		err = s.db.QueryRowContext(ctx, s.oq.exists, bid).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return nil
		case err != nil:
			return err
		}
		return reset.ErrLeaseLost
	})
}

// OutboxStats implements [reset.OutboxStore] with one SELECT of three
// subqueries, each served by the index on (dead, created_at): the two
// counts read at most limit index entries each, the oldest pending
// envelope one. Its cost therefore depends on limit, not on the size of
// the outbox.
func (s *Store) OutboxStats(ctx context.Context, limit int) (reset.OutboxStats, error) {
	var st reset.OutboxStats
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
				return permanent{fmt.Errorf("reading created_at: %w", err)}
			}
			st.Oldest = t
		}
		return nil
	})
	return st, err
}

// Dead implements [reset.OutboxStore] with one SELECT.
func (s *Store) Dead(ctx context.Context, limit int) ([]reset.Envelope, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []reset.Envelope
	err := s.retry(ctx, "dead", func() (err error) {
		out, err = s.readEnvelopes(ctx, s.db, s.oq.dead, limit)
		return err
	})
	return out, err
}

// Revive implements [reset.OutboxStore] with one UPDATE conditional on the
// envelope being dead; like [Store.Save] it writes a nonce so that a retry
// after a lost answer recognises its own write.
func (s *Store) Revive(ctx context.Context, id string, now time.Time) error {
	if id == "" || len(id) > maxEnvelopeIDLen {
		return fmt.Errorf("mysqlstore: revive: %w", reset.ErrNotFound)
	}
	at, err := dbTime(now)
	if err != nil {
		return fmt.Errorf("mysqlstore: revive: %w", err)
	}
	bid, nonce := []byte(id), newNonce()
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
	return s.prune(ctx, "prune dead", s.oq.pruneDead, at, limit)
}
