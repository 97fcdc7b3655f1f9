package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/passreset/passreset/internal/quota"
	"github.com/passreset/passreset/reset"
)

// QuotaQueries are a store's statements on its quotas table, one row per
// budget key holding the key's uses (see package quota) and when the last
// of them stops counting:
//
//	Select: SELECT uses FROM t WHERE quota_key = ?
//	Insert: insert (quota_key, uses, ends_at) unless the key has a row;
//	        1 row affected when it inserted, 0 when not
//	Update: UPDATE t SET uses = ?, ends_at = ? WHERE quota_key = ? AND uses = ?
type QuotaQueries struct {
	Select, Insert, Update string
}

// maxSpendRounds bounds Spend's compare-and-swap rounds. A round fails
// only when another call changed the row in between, by recording a use,
// so the rounds of one call are few; the bound turns a store that never
// settles into an error.
const maxSpendRounds = 1000

// Spend implements [reset.Quota.Spend] with compare-and-swap rounds of
// single autocommit statements, so that it needs no transaction and no
// lock held across round trips: it reads the key's uses, decides with
// [quota.Spend], and writes the new uses with an INSERT (no row yet) or an
// UPDATE conditional on the uses it read; when that changes no row,
// another call wrote in between and the round starts again. Of
// concurrent calls, at most limit record a use within one window. After
// a lost answer the retried round finds its own use (the owner is fixed
// for the whole call, random when owner is empty) and reports true.
func (o *Outbox) Spend(ctx context.Context, q QuotaQueries, key []byte, owner string, now time.Time, window time.Duration, limit int) (bool, error) {
	if err := quota.CheckLimit(limit); err != nil {
		return false, o.Retry(ctx, "spend", func() error { return err })
	}
	if window <= 0 {
		return true, nil // no use counts
	}
	who := quota.OwnerOf(owner)
	var ok bool
	err := o.Retry(ctx, "spend", func() error {
		for range maxSpendRounds {
			var stored []byte
			err := o.DB.QueryRowContext(ctx, q.Select, key).Scan(&stored)
			found := err == nil
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			uses, err := quota.Decode(stored)
			if err != nil {
				return err
			}
			next, allowed := quota.Spend(uses, who, now, window, limit)
			if next == nil {
				ok = allowed
				return nil
			}
			ends, err := o.Time(quota.Last(next).Add(window))
			if err != nil {
				return err
			}
			enc := quota.Encode(next)
			var res sql.Result
			if found {
				res, err = o.DB.ExecContext(ctx, q.Update, enc, ends, key, stored)
			} else {
				res, err = o.DB.ExecContext(ctx, q.Insert, key, enc, ends)
			}
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			if n == 1 {
				ok = true
				return nil
			}
		}
		return fmt.Errorf("no settled budget after %d rounds", maxSpendRounds)
	})
	return ok, err
}

// StampArg is the value of a record's stamp column: NULL for the zero
// Hash (no stamp), the hash's bytes otherwise.
func StampArg(h reset.Hash) []byte {
	if h == (reset.Hash{}) {
		return nil
	}
	return h[:]
}

// ReadStamp reads a stamp column's value into h: NULL is the zero Hash.
func ReadStamp(h *reset.Hash, b []byte) error {
	switch len(b) {
	case 0:
		*h = reset.Hash{}
	case len(h):
		copy(h[:], b)
	default:
		return fmt.Errorf("reading stamp: %d bytes, want 32", len(b))
	}
	return nil
}
