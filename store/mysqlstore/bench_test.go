package mysqlstore_test

import (
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/store/mysqlstore"
)

// BenchmarkMySQLRequest measures the core's password-lost request for a
// known user (SkipSend, one goroutine) on this store: token generation,
// hashing and one Rotate upsert.
func BenchmarkMySQLRequest(b *testing.B) {
	db := openDB(b, testDSN(b))
	s := newStore(b, db, mysqlstore.Options{})
	svc, _, _ := newService(b, s, "bench", nil)
	ctx := b.Context()
	req := reset.TrustedRequest{Email: "bench@example.com", SkipSend: true}
	for b.Loop() {
		if _, err := svc.RequestTrusted(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkMySQLRawUpsert is the floor for BenchmarkMySQLRequest: the same
// INSERT ... ON DUPLICATE KEY UPDATE on the same table, sent in a loop by
// database/sql and the same driver through a prepared statement, with
// nothing else around it.
func BenchmarkMySQLRawUpsert(b *testing.B) {
	db := openDB(b, testDSN(b))
	s := newStore(b, db, mysqlstore.Options{})
	ctx := b.Context()
	stmt, err := db.DB.PrepareContext(ctx, fmt.Sprintf("INSERT INTO `%stokens` (user_id, token_hash, email, created_at, expires_at)"+
		" VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE token_hash = ?, email = ?, created_at = ?, expires_at = ?", s.TablePrefix()))
	if err != nil {
		b.Fatal(err)
	}
	defer stmt.Close()
	now := time.Now().UTC()
	created, expires := now.Format("2006-01-02 15:04:05.000000"), now.Add(time.Hour).Format("2006-01-02 15:04:05.000000")
	user, email := []byte("bench"), []byte("bench@example.com")
	var h [32]byte
	for b.Loop() {
		rand.Read(h[:])
		if _, err := stmt.ExecContext(ctx, user, h[:], email, created, expires, h[:], email, created, expires); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
