package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/passreset/passreset/reset/outbox"
)

// Outbox is what the shared operations need of a store: its database,
// its retry loop, its reading of errors and its dialect's statements on
// the outbox table.
type Outbox struct {
	DB bun.IDB
	// Retry runs f as the store retries statements, and wraps the final
	// error with the store's prefix and op.
	Retry func(ctx context.Context, op string, f func() error) error
	// MayHaveApplied reports whether a write that failed with err may
	// still have taken effect (the answer was lost, not the request).
	MayHaveApplied func(error) bool
	// Arg turns an ID or worker name into the value the store's columns
	// compare with.
	Arg func(string) any
	// Time turns a time into the value the store's statements take.
	Time func(time.Time) (string, error)

	// DeleteHeld deletes the rows worker holds among a list of IDs: it
	// takes the worker, and ends with "id IN " for the list.
	DeleteHeld string
	// Insert starts a multi-row INSERT of whole rows ("INSERT INTO t
	// (...) VALUES "); Row is one row's placeholders, whose values Row
	// Args gives in the same order.
	Insert, Row string
	// RowArgs returns the values of Row for e, leased to owner until
	// until (both nil when unleased), written by the write nonce.
	RowArgs func(e outbox.Envelope, notBefore, createdAt string, owner, until any, nonce []byte) []any
	// Written finds the row with an ID whose nonce is the one given:
	// "SELECT 1 FROM t WHERE id = ? AND nonce = ?". Exists counts the
	// rows among a list of IDs: it ends with "id IN ".
	Written, Exists string
	// Duplicate reports whether an error is the server's duplicate key.
	Duplicate func(error) bool
}

// insertChunk is how many bytes of sealed content one INSERT carries at
// most (unless one row alone is larger), so that a statement, formatted
// as text with its bytes in hexadecimal, stays well within the servers'
// packet limits.
const insertChunk = 1 << 20

// errNotHeld rolls back a Replace whose worker does not hold every
// envelope it removes.
var errNotHeld = errors.New("not held")

// Replace implements [outbox.Store.Replace] in one transaction:
//
//	DELETE FROM <outbox> WHERE lease_owner = worker AND lease_until IS NOT NULL AND id IN (remove...)
//	-- rolled back unless it deleted every one of remove
//	INSERT INTO <outbox> (...) VALUES (add...)  -- leased to worker until holdUntil if it is not zero
//	COMMIT
//
// The DELETE is the lease check: it removes only the rows worker holds,
// and the transaction goes on only if that is all of remove. A conflict
// (deadlock, lock wait, Galera certification) rolls it all back and it is
// retried whole.
//
// After a lost answer (the COMMIT may have been applied) the retry first
// asks whether its first attempt was: every added row carries this call's
// random nonce, so when add is not empty, finding add[0] with that nonce
// means it was; when add is empty, finding none of remove means they are
// deleted, whichever attempt did it. A retry that finds neither runs the
// transaction again; if in the meantime another worker claimed and saved
// the unleased rows the first attempt added, the retry reports
// [outbox.ErrLeaseLost] although they were added (they are queued, and
// that worker has them).
func (o *Outbox) Replace(ctx context.Context, worker string, remove []string, add []outbox.Envelope, holdUntil time.Time) error {
	if len(remove) > 0 && !Held(worker, remove...) {
		return o.fail(ctx, outbox.ErrLeaseLost)
	}
	var owner, until any
	if !holdUntil.IsZero() {
		if err := CheckID("worker name", worker, MaxWorkerLen); err != nil {
			return o.fail(ctx, err)
		}
		u, err := o.Time(holdUntil)
		if err != nil {
			return o.fail(ctx, fmt.Errorf("holdUntil: %w", err))
		}
		owner, until = o.Arg(worker), u
	}
	nonce := Nonce()
	var inserts []string
	var insertArgs [][]any
	var q strings.Builder
	var args []any
	size := 0
	for _, e := range add {
		notBefore, err1 := o.Time(e.NotBefore)
		created, err2 := o.Time(e.CreatedAt)
		if err := errors.Join(CheckEnvelope(e), err1, err2); err != nil {
			return o.fail(ctx, fmt.Errorf("envelope %q: %w", e.ID, err))
		}
		if size > 0 && size+len(e.Sealed) > insertChunk {
			inserts, insertArgs = append(inserts, q.String()), append(insertArgs, args)
			q.Reset()
			args, size = nil, 0
		}
		if size == 0 {
			q.WriteString(o.Insert)
		} else {
			q.WriteString(", ")
		}
		q.WriteString(o.Row)
		args = append(args, o.RowArgs(e, notBefore, created, owner, until, nonce)...)
		size += len(e.Sealed) + 1
	}
	if size > 0 {
		inserts, insertArgs = append(inserts, q.String()), append(insertArgs, args)
	}
	remove = Unique(remove)
	del, delArgs := o.inList(o.DeleteHeld, []any{o.Arg(worker)}, remove)

	var unsure bool
	return o.Retry(ctx, "replace", func() error {
		if unsure {
			if done, err := o.applied(ctx, remove, add, nonce); err != nil || done {
				return err
			}
		}
		err := o.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if len(remove) > 0 {
				res, err := tx.ExecContext(ctx, del, delArgs...)
				if err != nil {
					return err
				}
				if n, err := res.RowsAffected(); err != nil {
					return err
				} else if n != int64(len(remove)) {
					return errNotHeld
				}
			}
			for i, q := range inserts {
				if _, err := tx.ExecContext(ctx, q, insertArgs[i]...); err != nil {
					return err
				}
			}
			return nil
		})
		switch {
		case errors.Is(err, errNotHeld):
			return outbox.ErrLeaseLost
		case err != nil:
			unsure = unsure || o.MayHaveApplied(err)
		}
		return err
	})
}

// fail reports err as the store reports a Replace that failed.
func (o *Outbox) fail(ctx context.Context, err error) error {
	return o.Retry(ctx, "replace", func() error { return err })
}

// applied reports whether an earlier attempt of a Replace that wrote
// nonce was applied.
func (o *Outbox) applied(ctx context.Context, remove []string, add []outbox.Envelope, nonce []byte) (bool, error) {
	if len(add) == 0 && len(remove) == 0 {
		return true, nil
	}
	if len(add) > 0 {
		var one int
		err := o.DB.QueryRowContext(ctx, o.Written, o.Arg(add[0].ID), nonce).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		return err == nil, err
	}
	q, args := o.inList(o.Exists, nil, remove)
	var n int
	if err := o.DB.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return false, err
	}
	return n == 0, nil
}

// inList appends "(?, ?, ...)" for ids to q, and their values to args.
func (o *Outbox) inList(q string, args []any, ids []string) (string, []any) {
	for _, id := range ids {
		args = append(args, o.Arg(id))
	}
	return q + Placeholders(len(ids)), args
}
