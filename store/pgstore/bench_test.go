package pgstore_test

import (
	"crypto/rand"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/passreset/passreset/internal/sqlstore/sqlstoretest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/pgstore"
)

// pair runs one operation of passreset and one of its floor (the raw
// statement it is made of) in each iteration, alternately, so that both
// meet the same load of a shared machine, and reports the mean time of
// each, their ratio as throughput (floor time / passreset time, 1 = as
// fast as the raw statement) and the statements passreset sent per
// operation, counted by a bun query hook.
func pair(b *testing.B, counter *sqlstoretest.QueryCounter, op, floor func(i int) error) {
	var opTime, floorTime time.Duration
	before := counter.N.Load()
	i := 0
	for b.Loop() {
		i++
		start := time.Now()
		if err := op(i); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if err := floor(i); err != nil {
			b.Fatal(err)
		}
		opTime += mid.Sub(start)
		floorTime += time.Since(mid)
	}
	n := float64(i)
	b.ReportMetric(float64(opTime.Microseconds())/n, "passreset-µs")
	b.ReportMetric(float64(floorTime.Microseconds())/n, "raw-µs")
	b.ReportMetric(float64(floorTime)/float64(opTime), "ratio")
	b.ReportMetric(float64(counter.N.Load()-before)/n, "trips/op")
}

// prepare prepares a raw statement on the test database.
func prepare(b *testing.B, db *sql.DB, q string) *sql.Stmt {
	stmt, err := db.PrepareContext(b.Context(), q)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stmt.Close() })
	return stmt
}

// BenchmarkPGTrusted compares the trusted request (RequestTrusted for a
// known user with SkipSend: token generation, hashing and one Rotate
// upsert) with its floor: the same INSERT ... ON CONFLICT DO UPDATE on the
// same table, sent by database/sql and pgx as a prepared statement with
// nothing around it.
func BenchmarkPGTrusted(b *testing.B) {
	db := openDB(b, testDSN(b))
	counter := &sqlstoretest.QueryCounter{}
	tables := newStore(b, db, pgstore.Options{})
	s, err := pgstore.New(db.WithQueryHook(counter), pgstore.Options{TablePrefix: tables.TablePrefix()})
	if err != nil {
		b.Fatal(err)
	}
	svc, _, _ := newService(b, s, "bench", nil)
	req := reset.TrustedRequest{Email: "bench@example.com", SkipSend: true}
	stmt := prepare(b, db.DB, "INSERT INTO "+table(s, "tokens")+" AS t (user_id, token_hash, email, created_at, expires_at)"+
		" VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO UPDATE SET token_hash = EXCLUDED.token_hash, email = EXCLUDED.email,"+
		" created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at")
	now := time.Now().UTC()
	var h [32]byte
	pair(b, counter, func(int) error {
		_, err := svc.RequestTrusted(b.Context(), req)
		return err
	}, func(int) error {
		rand.Read(h[:])
		_, err := stmt.ExecContext(b.Context(), "raw", h[:], "raw@example.com", now, now.Add(time.Hour))
		return err
	})
}

// BenchmarkPGPublic compares the public request with the durable outbox
// (Request: checking the input, sealing the address with AES-256-GCM and
// one Enqueue INSERT) with its floor: a prepared single-row INSERT of the
// same shape and size into the outbox.
func BenchmarkPGPublic(b *testing.B) {
	db := openDB(b, testDSN(b))
	counter := &sqlstoretest.QueryCounter{}
	tables := newStore(b, db, pgstore.Options{})
	s, err := pgstore.New(db.WithQueryHook(counter), pgstore.Options{TablePrefix: tables.TablePrefix()})
	if err != nil {
		b.Fatal(err)
	}
	key := outbox.SealKey{ID: "test-key", Key: make([]byte, 32)}
	rand.Read(key.Key)
	ob, err := outbox.New(s, outbox.Options{Keys: []outbox.SealKey{key}, MaxPending: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	svc, err := reset.New(reset.Config{
		KeepSessions: true,
		Store:        s, Users: &resettest.Users{}, Mailer: &resettest.Mailer{},
		ResetURL: "https://app.example.com/reset", Queue: ob,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { svc.Shutdown(b.Context()) })
	if err := svc.Request(b.Context(), "warm@example.com", ""); err != nil {
		b.Fatal(err)
	}
	stmt := prepare(b, db.DB, "INSERT INTO "+table(s, "outbox")+
		" (id, kind, sealed, key_id, attempts, claims, not_before, created_at, dead, last_error)"+
		" VALUES ($1, 'request', $2, 'test-key', 0, 0, $3, $3, false, '')")
	sealed := make([]byte, 100) // about the size of a sealed request
	now := time.Now().UTC()
	var id [16]byte
	pair(b, counter, func(i int) error {
		return svc.Request(b.Context(), fmt.Sprintf("user%d@example.com", i), "")
	}, func(int) error {
		rand.Read(id[:])
		_, err := stmt.ExecContext(b.Context(), fmt.Sprintf("%x", id), sealed, now)
		return err
	})
	if svc.Dropped() != 0 {
		b.Fatalf("%d requests dropped", svc.Dropped())
	}
}
