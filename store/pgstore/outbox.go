package pgstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/passreset/passreset/internal/sqlretry"
	"github.com/passreset/passreset/internal/sqlstore"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
)

// stateUniqueViolation is unique_violation.
const stateUniqueViolation = "23505"

// outboxQueries holds the outbox's statements with the table name filled
// in. Like the rest of the store, bun formats every argument into the
// text, so each statement is one round trip.
type outboxQueries struct {
	claim, hold, release, stats, dead, revive, pruneDead string
}

// envelopeColumns is what every read of whole envelopes selects, in the
// order readEnvelopes scans.
const envelopeColumns = "id, kind, sealed, key_id, attempts, claims, not_before, created_at, dead, last_error"

func newOutboxQueries(n names) outboxQueries {
	t := n.outbox
	set := "sealed = ?, key_id = ?, attempts = ?, not_before = " + ts + ", dead = ?, last_error = ?, nonce = ?"
	// Held: the worker claimed it last and has not released it; or, after
	// a lost answer, this call's own earlier attempt wrote the row (its
	// nonce) and no claim has happened since (Claim clears the nonce).
	held := " WHERE id = ? AND ((lease_owner = ? AND lease_until IS NOT NULL) OR nonce = ?)"
	return outboxQueries{
		// One statement: the subquery locks up to max due envelopes,
		// oldest first, passing over the rows that other claims hold
		// locked this instant, and the UPDATE leases exactly those.
		claim: "UPDATE " + t + " SET lease_owner = ?, lease_until = " + ts + ", claims = claims + 1, nonce = NULL" +
			" WHERE id IN (SELECT id FROM " + t +
			" WHERE NOT dead AND not_before <= " + ts + " AND (lease_until IS NULL OR lease_until <= " + ts + ")" +
			" ORDER BY not_before, created_at, id LIMIT ? FOR UPDATE SKIP LOCKED)" +
			" RETURNING " + envelopeColumns,
		hold:    "UPDATE " + t + " SET " + set + held,
		release: "UPDATE " + t + " SET " + set + ", lease_owner = NULL, lease_until = NULL" + held,
		// Each count reads at most limit entries of a partial index;
		// min(created_at) reads the first entry of one.
		stats: "SELECT (SELECT count(*) FROM (SELECT 1 FROM " + t + " WHERE NOT dead LIMIT ?) p)," +
			" (SELECT count(*) FROM (SELECT 1 FROM " + t + " WHERE dead LIMIT ?) d)," +
			" (SELECT min(created_at) FROM " + t + " WHERE NOT dead)",
		dead: "SELECT " + envelopeColumns + " FROM " + t + " WHERE dead ORDER BY created_at, id LIMIT ?",
		revive: "UPDATE " + t + " SET dead = false, attempts = 0, claims = 0, not_before = " + ts + "," +
			" lease_owner = NULL, lease_until = NULL, nonce = ? WHERE id = ? AND (dead OR nonce = ?)",
		pruneDead: "DELETE FROM " + t + " WHERE id IN (SELECT id FROM " + t +
			" WHERE dead AND created_at < " + ts + " ORDER BY created_at LIMIT ? FOR UPDATE SKIP LOCKED)" +
			" AND dead AND created_at < " + ts,
	}
}

