package pgstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/passreset/passreset/feedback"
	"github.com/passreset/passreset/internal/sqlstore"
)

var _ feedback.Store = (*Store)(nil)

// pruneBatch is how many events one DELETE of PruneEvents removes.
const pruneBatch = 1000

// feedbackQueries holds the statements of [feedback.Store].
type feedbackQueries struct {
	record, nonce, unsuppress, suppressed, events, prune string
}

func (s *Store) feedbackQueries() (feedbackQueries, error) {
	n, err := newNames(s.schema, s.prefix)
	if err != nil {
		return feedbackQueries{}, err
	}
	events, sup := n.fbEvents, n.suppressions
	return feedbackQueries{
		// One statement, so one atomic step: the insert, and for a
		// suppressing event (the last argument) the suppression's upsert
		// of the inserted row. A conflict inserts nothing and returns 0.
		// GREATEST ignores NULLs.
		record: "WITH ins AS (INSERT INTO " + events +
			" (event_id, address, type, bounce, detail, happened_at, received_at, message_id, provider_id, nonce)" +
			" VALUES (?, ?, ?, ?, ?, " + ts + ", " + ts + ", ?, ?, ?) ON CONFLICT (event_id) DO NOTHING RETURNING address, happened_at)," +
			" sup AS (INSERT INTO " + sup + " AS s (address, suppressed_at) SELECT address, happened_at FROM ins WHERE ?" +
			" ON CONFLICT (address) DO UPDATE SET suppressed_at = GREATEST(s.suppressed_at, EXCLUDED.suppressed_at))" +
			" SELECT count(*) FROM ins",
		nonce: "SELECT nonce FROM " + events + " WHERE event_id = ?",
		unsuppress: "INSERT INTO " + sup + " AS s (address, cleared_at) VALUES (?, " + ts + ")" +
			" ON CONFLICT (address) DO UPDATE SET cleared_at = GREATEST(s.cleared_at, EXCLUDED.cleared_at)",
		suppressed: "SELECT suppressed_at IS NOT NULL AND (cleared_at IS NULL OR suppressed_at > cleared_at) FROM " + sup +
			" WHERE address = ?",
		events: "SELECT event_id, type, bounce, detail, happened_at, received_at, message_id, provider_id FROM " + events +
			" WHERE address = ? ORDER BY happened_at DESC, received_at DESC, event_id DESC LIMIT ?",
		prune: "DELETE FROM " + events + " WHERE event_id IN (SELECT event_id FROM " + events +
			" WHERE received_at < " + ts + " ORDER BY received_at LIMIT ?)",
	}, nil
}

// RecordEvent implements [feedback.Store] with one statement: the
// event's INSERT and the suppression's upsert in data-modifying WITH
// clauses. A conflict on event_id is a replay; after a lost answer, the
// retry tells its own insert from another's by the row's nonce.
func (s *Store) RecordEvent(ctx context.Context, e feedback.Event) error {
	at, err := dbTime(e.Time)
	if err != nil {
		return fmt.Errorf("pgstore: record event: %w", err)
	}
	received, err := dbTime(e.Received)
	if err != nil {
		return fmt.Errorf("pgstore: record event: %w", err)
	}
	q, err := s.feedbackQueries()
	if err != nil {
		return err
	}
	nonce := sqlstore.Nonce()
	var unsure bool
	return s.retry(ctx, "record event", func() error {
		var n int
		err := s.db.QueryRowContext(ctx, q.record, e.ID, e.Address[:], string(e.Type), string(e.Bounce), e.Detail,
			at, received, e.MessageID, e.ProviderID, nonce, e.Suppresses()).Scan(&n)
		switch {
		case err != nil:
			unsure = unsure || mayHaveApplied(err)
			return err
		case n == 1:
			return nil
		case unsure:
			var got []byte
			if err := s.db.QueryRowContext(ctx, q.nonce, e.ID).Scan(&got); err == nil && bytes.Equal(got, nonce) {
				return nil // this call's own insert, whose answer was lost
			}
		}
		return feedback.ErrReplayed
	})
}

// Events implements [feedback.Store].
func (s *Store) Events(ctx context.Context, a feedback.Address, n int) ([]feedback.Event, error) {
	q, err := s.feedbackQueries()
	if err != nil {
		return nil, err
	}
	evs := []feedback.Event{}
	err = s.retry(ctx, "events", func() error {
		evs = evs[:0]
		rows, err := s.db.QueryContext(ctx, q.events, a[:], n)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e := feedback.Event{Address: a}
			var typ, bounce string
			if err := rows.Scan(&e.ID, &typ, &bounce, &e.Detail, &e.Time, &e.Received, &e.MessageID, &e.ProviderID); err != nil {
				return err
			}
			e.Type, e.Bounce = feedback.Type(typ), feedback.Bounce(bounce)
			e.Time, e.Received = e.Time.UTC(), e.Received.UTC()
			evs = append(evs, e)
		}
		return rows.Err()
	})
	return evs, err
}

// Suppressed implements [feedback.Store].
func (s *Store) Suppressed(ctx context.Context, a feedback.Address) (bool, error) {
	q, err := s.feedbackQueries()
	if err != nil {
		return false, err
	}
	var held bool
	err = s.retry(ctx, "suppressed", func() error {
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
		return fmt.Errorf("pgstore: unsuppress: %w", err)
	}
	q, err := s.feedbackQueries()
	if err != nil {
		return err
	}
	return s.retry(ctx, "unsuppress", func() error {
		_, err := s.db.ExecContext(ctx, q.unsuppress, a[:], t)
		return err
	})
}

// PruneEvents implements [feedback.Store], deleting at most 1,000 rows a
// statement.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	t, err := dbTime(before)
	if err != nil {
		return 0, fmt.Errorf("pgstore: prune events: %w", err)
	}
	q, err := s.feedbackQueries()
	if err != nil {
		return 0, err
	}
	var total int64
	for {
		n, err := s.ob.Count(ctx, "prune events", q.prune, t, pruneBatch)
		total += int64(n)
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
}
