package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/passreset/passreset/reset/outbox"
)

// Count runs a write of the store's (a prune's DELETE of at most some
// rows), retried, and reports how many rows it changed. After a lost
// answer the rows the first attempt changed are not counted.
func (o *Outbox) Count(ctx context.Context, op, query string, args ...any) (int, error) {
	var n int
	err := o.Retry(ctx, op, func() error {
		res, err := o.DB.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		changed, err := res.RowsAffected()
		n = int(changed)
		return err
	})
	return n, err
}

// Secret returns the store's secret that insert (which adds a row with a
// new 32-byte secret unless there is one) and then sel read: the first
// call anywhere makes it, every later or concurrent one reads the one
// that is there. Both statements are safe to repeat, so they are retried
// as a pair.
func (o *Outbox) Secret(ctx context.Context, insert, sel string) ([]byte, error) {
	var secret []byte
	fresh := Secret()
	err := o.Retry(ctx, "cooldown secret", func() error {
		if _, err := o.DB.ExecContext(ctx, insert, fresh); err != nil {
			return err
		}
		return o.DB.QueryRowContext(ctx, sel).Scan(&secret)
	})
	if err == nil && len(secret) != 32 {
		err = o.Retry(ctx, "cooldown secret", func() error { return fmt.Errorf("%d bytes, want 32", len(secret)) })
	}
	return secret, err
}

// Enqueue implements [outbox.Store.Enqueue] with one INSERT of the whole
// row, unleased. If the answer is lost after the INSERT may have reached
// the server, the retry recognises the row its first attempt inserted: a
// duplicate key then means success.
func (o *Outbox) Enqueue(ctx context.Context, e outbox.Envelope) error {
	notBefore, err1 := o.Time(e.NotBefore)
	created, err2 := o.Time(e.CreatedAt)
	if err := errors.Join(CheckEnvelope(e), err1, err2); err != nil {
		return o.Retry(ctx, "enqueue", func() error { return err })
	}
	args := o.RowArgs(e, notBefore, created, nil, nil, Nonce())
	var unsure bool
	return o.Retry(ctx, "enqueue", func() error {
		_, err := o.DB.ExecContext(ctx, o.Insert+o.Row, args...)
		switch {
		case err == nil:
			return nil
		case unsure && o.Duplicate(err):
			return nil // the row the lost attempt inserted
		}
		unsure = unsure || o.MayHaveApplied(err)
		return err
	})
}

// Renew is the skeleton of [outbox.Store.Renew]: the ids no lease can
// exist for are lost at once; renew, retried, extends the leases worker
// holds among the others until until and returns the ids it extended;
// the rest are lost.
func (o *Outbox) Renew(ctx context.Context, worker string, ids []string, leaseUntil time.Time,
	renew func(ctx context.Context, until string, ids []string) (held []string, err error)) ([]string, error) {
	until, err := o.Time(leaseUntil)
	if err != nil {
		return nil, o.Retry(ctx, "renew", func() error { return err })
	}
	var valid, lost []string
	for _, id := range ids {
		if Held(worker, id) {
			valid = append(valid, id)
		} else {
			lost = append(lost, id) // no such lease can exist
		}
	}
	if len(valid) == 0 {
		return lost, nil
	}
	var held []string
	if err := o.Retry(ctx, "renew", func() (err error) { held, err = renew(ctx, until, valid); return err }); err != nil {
		return nil, err
	}
	still := make(map[string]bool, len(held))
	for _, id := range held {
		still[id] = true
	}
	for _, id := range valid {
		if !still[id] {
			lost = append(lost, id)
		}
	}
	return lost, nil
}

// IDs runs query and returns the first column of its rows as strings.
func (o *Outbox) IDs(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := o.DB.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id []byte
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, string(id))
	}
	return out, rows.Err()
}

// Save is the skeleton of [outbox.Store.Save]: it refuses content that
// does not fit and reports [outbox.ErrLeaseLost] for a worker or ID no
// lease can exist for, then runs write, retried, with e's NotBefore as
// the store's time value and a fresh nonce for the row.
func (o *Outbox) Save(ctx context.Context, worker string, e outbox.Envelope, write func(notBefore string, nonce []byte) error) error {
	if err := CheckContent(e); err != nil {
		return o.Retry(ctx, "save", func() error { return err })
	}
	if !Held(worker, e.ID) {
		return o.Retry(ctx, "save", func() error { return outbox.ErrLeaseLost })
	}
	notBefore, err := o.Time(e.NotBefore)
	if err != nil {
		return o.Retry(ctx, "save", func() error { return fmt.Errorf("NotBefore: %w", err) })
	}
	nonce := Nonce()
	return o.Retry(ctx, "save", func() error { return write(notBefore, nonce) })
}