// sealedArg is the value of the sealed column: never NULL.
func sealedArg(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Enqueue implements [outbox.Store] with one INSERT: see
// [sqlstore.Outbox.Enqueue]. It does not count the outbox, so an enqueue
// costs the same whatever the backlog.
func (s *Store) Enqueue(ctx context.Context, e outbox.Envelope) error {
	return s.ob.Enqueue(ctx, e)
}

// Claim implements [outbox.Store] with one statement:
//
//	UPDATE <prefix>outbox SET lease_owner = worker, lease_until = leaseUntil, claims = claims + 1, nonce = NULL
//	WHERE id IN (SELECT id FROM <prefix>outbox
//	             WHERE NOT dead AND not_before <= now AND (lease_until IS NULL OR lease_until <= now)
//	             ORDER BY not_before, created_at, id LIMIT max FOR UPDATE SKIP LOCKED)
//	RETURNING <envelope>
//
// SKIP LOCKED makes concurrent claims pass over each other's rows instead
// of waiting for them, and a row that another claim leased between this
// statement's snapshot and its lock is checked again as it is now, so
// workers in any number of processes take disjoint envelopes. One round
// trip.
//
// A claim that fails with a serialization failure, a deadlock or a lost
// connection is retried. When the answer of a claim that was applied is
// lost, its envelopes stay leased to worker, unseen, until leaseUntil,
// when any worker claims them again: nothing is lost or sent twice; they
// are only delayed.
func (s *Store) Claim(ctx context.Context, worker string, now, leaseUntil time.Time, max int) ([]outbox.Envelope, error) {
	if err := sqlstore.CheckID("worker name", worker, sqlstore.MaxWorkerLen); err != nil {
		return nil, fmt.Errorf("pgstore: claim: %w", err)
	}
	if max <= 0 {
		return nil, nil
	}
	nowAt, err := dbTime(now)
	if err != nil {
		return nil, fmt.Errorf("pgstore: claim: %w", err)
	}
	untilAt, err := dbTime(leaseUntil)
	if err != nil {
		return nil, fmt.Errorf("pgstore: claim: %w", err)
	}
	var out []outbox.Envelope
	err = s.retry(ctx, "claim", func() (err error) {
		out, err = s.readEnvelopes(ctx, s.oq.claim, worker, untilAt, nowAt, nowAt, max)
		return err
	})
	if err != nil {
		return nil, err
	}
	// RETURNING has no order.
	slices.SortFunc(out, func(a, b outbox.Envelope) int {
		return cmp.Or(a.NotBefore.Compare(b.NotBefore), a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// readEnvelopes runs query and reads whole envelopes.
func (s *Store) readEnvelopes(ctx context.Context, query string, args ...any) ([]outbox.Envelope, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []outbox.Envelope
	for rows.Next() {
		var e outbox.Envelope
		if err := rows.Scan(&e.ID, &e.Kind, &e.Sealed, &e.KeyID, &e.Attempts, &e.Claims,
			&e.NotBefore, &e.CreatedAt, &e.Dead, &e.LastError); err != nil {
			return nil, err
		}
		e.NotBefore, e.CreatedAt = e.NotBefore.UTC(), e.CreatedAt.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// Save implements [outbox.Store] with one UPDATE conditional on
// worker holding the lease: the holder is the worker that claimed the
// envelope last, until it releases it, even after the lease ran out, as
// long as no other worker has claimed the envelope since. PostgreSQL
// counts every row an UPDATE matched, so the rows affected (1 or 0) tell
// whether the lease was held; 0 gives [outbox.ErrLeaseLost].
//
// Every Save writes a fresh random nonce and matches it too, so that the
// retry after a lost answer, which may find the lease already released by
// its own first attempt, recognises its own write in the same single
// statement; a claim since then clears the nonce, and the retry then
// reports the lease lost.
func (s *Store) Save(ctx context.Context, worker string, e outbox.Envelope, hold bool) error {
	q := s.oq.release
	if hold {
		q = s.oq.hold
	}
	return s.ob.Save(ctx, worker, e, func(notBefore string, nonce []byte) error {
		res, err := s.db.ExecContext(ctx, q,
			sealedArg(e.Sealed), e.KeyID, e.Attempts, notBefore, e.Dead, sqlstore.LastError(e.LastError), nonce,
			e.ID, worker, nonce)
		if err != nil {
			return err
		}
		return one(res, outbox.ErrLeaseLost)
	})
}

// one decides the outcome of a write of one row by its rows affected.
func one(res sql.Result, none error) error {
	n, err := res.RowsAffected()
	switch {
	case err != nil:
		return err
	case n == 1:
		return nil
	case n == 0:
		return none
	}
	return sqlretry.Permanent{Err: fmt.Errorf("unexpected %d rows affected", n)}
}

// Replace implements [outbox.Store] in one transaction: see
// [sqlstore.Outbox.Replace] for the statements and for how a retry after
// a lost answer recognises its own write.
func (s *Store) Replace(ctx context.Context, worker string, remove []string, add []outbox.Envelope, holdUntil time.Time) error {
	return s.ob.Replace(ctx, worker, remove, add, holdUntil)
}

// Stats implements [outbox.Store] with one SELECT of three
// subqueries: the pending and the dead envelopes counted up to limit each
// (SELECT count(*) FROM (SELECT 1 ... LIMIT limit)), which read at most
// limit entries of a partial index, and the oldest pending envelope's
// created_at, the first entry of another.
func (s *Store) Stats(ctx context.Context, limit int) (outbox.Stats, error) {
	var st outbox.Stats
	if limit <= 0 {
		return st, nil
	}
	err := s.retry(ctx, "outbox stats", func() error {
		var oldest sql.NullTime
		if err := s.db.QueryRowContext(ctx, s.oq.stats, limit, limit).Scan(&st.Pending, &st.Dead, &oldest); err != nil {
			return err
		}
		st.Oldest = time.Time{}
		if oldest.Valid {
			st.Oldest = oldest.Time.UTC()
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
		out, err = s.readEnvelopes(ctx, s.oq.dead, limit)
		return err
	})
	return out, err
}

// Revive implements [outbox.Store] with one UPDATE conditional on the
// envelope being dead; like [Store.Save] it writes and matches a nonce, so
// that a retry after a lost answer recognises its own write.
func (s *Store) Revive(ctx context.Context, id string, now time.Time) error {
	if sqlstore.CheckID("envelope ID", id, sqlstore.MaxEnvelopeIDLen) != nil {
		return fmt.Errorf("pgstore: revive: %w", reset.ErrNotFound)
	}
	at, err := dbTime(now)
	if err != nil {
		return fmt.Errorf("pgstore: revive: %w", err)
	}
	nonce := sqlstore.Nonce()
	return s.retry(ctx, "revive", func() error {
		res, err := s.db.ExecContext(ctx, s.oq.revive, at, nonce, id, nonce)
		if err != nil {
			return err
		}
		return one(res, reset.ErrNotFound)
	})
}

// PruneDead implements [outbox.Store] with one DELETE of at most limit
// dead envelopes created before before, chosen with FOR UPDATE SKIP LOCKED.
func (s *Store) PruneDead(ctx context.Context, before time.Time, limit int) (int, error) {
	at, err := dbTime(before)
	if err != nil {
		return 0, fmt.Errorf("pgstore: prune dead: %w", err)
	}
	if limit <= 0 {
		return 0, nil
	}
	return s.ob.Count(ctx, "prune dead", s.oq.pruneDead, at, limit, at)
}

// newOutbox returns the shared outbox operations on the store's table.
func (s *Store) newOutbox(n names) sqlstore.Outbox {
	t := n.outbox
	return sqlstore.Outbox{
		DB:             s.db,
		Retry:          s.retry,
		MayHaveApplied: mayHaveApplied,
		Arg:            func(id string) any { return id },
		Time:           dbTime,
		DeleteHeld:     "DELETE FROM " + t + " WHERE lease_owner = ? AND lease_until IS NOT NULL AND id IN ",
		Insert: "INSERT INTO " + t + " (id, kind, sealed, key_id, attempts, claims, not_before, created_at," +
			" dead, last_error, lease_owner, lease_until, nonce) VALUES ",
		Row: "(?, ?, ?, ?, ?, ?, " + ts + ", " + ts + ", ?, ?, ?, " + ts + ", ?)",
		RowArgs: func(e outbox.Envelope, notBefore, createdAt string, owner, until any, nonce []byte) []any {
			return []any{e.ID, e.Kind, e.Sealed, e.KeyID, e.Attempts, e.Claims,
				notBefore, createdAt, e.Dead, sqlstore.LastError(e.LastError), owner, until, nonce}
		},
		Written:   "SELECT 1 FROM " + t + " WHERE id = ? AND nonce = ?",
		Exists:    "SELECT count(*) FROM " + t + " WHERE id IN ",
		Duplicate: func(err error) bool { return sqlState(err) == stateUniqueViolation },
	}
}
