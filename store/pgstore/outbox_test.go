package pgstore_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/passreset/passreset/internal/storetest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/pgstore"
)

func TestOutboxConformance(t *testing.T) {
	db := openDB(t, testDSN(t))
	resettest.TestOutboxStore(t, func(t *testing.T) reset.OutboxStore { return newStore(t, db, pgstore.Options{}) })
}

// TestOutboxConformanceNoRetries runs the suite with retries off: the
// claims of concurrent workers must not rely on being retried.
func TestOutboxConformanceNoRetries(t *testing.T) {
	db := openDB(t, testDSN(t))
	resettest.TestOutboxStore(t, func(t *testing.T) reset.OutboxStore {
		return newStore(t, db, pgstore.Options{MaxAttempts: 1})
	})
}

// TestOutboxValues stores awkward values and reads them back exactly, and
// refuses what does not fit.
func TestOutboxValues(t *testing.T) {
	db := openDB(t, testDSN(t))
	s := newStore(t, db, pgstore.Options{})
	ctx := t.Context()
	sealed := make([]byte, 200_000)
	rand.Read(sealed)
	sealed[0], sealed[1], sealed[2] = 0, '\'', '\\'
	e := reset.Envelope{
		ID: strings.Repeat("i", 64), Kind: reset.EnvelopeMessage, Sealed: sealed, KeyID: `k'"\` + strings.Repeat("k", 60),
		Attempts: 3, CreatedAt: base.Add(999), NotBefore: base.Add(time.Second).In(time.FixedZone("X", 5*3600)),
		LastError: "earlier",
	}
	if err := s.Enqueue(ctx, e); err != nil {
		t.Fatal(err)
	}
	got, err := s.Claim(ctx, "w", base.Add(time.Second), base.Add(time.Minute), 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("Claim: %v, %v", got, err)
	}
	g := got[0]
	if g.ID != e.ID || g.Kind != e.Kind || !bytes.Equal(g.Sealed, sealed) ||
		g.KeyID != e.KeyID || g.Attempts != 3 || g.Claims != 1 || g.LastError != "earlier" || g.Dead ||
		!g.CreatedAt.Equal(base) || !g.NotBefore.Equal(base.Add(time.Second)) || g.NotBefore.Location() != time.UTC {
		t.Fatalf("read back %+v", g)
	}
	// LastError is cut to 1000 characters and made valid UTF-8 without NUL.
	g.LastError, g.Dead = strings.Repeat("é", 1500)+"\xff\x00", true
	if err := s.Save(ctx, "w", g, false); err != nil {
		t.Fatal(err)
	}
	dead, err := s.Dead(ctx, 10)
	if err != nil || len(dead) != 1 {
		t.Fatalf("Dead: %v, %v", dead, err)
	}
	if n := utf8.RuneCountInString(dead[0].LastError); n != 1000 || !utf8.ValidString(dead[0].LastError) ||
		!strings.HasPrefix(dead[0].LastError, "éé") {
		t.Fatalf("LastError of %d characters stored as %d", 1502, n)
	}
	for name, mod := range map[string]func(*reset.Envelope){
		"empty ID":  func(e *reset.Envelope) { e.ID = "" },
		"long ID":   func(e *reset.Envelope) { e.ID = strings.Repeat("i", 65) },
		"NUL in ID": func(e *reset.Envelope) { e.ID = "a\x00" },
		"long kind": func(e *reset.Envelope) { e.Kind = strings.Repeat("k", 33) },
		"long key":  func(e *reset.Envelope) { e.KeyID = strings.Repeat("k", 65) },
		"bad key":   func(e *reset.Envelope) { e.KeyID = "\xff" },
		"year 0":    func(e *reset.Envelope) { e.CreatedAt = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC) },
	} {
		bad := e
		bad.ID = "other"
		mod(&bad)
		if err := s.Enqueue(ctx, bad); err == nil || !strings.HasPrefix(err.Error(), "pgstore: enqueue: ") {
			t.Errorf("%s: Enqueue = %v, want a pgstore: enqueue: error", name, err)
		}
	}
	if _, err := s.Claim(ctx, strings.Repeat("w", 256), base, base, 1); err == nil {
		t.Error("Claim with a 256-byte worker name succeeded")
	}
	if err := s.Enqueue(ctx, e); err == nil {
		t.Error("Enqueue of an existing ID succeeded")
	}
	if err := s.Revive(ctx, strings.Repeat("i", 65), base); !errors.Is(err, reset.ErrNotFound) {
		t.Errorf("Revive of an impossible ID: %v", err)
	}
	if err := s.Delete(ctx, "", "x"); !errors.Is(err, reset.ErrLeaseLost) {
		t.Errorf("Delete by a worker without a name: %v", err)
	}
}

// TestOutboxRoundTrips counts the statements of each outbox operation. A
// public password-lost request with the outbox is one Enqueue (the
// Service counts the outbox in the background, at most every
// Outbox.CheckInterval), the same for every address.
func TestOutboxRoundTrips(t *testing.T) {
	s, measure := counted(t)
	ctx := t.Context()
	var envs []reset.Envelope
	measure("Enqueue", 1, func() error {
		return s.Enqueue(ctx, reset.Envelope{ID: "e1", Kind: reset.EnvelopeRequest, Sealed: []byte("x"), KeyID: "k", CreatedAt: base, NotBefore: base})
	})
	measure("Enqueue", 1, func() error {
		return s.Enqueue(ctx, reset.Envelope{ID: "e2", Kind: reset.EnvelopeRequest, Sealed: []byte("x"), KeyID: "k", CreatedAt: base, NotBefore: base})
	})
	now := base.Add(time.Second)
	measure("Claim of two", 1, func() (err error) {
		envs, err = s.Claim(ctx, "w", now, now.Add(time.Minute), 5)
		if err == nil && len(envs) != 2 {
			err = fmt.Errorf("claimed %d", len(envs))
		}
		return err
	})
	measure("Claim of none", 1, func() error {
		_, err := s.Claim(ctx, "w", now, now.Add(time.Minute), 5)
		return err
	})
	measure("Save", 1, func() error { return s.Save(ctx, "w", envs[0], true) })
	measure("Delete", 1, func() error { return s.Delete(ctx, "w", envs[0].ID) })
	measure("Save that lost its lease", 1, func() error {
		if err := s.Save(ctx, "other", envs[1], false); !errors.Is(err, reset.ErrLeaseLost) {
			return fmt.Errorf("got %v, want ErrLeaseLost", err)
		}
		return nil
	})
	measure("OutboxStats", 1, func() error {
		st, err := s.OutboxStats(ctx, 100)
		if err == nil && (st.Pending != 1 || st.Oldest.IsZero()) {
			err = fmt.Errorf("stats %+v", st)
		}
		return err
	})
	envs[1].Dead = true
	measure("Save (bury)", 1, func() error { return s.Save(ctx, "w", envs[1], false) })
	measure("Dead", 1, func() error { _, err := s.Dead(ctx, 10); return err })
	measure("Revive", 1, func() error { return s.Revive(ctx, envs[1].ID, now) })
}

// TestOutboxStatsBounded fills the outbox with 20,000 pending envelopes and
// checks that OutboxStats counts only up to its limit.
func TestOutboxStatsBounded(t *testing.T) {
	db := openDB(t, testDSN(t))
	s := newStore(t, db, pgstore.Options{})
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, "INSERT INTO "+table(s, "outbox")+
		" (id, kind, sealed, key_id, attempts, claims, not_before, created_at, dead, last_error)"+
		" SELECT 'fill-' || i, 'request', '\\x00', 'k', 0, 0, now(), now() - i * interval '1 second', i % 10 = 0, ''"+
		" FROM generate_series(1, 20000) i"); err != nil {
		t.Fatal(err)
	}
	st, err := s.OutboxStats(ctx, 1000)
	if err != nil || st.Pending != 1000 || st.Dead != 1000 || st.Oldest.IsZero() {
		t.Fatalf("OutboxStats(1000) = %+v, %v; want 1000 and 1000 (the limit)", st, err)
	}
	st, err = s.OutboxStats(ctx, 100_000)
	if err != nil || st.Pending != 18000 || st.Dead != 2000 {
		t.Fatalf("OutboxStats(100000) = %+v, %v; want 18000 pending, 2000 dead", st, err)
	}
}

// The outbox tests' configuration, shared with mysqlstore's tests (and
// used by the benchmarks).
var (
	outboxConfig = storetest.OutboxConfig
	newSealKey   = storetest.NewSealKey
)
