package pgstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/passreset/passreset/internal/sqlstore"
)

// maxBudgetKeyLen bounds a budget key.
const maxBudgetKeyLen = 255

// Renew implements [outbox.Store] with one statement:
//
//	UPDATE <prefix>outbox SET lease_until = leaseUntil
//	WHERE lease_owner = worker AND lease_until IS NOT NULL AND id IN (...)
//	RETURNING id
//
// The ids it does not return are lost. Repeating it changes nothing more,
// so a Renew whose answer was lost is retried as a whole.
func (s *Store) Renew(ctx context.Context, worker string, ids []string, leaseUntil time.Time) ([]string, error) {
	q := "UPDATE " + s.names().outbox + " SET lease_until = " + ts +
		" WHERE lease_owner = ? AND lease_until IS NOT NULL AND id IN (?) RETURNING id"
	return s.ob.Renew(ctx, worker, ids, leaseUntil, func(ctx context.Context, until string, ids []string) ([]string, error) {
		return s.ob.IDs(ctx, q, until, worker, bun.List(ids))
	})
}

// Reserve implements [outbox.Store] with one statement on the budget's
// row:
//
//	INSERT INTO <prefix>budget AS b (budget_key, tat) VALUES (key, now + interval)
//	ON CONFLICT (budget_key) DO UPDATE SET tat = greatest(b.tat, now) + interval
//	RETURNING tat
//
// Concurrent reservations queue on the row's lock and each reads its own
// tat. A reservation whose answer is lost is retried and may be applied
// twice: that wastes one slot of the budget and sends nothing.
func (s *Store) Reserve(ctx context.Context, key string, now time.Time, interval time.Duration, burst int) (time.Time, error) {
	if err := sqlstore.CheckID("budget key", key, maxBudgetKeyLen); err != nil {
		return time.Time{}, fmt.Errorf("pgstore: reserve: %w", err)
	}
	now = now.UTC().Truncate(time.Microsecond)
	interval = interval.Truncate(time.Microsecond)
	nowAt, err := dbTime(now)
	if err != nil {
		return time.Time{}, fmt.Errorf("pgstore: reserve: %w", err)
	}
	first, err := dbTime(now.Add(interval))
	if err != nil {
		return time.Time{}, fmt.Errorf("pgstore: reserve: %w", err)
	}
	q := "INSERT INTO " + s.names().budget + " AS b (budget_key, tat) VALUES (?, " + ts + ")" +
		" ON CONFLICT (budget_key) DO UPDATE SET tat = greatest(b.tat, " + ts + ") + CAST(? AS bigint) * interval '1 microsecond'" +
		" RETURNING tat"
	var tat time.Time
	err = s.retry(ctx, "reserve", func() error {
		return s.db.QueryRowContext(ctx, q, key, first, nowAt, interval.Microseconds()).Scan(&tat)
	})
	if err != nil {
		return time.Time{}, err
	}
	at := tat.UTC().Add(-interval).Add(-time.Duration(max(burst-1, 0)) * interval)
	if at.Before(now) {
		at = now
	}
	return at, nil
}

// Pause implements [outbox.Store] with one upsert that only ever moves
// the budget's tat later, so repeating it changes nothing.
func (s *Store) Pause(ctx context.Context, key string, until time.Time) error {
	if err := sqlstore.CheckID("budget key", key, maxBudgetKeyLen); err != nil {
		return fmt.Errorf("pgstore: pause: %w", err)
	}
	at, err := dbTime(until)
	if err != nil {
		return fmt.Errorf("pgstore: pause: %w", err)
	}
	q := "INSERT INTO " + s.names().budget + " AS b (budget_key, tat) VALUES (?, " + ts + ")" +
		" ON CONFLICT (budget_key) DO UPDATE SET tat = greatest(b.tat, EXCLUDED.tat)"
	return s.retry(ctx, "pause", func() error {
		_, err := s.db.ExecContext(ctx, q, key, at)
		return err
	})
}

// Budget implements [outbox.BudgetReader] with one SELECT of the budget's
// tat; it reserves nothing and returns the zero time for a key never
// used.
func (s *Store) Budget(ctx context.Context, key string) (time.Time, error) {
	if err := sqlstore.CheckID("budget key", key, maxBudgetKeyLen); err != nil {
		return time.Time{}, fmt.Errorf("pgstore: budget: %w", err)
	}
	q := "SELECT tat FROM " + s.names().budget + " WHERE budget_key = ?"
	var tat time.Time
	err := s.retry(ctx, "budget", func() error {
		err := s.db.QueryRowContext(ctx, q, key).Scan(&tat)
		if errors.Is(err, sql.ErrNoRows) {
			tat = time.Time{}
			return nil
		}
		return err
	})
	if err != nil || tat.IsZero() {
		return time.Time{}, err
	}
	return tat.UTC(), nil
}
