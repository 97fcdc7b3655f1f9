package mysqlstore_test

import (
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"

	"github.com/passreset/passreset/internal/storetest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/store/mysqlstore"
)

// faultyDB opens the test database through a connector whose faults the
// test sets: a lost answer gives mysql.ErrInvalidConn.
func faultyDB(t *testing.T) (*bun.DB, *storetest.Faults) {
	t.Helper()
	cfg, err := mysql.ParseDSN(testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &storetest.Faults{Lost: mysql.ErrInvalidConn}
	db := bun.NewDB(sql.OpenDB(f.Connector(conn)), mysqldialect.New())
	t.Cleanup(func() { db.Close() })
	return db, f
}

// TestLostConnection checks that a statement whose answer is lost is never
// applied twice, and that Consume and Cooldown tell their own lost write
// from someone else's.
func TestLostConnection(t *testing.T) {
	db, f := faultyDB(t)
	s := newStore(t, db, mysqlstore.Options{})
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
	var err error
	r := rec("lookup")
	if err := s.Rotate(ctx, r); err != nil {
		t.Fatal(err)
	}
	f.Arm("SELECT", true)
	if _, err := s.Lookup(ctx, r.Hash); err != nil {
		t.Fatalf("Lookup after a lost answer: %v", err)
	}

	// Consume, with DELETE ... RETURNING (MariaDB) and without (MySQL).
	for _, portable := range []bool{false, true} {
		if portable {
			mysqlstore.UsePortableConsume(s)
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
		_, err = s.Consume(ctx, r.Hash)
		if err == nil || errors.Is(err, reset.ErrNotFound) || !errors.Is(err, mysql.ErrInvalidConn) ||
			!strings.Contains(err.Error(), "outcome unknown") {
			t.Fatalf("Consume after a lost, applied DELETE: %v, want the outcome-unknown error", err)
		}
		if _, err := s.Consume(ctx, r.Hash); !errors.Is(err, reset.ErrNotFound) {
			t.Fatalf("second Consume: %v, want ErrNotFound", err)
		}
	}

	// Cooldown whose upsert was applied but its answer lost: the retry
	// finds the running cooldown, reads its nonce and knows it is its own.
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
