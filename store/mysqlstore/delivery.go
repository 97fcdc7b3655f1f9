package mysqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/passreset/passreset/internal/sqlretry"
)

// maxBudgetKeyLen is the size of the budget_key column.
const maxBudgetKeyLen = 255

// inList appends "(?, ?, ...)" for ids to q and their values to args.
func inList(q *strings.Builder, args []any, ids []string) []any {
	q.WriteString("(")
	for i, id := range ids {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("?")
		args = append(args, []byte(id))
	}
	q.WriteString(")")
	return args
}

// Renew implements [outbox.Store] with two statements:
//
//	UPDATE <prefix>outbox SET lease_until = leaseUntil
//	WHERE lease_owner = worker AND lease_until IS NOT NULL AND id IN (...);
//	SELECT id FROM <prefix>outbox WHERE lease_owner = worker AND lease_until IS NOT NULL AND id IN (...)
//
// The ids the SELECT does not return are lost. Both are safe to repeat, so
// a Renew that fails with a deadlock (a Galera certification conflict) or
// a lost connection is retried as a whole.
func (s *Store) Renew(ctx context.Context, worker string, ids []string, leaseUntil time.Time) ([]string, error) {
	t := "`" + s.prefix + "outbox`"
	where := " WHERE lease_owner = ? AND lease_until IS NOT NULL AND id IN "
	return s.ob.Renew(ctx, worker, ids, leaseUntil, func(ctx context.Context, until string, ids []string) ([]string, error) {
		var upd, sel strings.Builder
		upd.WriteString("UPDATE " + t + " FORCE INDEX (PRIMARY) SET lease_until = ?" + where)
		updArgs := inList(&upd, []any{until, []byte(worker)}, ids)
		if _, err := s.db.ExecContext(ctx, upd.String(), updArgs...); err != nil {
			return nil, err
		}
		sel.WriteString("SELECT id FROM " + t + where)
		selArgs := inList(&sel, []any{[]byte(worker)}, ids)
		return s.ob.IDs(ctx, sel.String(), selArgs...)
	})
}

// Reserve implements [outbox.Store] with one transaction on the
// budget's row:
//
//	INSERT INTO <prefix>budget (budget_key, tat) VALUES (key, now + interval)
//	ON DUPLICATE KEY UPDATE tat = GREATEST(tat, now) + INTERVAL interval MICROSECOND;
//	SELECT tat FROM <prefix>budget WHERE budget_key = key;
//	COMMIT
//
// The upsert locks the row until the COMMIT, so concurrent reservations
// from any number of instances queue on it and each reads its own tat.
// A reservation that fails with a deadlock (a Galera certification
// conflict) is retried as a whole; one whose COMMIT answer is lost may be
// applied twice, which wastes one slot of the budget and sends nothing.
func (s *Store) Reserve(ctx context.Context, key string, now time.Time, interval time.Duration, burst int) (time.Time, error) {
	if key == "" || len(key) > maxBudgetKeyLen {
		return time.Time{}, fmt.Errorf("mysqlstore: reserve: budget key must have 1 to %d bytes", maxBudgetKeyLen)
	}
	now = now.UTC().Truncate(time.Microsecond)
	interval = interval.Truncate(time.Microsecond)
	nowAt, err := dbTime(now)
	if err != nil {
		return time.Time{}, fmt.Errorf("mysqlstore: reserve: %w", err)
	}
	first, err := dbTime(now.Add(interval))
	if err != nil {
		return time.Time{}, fmt.Errorf("mysqlstore: reserve: %w", err)
	}
	t := "`" + s.prefix + "budget`"
	upsert := "INSERT INTO " + t + " (budget_key, tat) VALUES (?, ?)" +
		" ON DUPLICATE KEY UPDATE tat = GREATEST(tat, CAST(? AS DATETIME(6))) + INTERVAL ? MICROSECOND"
	read := "SELECT " + fmt.Sprintf(sqlTime, "tat") + " FROM " + t + " WHERE budget_key = ?"
	var tat time.Time
	err = s.retry(ctx, "reserve", func() error {
		return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, upsert, []byte(key), first, nowAt, interval.Microseconds()); err != nil {
				return err
			}
			var b []byte
			if err := tx.QueryRowContext(ctx, read, []byte(key)).Scan(&b); err != nil {
				return err
			}
			if tat, err = parseTime(b); err != nil {
				return sqlretry.Permanent{Err: fmt.Errorf("reading tat: %w", err)}
			}
			return nil
		})
	})
	if err != nil {
		return time.Time{}, err
	}
	at := tat.Add(-interval).Add(-time.Duration(max(burst-1, 0)) * interval)
	if at.Before(now) {
		at = now
	}
	return at, nil
}

// Pause implements [outbox.Store] with one upsert that only ever moves
// the budget's tat later, so repeating it changes nothing.
func (s *Store) Pause(ctx context.Context, key string, until time.Time) error {
	if key == "" || len(key) > maxBudgetKeyLen {
		return fmt.Errorf("mysqlstore: pause: budget key must have 1 to %d bytes", maxBudgetKeyLen)
	}
	at, err := dbTime(until)
	if err != nil {
		return fmt.Errorf("mysqlstore: pause: %w", err)
	}
	q := "INSERT INTO `" + s.prefix + "budget` (budget_key, tat) VALUES (?, ?)" +
		" ON DUPLICATE KEY UPDATE tat = GREATEST(tat, CAST(? AS DATETIME(6)))"
	return s.retry(ctx, "pause", func() error {
		_, err := s.db.ExecContext(ctx, q, []byte(key), at, at)
		return err
	})
}

// Budget implements [outbox.BudgetReader] with one SELECT of the budget's
// tat; it reserves nothing and returns the zero time for a key never
// used.
func (s *Store) Budget(ctx context.Context, key string) (time.Time, error) {
	if key == "" || len(key) > maxBudgetKeyLen {
		return time.Time{}, fmt.Errorf("mysqlstore: budget: budget key must have 1 to %d bytes", maxBudgetKeyLen)
	}
	q := "SELECT " + fmt.Sprintf(sqlTime, "tat") + " FROM `" + s.prefix + "budget` WHERE budget_key = ?"
	var tat time.Time
	err := s.retry(ctx, "budget", func() error {
		var b []byte
		err := s.db.QueryRowContext(ctx, q, []byte(key)).Scan(&b)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			tat = time.Time{}
			return nil
		case err != nil:
			return err
		}
		if tat, err = parseTime(b); err != nil {
			return sqlretry.Permanent{Err: fmt.Errorf("reading tat: %w", err)}
		}
		return nil
	})
	return tat, err
}
