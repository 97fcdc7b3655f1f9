package sqlstoretest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
)

// A statement whose answer is lost is never applied twice, and Consume
// and Cooldown tell their own lost write from someone else's.
func testLostConnection(t *testing.T, h Harness) {
	db, f := h.Faulty(t)
	s := h.NewStore(t, db, 0)
	ctx := t.Context()
	rec := func(user string) reset.Record {
		return reset.Record{Hash: sha256.Sum256([]byte(user + time.Now().String())), UserID: user, Email: user + "@example.com",
			CreatedAt: Base, ExpiresAt: Base.Add(time.Hour)}
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

	modes := []bool{false}
	if h.Portable != nil {
		modes = append(modes, true)
	}
	for _, portable := range modes {
		if portable {
			h.Portable(s)
		}
		// Consume whose DELETE never reached the server: the retry wins.
		r = rec(fmt.Sprint("consume-not-applied", portable))
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
		r = rec(fmt.Sprint("consume-applied", portable))
		if err := s.Rotate(ctx, r); err != nil {
			t.Fatal(err)
		}
		f.Arm("DELETE", true)
		_, err := s.Consume(ctx, r.Hash)
		if err == nil || errors.Is(err, reset.ErrNotFound) || !errors.Is(err, f.Lost) ||
			!strings.Contains(err.Error(), "outcome unknown") {
			t.Fatalf("Consume after a lost, applied DELETE: %v, want the outcome-unknown error", err)
		}
		if _, err := s.Consume(ctx, r.Hash); !errors.Is(err, reset.ErrNotFound) {
			t.Fatalf("second Consume: %v, want ErrNotFound", err)
		}
	}

	// Cooldown whose upsert was applied but its answer lost: the retry
	// finds the running cooldown with its own nonce and knows it is its own.
	for _, applied := range []bool{true, false} {
		key := sha256.Sum256([]byte(time.Now().String()))
		f.Arm("INSERT INTO", applied)
		if ok, err := s.Cooldown(ctx, key, "", Base, Base.Add(time.Minute)); err != nil || !ok {
			t.Fatalf("Cooldown after a lost answer (applied %v) = %v, %v; want true", applied, ok, err)
		}
		if ok, err := s.Cooldown(ctx, key, "", Base.Add(time.Second), Base.Add(time.Minute)); err != nil || ok {
			t.Fatalf("Cooldown while running = %v, %v; want false", ok, err)
		}
	}

	// Spend whose INSERT or UPDATE was applied but its answer lost: the
	// retry finds its own use and counts it once.
	for _, applied := range []bool{true, false} {
		key := sha256.Sum256([]byte(time.Now().String()))
		f.Arm("INSERT INTO", applied)
		if ok, err := s.Spend(ctx, key, "", Base, time.Hour, 2); err != nil || !ok {
			t.Fatalf("Spend after a lost INSERT (applied %v) = %v, %v; want true", applied, ok, err)
		}
		f.Arm("UPDATE", applied)
		if ok, err := s.Spend(ctx, key, "", Base.Add(time.Second), time.Hour, 2); err != nil || !ok {
			t.Fatalf("Spend after a lost UPDATE (applied %v) = %v, %v; want true", applied, ok, err)
		}
		if ok, err := s.Spend(ctx, key, "", Base.Add(2*time.Second), time.Hour, 2); err != nil || ok {
			t.Fatalf("third Spend of a budget of 2 = %v, %v; want false (each use counted once)", ok, err)
		}
	}

	// CooldownSecret: both statements are safe to repeat.
	f.Arm("INSERT", true)
	first, err := s.CooldownSecret(ctx)
	if err != nil {
		t.Fatalf("CooldownSecret after a lost answer: %v", err)
	}
	if again, err := s.CooldownSecret(ctx); err != nil || string(again) != string(first) {
		t.Fatalf("CooldownSecret = %x, %v; want %x", again, err, first)
	}
}

// The answer of each outbox write is lost, after the server applied it or
// before: the retry recognises its own write and never reports a lease
// lost or an envelope missing because of it, and never applies it twice.
func testOutboxLostConnection(t *testing.T, h Harness) {
	db, f := h.Faulty(t)
	s := h.NewStore(t, db, 0)
	ctx := t.Context()
	at := Base
	claim := func(name string, want int) []outbox.Envelope {
		t.Helper()
		got, err := s.Claim(ctx, "w", at, at.Add(time.Minute), 10)
		if err != nil || len(got) != want {
			t.Fatalf("%s: Claim = %+v, %v; want %d envelopes", name, got, err, want)
		}
		return got
	}
	// A claim whose answer is lost after it was applied leaves its
	// envelopes leased to its worker, unseen, until the lease ends.
	afterLostClaim := func(name string, applied bool, want int) []outbox.Envelope {
		t.Helper()
		got, err := s.Claim(ctx, "w", at, at.Add(time.Minute), 10)
		if err != nil {
			t.Fatalf("%s: Claim: %v", name, err)
		}
		if len(got) == 0 && applied {
			at = at.Add(time.Minute)
			return claim(name+", after the lease", want)
		}
		if len(got) != want {
			t.Fatalf("%s: Claim = %+v; want %d envelopes", name, got, want)
		}
		return got
	}
	for _, applied := range []bool{true, false} {
		name := fmt.Sprintf("applied=%v", applied)
		e := outbox.Envelope{ID: name, Kind: outbox.KindRequest, Sealed: []byte("s"), KeyID: "k", CreatedAt: at, NotBefore: at}
		// Enqueue: the retry finds its own row.
		f.Arm("INSERT INTO", applied)
		if err := s.Enqueue(ctx, e); err != nil {
			t.Fatalf("%s: Enqueue: %v", name, err)
		}
		f.Arm("UPDATE", applied)
		got := afterLostClaim(name, applied, 1)
		// Save releasing the lease: the retry finds no lease, but its nonce.
		e = got[0]
		e.Attempts, e.LastError = 1, "503"
		f.Arm("UPDATE", applied)
		if err := s.Save(ctx, "w", e, false); err != nil {
			t.Fatalf("%s: Save(release): %v", name, err)
		}
		got = claim(name+": after Save", 1)
		if got[0].Attempts != 1 {
			t.Fatalf("%s: Claim after Save: %+v", name, got)
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
		member := claim(name+": after Revive", 1)[0]

		// Replace forming a batch, each of its statements losing its
		// answer in turn: one batch, held, and the member gone.
		for _, stmt := range []string{"DELETE", "INSERT INTO", "COMMIT"} {
			batch := outbox.Envelope{ID: name + "-batch-" + stmt, Kind: outbox.KindBatch, Sealed: []byte("b"), KeyID: "k", CreatedAt: at, NotBefore: at}
			f.Arm(stmt, applied)
			if err := s.Replace(ctx, "w", []string{member.ID}, []outbox.Envelope{batch}, at.Add(time.Minute)); err != nil {
				t.Fatalf("%s: Replace forming a batch, %s answer lost: %v", name, stmt, err)
			}
			if lost, err := s.Renew(ctx, "w", []string{batch.ID, member.ID}, at.Add(time.Minute)); err != nil || len(lost) != 1 || lost[0] != member.ID {
				t.Fatalf("%s: after Replace (%s lost): Renew lost %v, %v; want the member only", name, stmt, lost, err)
			}
			if st, err := s.Stats(ctx, 100); err != nil || st.Pending != 1 {
				t.Fatalf("%s: after Replace (%s lost): %+v, %v; want 1 envelope", name, stmt, st, err)
			}
			// Its answer: the batch out, the member back, unleased.
			f.Arm(stmt, applied)
			if err := s.Replace(ctx, "w", []string{batch.ID}, []outbox.Envelope{member}, time.Time{}); err != nil {
				t.Fatalf("%s: Replace recording the answer, %s answer lost: %v", name, stmt, err)
			}
			member = claim(fmt.Sprintf("%s: after the answer (%s lost)", name, stmt), 1)[0]
			if member.ID != e.ID {
				t.Fatalf("%s: claimed %s, want the member back", name, member.ID)
			}
		}
		// Replace deleting: the retry finds the row gone.
		for _, stmt := range []string{"DELETE", "COMMIT"} {
			f.Arm(stmt, applied)
			if err := s.Replace(ctx, "w", []string{member.ID}, nil, time.Time{}); err != nil {
				t.Fatalf("%s: Replace deleting, %s answer lost: %v", name, stmt, err)
			}
			if st, err := s.Stats(ctx, 100); err != nil || st.Pending != 0 || st.Dead != 0 {
				t.Fatalf("%s: stats %+v, %v", name, st, err)
			}
			if stmt == "DELETE" {
				if err := s.Enqueue(ctx, member); err != nil {
					t.Fatal(err)
				}
				member = claim(name+": again", 1)[0]
			}
		}
	}
	// Without a lost answer, the verdicts stand.
	e := outbox.Envelope{ID: "plain", Kind: outbox.KindRequest, Sealed: []byte("s"), CreatedAt: at, NotBefore: at}
	if err := s.Enqueue(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, e); err == nil {
		t.Fatal("Enqueue of a duplicate ID succeeded")
	}
	if err := s.Replace(ctx, "w", []string{e.ID}, nil, time.Time{}); !errors.Is(err, outbox.ErrLeaseLost) {
		t.Fatalf("Replace without a lease: %v", err)
	}
	if err := s.Revive(ctx, e.ID, at); !errors.Is(err, reset.ErrNotFound) {
		t.Fatalf("Revive of a live envelope: %v", err)
	}
}
