package pgstore_test

import (
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/passreset/passreset/internal/storetest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/store/pgstore"
)

// faultyDB opens the test database through a connector whose faults the
// test sets: a lost answer gives io.ErrUnexpectedEOF, as pgx reports a
// connection that broke while reading the answer.
func faultyDB(t *testing.T) (*bun.DB, *storetest.Faults) {
	t.Helper()
	cfg, err := pgx.ParseConfig(testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	f := &storetest.Faults{Lost: fmt.Errorf("reading the answer: %w", io.ErrUnexpectedEOF)}
	db := bun.NewDB(sql.OpenDB(f.Connector(stdlib.GetConnector(*cfg))), pgdialect.New())
	t.Cleanup(func() { db.Close() })
	return db, f
}

// TestLostConnection checks that a statement whose answer is lost is never
// applied twice, and that each operation tells its own lost write from
// someone else's.
func TestLostConnection(t *testing.T) {
	db, f := faultyDB(t)
	s := newStore(t, db, pgstore.Options{})
	ctx := t.Context()
	rec := func(user string) reset.Record {
		return reset.Record{Hash: sha256.Sum256([]byte(user + time.Now().String())), UserID: user, Email: user + "@example.com",
			CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	}

	// Rotate: retried after a lost answer; the same row either way.
	for _, applied := range []bool{true, false} {
		r := rec("rotate")
		f.Arm("INSERT INTO", applied)
		if err := s.Rotate(ctx, r); err != nil {
			t.Fatalf("Rotate (applied %v): %v", applied, err)
		}
		if _, err := s.Lookup(ctx, r.Hash); err != nil {
			t.Fatalf("Lookup after Rotate (applied %v): %v", applied, err)
		}
	}

	// Lookup: a read is simply retried.
	r := rec("lookup")
	if err := s.Rotate(ctx, r); err != nil {
		t.Fatal(err)
	}
	f.Arm("SELECT", true)
	if _, err := s.Lookup(ctx, r.Hash); err != nil {
		t.Fatalf("Lookup after a lost answer: %v", err)
	}

	// Consume whose DELETE never reached the server: the retry wins.
	r = rec("consume-not-applied")
	if err := s.Rotate(ctx, r); err != nil {
		t.Fatal(err)
	}
	f.Arm("DELETE", false)
	if got, err := s.Consume(ctx, r.Hash); err != nil || got.Hash != r.Hash {
		t.Fatalf("Consume after a DELETE that was not applied: %v", err)
	}

	// Consume whose DELETE was applied but its answer lost: the retry
	// cannot know who removed the row, and says so instead of claiming
	// the token was unknown.
	r = rec("consume-applied")
	if err := s.Rotate(ctx, r); err != nil {
		t.Fatal(err)
	}
	f.Arm("DELETE", true)
	_, err := s.Consume(ctx, r.Hash)
	if err == nil || errors.Is(err, reset.ErrNotFound) || !errors.Is(err, io.ErrUnexpectedEOF) ||
		!strings.Contains(err.Error(), "outcome unknown") {
		t.Fatalf("Consume after a lost, applied DELETE: %v, want the outcome-unknown error", err)
	}
	if _, err := s.Consume(ctx, r.Hash); !errors.Is(err, reset.ErrNotFound) {
		t.Fatalf("second Consume: %v, want ErrNotFound", err)
	}

	// Cooldown whose upsert was applied but its answer lost: the retry
	// finds the running cooldown with its own nonce and knows it is its own.
	for _, applied := range []bool{true, false} {
		key := sha256.Sum256([]byte(time.Now().String()))
		f.Arm("INSERT INTO", applied)
		if ok, err := s.Cooldown(ctx, key, "", base, base.Add(time.Minute)); err != nil || !ok {
			t.Fatalf("Cooldown after a lost answer (applied %v) = %v, %v; want true", applied, ok, err)
		}
		if ok, err := s.Cooldown(ctx, key, "", base.Add(time.Second), base.Add(time.Minute)); err != nil || ok {
			t.Fatalf("Cooldown while running = %v, %v; want false", ok, err)
		}
	}
}

// TestOutboxLostConnection loses the answer of each outbox write, after
// the server applied it or before: the retry recognises its own write and
// never reports a lease lost or an envelope missing because of it.
func TestOutboxLostConnection(t *testing.T) {
	db, f := faultyDB(t)
	s := newStore(t, db, pgstore.Options{})
	ctx := t.Context()
	at := base
	for _, applied := range []bool{true, false} {
		name := fmt.Sprintf("applied=%v", applied)
		e := reset.Envelope{ID: name, Kind: reset.EnvelopeRequest, Sealed: []byte("s"), KeyID: "k", CreatedAt: at, NotBefore: at}
		// Enqueue: the retry finds its own row (a unique violation).
		f.Arm("INSERT INTO", applied)
		if err := s.Enqueue(ctx, e); err != nil {
			t.Fatalf("%s: Enqueue: %v", name, err)
		}
		// Claim whose answer is lost: when it was applied, the envelope
		// stays leased until the lease ends, then comes back.
		f.Arm("UPDATE", applied)
		got, err := s.Claim(ctx, "w", at, at.Add(time.Minute), 5)
		if err != nil {
			t.Fatalf("%s: Claim: %v", name, err)
		}
		if applied {
			if len(got) != 0 {
				t.Fatalf("%s: Claim after a lost, applied claim: %+v; want nothing until the lease ends", name, got)
			}
			at = at.Add(time.Minute)
			if got, err = s.Claim(ctx, "w", at, at.Add(time.Minute), 5); err != nil {
				t.Fatal(err)
			}
		}
		if len(got) != 1 {
			t.Fatalf("%s: Claim: %+v, want the envelope", name, got)
		}
		// Save releasing the lease: the retry finds no lease, but its nonce.
		e = got[0]
		e.Attempts, e.LastError = 1, "503"
		f.Arm("UPDATE", applied)
		if err := s.Save(ctx, "w", e, false); err != nil {
			t.Fatalf("%s: Save(release): %v", name, err)
		}
		got, err = s.Claim(ctx, "w", at, at.Add(time.Minute), 5)
		if err != nil || len(got) != 1 || got[0].Attempts != 1 {
			t.Fatalf("%s: Claim after Save: %+v, %v", name, got, err)
		}
		// Save holding the lease.
		f.Arm("UPDATE", applied)
		if err := s.Save(ctx, "w", got[0], true); err != nil {
			t.Fatalf("%s: Save(hold): %v", name, err)
		}
		// Bury it, then revive it with a lost answer.
		e = got[0]
		e.Dead = true
		if err := s.Save(ctx, "w", e, false); err != nil {
			t.Fatal(err)
		}
		f.Arm("UPDATE", applied)
		if err := s.Revive(ctx, e.ID, at); err != nil {
			t.Fatalf("%s: Revive: %v", name, err)
		}
		got, err = s.Claim(ctx, "w", at, at.Add(time.Minute), 5)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: Claim after Revive: %+v, %v", name, got, err)
		}
		// Delete: the retry finds the row gone.
		f.Arm("DELETE", applied)
		if err := s.Delete(ctx, "w", e.ID); err != nil {
			t.Fatalf("%s: Delete: %v", name, err)
		}
		if st, err := s.OutboxStats(ctx, 100); err != nil || st.Pending != 0 || st.Dead != 0 {
			t.Fatalf("%s: stats %+v, %v", name, st, err)
		}
	}
	// Without a lost answer, the verdicts stand.
	e := reset.Envelope{ID: "plain", Kind: reset.EnvelopeRequest, Sealed: []byte("s"), CreatedAt: at, NotBefore: at}
	if err := s.Enqueue(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, e); err == nil {
		t.Fatal("Enqueue of a duplicate ID succeeded")
	}
	if err := s.Delete(ctx, "w", e.ID); !errors.Is(err, reset.ErrLeaseLost) {
		t.Fatalf("Delete without a lease: %v", err)
	}
	if err := s.Revive(ctx, e.ID, at); !errors.Is(err, reset.ErrNotFound) {
		t.Fatalf("Revive of a live envelope: %v", err)
	}
}
