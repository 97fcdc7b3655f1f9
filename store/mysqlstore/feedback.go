package mysqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"

	"github.com/passreset/passreset/feedback"
	"github.com/passreset/passreset/internal/sqlstore"
)

var _ feedback.Store = (*Store)(nil)

// pruneBatch is how many events one DELETE of PruneEvents removes.
const pruneBatch = 1000

// feedbackQueries holds the statements of [feedback.Store].
type feedbackQueries struct {
	insert, nonce, suppress, unsuppress, suppressed, events, prune string
}

func newFeedbackQueries(p string) feedbackQueries {
	events, sup := "`"+p+"fb_events`", "`"+p+"suppressions`"
	return feedbackQueries{
		insert: "INSERT INTO " + events + " (event_id, address, type, bounce, detail, happened_at, received_at, message_id, provider_id, nonce)" +
			" VALUES (?, ?, ?, ?, ?, CAST(? AS DATETIME(6)), CAST(? AS DATETIME(6)), ?, ?, ?)",
		nonce: "SELECT nonce FROM " + events + " WHERE event_id = ?",
		// GREATEST is NULL when an argument is: hence the COALESCE.
		suppress: "INSERT INTO " + sup + " (address, suppressed_at) VALUES (?, CAST(? AS DATETIME(6)))" +
			" ON DUPLICATE KEY UPDATE suppressed_at = GREATEST(COALESCE(suppressed_at, CAST(? AS DATETIME(6))), CAST(? AS DATETIME(6)))",
		unsuppress: "INSERT INTO " + sup + " (address, cleared_at) VALUES (?, CAST(? AS DATETIME(6)))" +
			" ON DUPLICATE KEY UPDATE cleared_at = GREATEST(COALESCE(cleared_at, CAST(? AS DATETIME(6))), CAST(? AS DATETIME(6)))",
		suppressed: "SELECT suppressed_at IS NOT NULL AND (cleared_at IS NULL OR suppressed_at > cleared_at) FROM " + sup +
			" WHERE address = ?",
		events: "SELECT event_id, type, bounce, detail, " + fmt.Sprintf(sqlTime, "happened_at") + ", " +
			fmt.Sprintf(sqlTime, "received_at") + ", message_id, provider_id FROM " + events +
			" WHERE address = ? ORDER BY happened_at DESC, received_at DESC, event_id DESC LIMIT ?",
		prune: "DELETE FROM " + events + " WHERE received_at < CAST(? AS DATETIME(6)) ORDER BY received_at LIMIT ?",
	}
}

// RecordEvent implements [feedback.Store]: the event's INSERT and, for a
// suppressing event, the suppression's upsert run in one transaction. A
// duplicate event_id is a replay; after a lost answer, the retry tells its
// own insert from another's by the row's nonce.
func (s *Store) RecordEvent(ctx context.Context, e feedback.Event) error {
	at, err := dbTime(e.Time)
	if err != nil {
		return fmt.Errorf("mysqlstore: record event: %w", err)
	}
	received, err := dbTime(e.Received)
	if err != nil {
		return fmt.Errorf("mysqlstore: record event: %w", err)
	}
	q := newFeedbackQueries(s.prefix)
	nonce := sqlstore.Nonce()
	var unsure bool
	return s.retry(ctx, "record event", func() error {
		err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, q.insert, e.ID, e.Address[:], string(e.Type), string(e.Bounce), e.Detail,
				at, received, e.MessageID, e.ProviderID, nonce); err != nil {
				return err
			}
			if !e.Suppresses() {
				return nil
			}
			_, err := tx.ExecContext(ctx, q.suppress, e.Address[:], at, at, at)
			return err
		})
		var me *mysql.MySQLError
		switch {
		case errors.As(err, &me) && me.Number == errDuplicateEntry:
			if unsure {
				var got []byte
				if err := s.db.QueryRowContext(ctx, q.nonce, e.ID).Scan(&got); err == nil && bytes.Equal(got, nonce) {
					return nil // this call's own insert, whose answer was lost
				}
			}
			return feedback.ErrReplayed
		case err != nil:
			unsure = unsure || mayHaveApplied(err)
		}
		return err
	})
}

// Events implements [feedback.Store].
func (s *Store) Events(ctx context.Context, a feedback.Address, n int) ([]feedback.Event, error) {
	q := newFeedbackQueries(s.prefix)
	var evs []feedback.Event
	err := s.retry(ctx, "events", func() error {
		evs = evs[:0]
		rows, err := s.db.QueryContext(ctx, q.events, a[:], n)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e := feedback.Event{Address: a}
			var typ, bounce string
			var at, received []byte
			if err := rows.Scan(&e.ID, &typ, &bounce, &e.Detail, &at, &received, &e.MessageID, &e.ProviderID); err != nil {
				return err
			}
			e.Type, e.Bounce = feedback.Type(typ), feedback.Bounce(bounce)
			if e.Time, err = parseTime(at); err != nil {
				return err
			}
			if e.Received, err = parseTime(received); err != nil {
				return err
			}
			evs = append(evs, e)
		}
		return rows.Err()
	})
	if evs == nil {
		evs = []feedback.Event{}
	}
	return evs, err
}

// Suppressed implements [feedback.Store].
func (s *Store) Suppressed(ctx context.Context, a feedback.Address) (bool, error) {
	q := newFeedbackQueries(s.prefix)
	var held bool
	err := s.retry(ctx, "suppressed", func() error {
		err := s.db.QueryRowContext(ctx, q.suppressed, a[:]).Scan(&held)
		if errors.Is(err, sql.ErrNoRows) {
			held = false
			return nil
		}
		return err
	})
	return held, err
}

// Unsuppress implements [feedback.Store] with one upsert, retried freely.
func (s *Store) Unsuppress(ctx context.Context, a feedback.Address, at time.Time) error {
	t, err := dbTime(at)
	if err != nil {
		return fmt.Errorf("mysqlstore: unsuppress: %w", err)
	}
	q := newFeedbackQueries(s.prefix)
	return s.retry(ctx, "unsuppress", func() error {
		_, err := s.db.ExecContext(ctx, q.unsuppress, a[:], t, t, t)
		return err
	})
}

// PruneEvents implements [feedback.Store], deleting at most 1,000 rows a
// statement.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	t, err := dbTime(before)
	if err != nil {
		return 0, fmt.Errorf("mysqlstore: prune events: %w", err)
	}
	q := newFeedbackQueries(s.prefix)
	var total int64
	for {
		n, err := s.ob.Count(ctx, "prune events", q.prune, t, pruneBatch)
		total += int64(n)
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
}
