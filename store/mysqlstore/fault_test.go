package mysqlstore_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/store/mysqlstore"
)

// faults injects lost connections: the next statement starting with
// prefix fails with mysql.ErrInvalidConn, after it ran on the server
// (applied) or instead of running.
type faults struct {
	mu      sync.Mutex
	prefix  string
	applied bool
}

func (f *faults) arm(prefix string, applied bool) {
	f.mu.Lock()
	f.prefix, f.applied = prefix, applied
	f.mu.Unlock()
}

// take reports whether query must fail, and whether it runs first.
func (f *faults) take(query string) (fail, run bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.prefix == "" || !strings.HasPrefix(query, f.prefix) {
		return false, true
	}
	f.prefix = ""
	return true, f.applied
}

type faultConnector struct {
	driver.Connector
	f *faults
}

func (c faultConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return faultConn{conn, c.f}, nil
}

type faultConn struct {
	driver.Conn
	f *faults
}

func (c faultConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	fail, run := c.f.take(query)
	var res driver.Result
	var err error
	if run {
		res, err = c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
	}
	if fail {
		return nil, mysql.ErrInvalidConn
	}
	return res, err
}

func (c faultConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	fail, run := c.f.take(query)
	if fail {
		if run {
			if rows, err := c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args); err == nil {
				rows.Close()
			}
		}
		return nil, mysql.ErrInvalidConn
	}
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
}

// TestLostConnection checks that a statement whose answer is lost is never
// applied twice, and that Consume and Cooldown tell their own lost write
// from someone else's.
// faultyDB opens the test database through a connector whose faults the
// test sets.
func faultyDB(t *testing.T) (*bun.DB, *faults) {
	t.Helper()
	cfg, err := mysql.ParseDSN(testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &faults{}
	db := bun.NewDB(sql.OpenDB(faultConnector{conn, f}), mysqldialect.New())
	t.Cleanup(func() { db.Close() })
	return db, f
}

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
		f.arm("INSERT INTO", applied)
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
	f.arm("SELECT", true)
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
		f.arm("DELETE", false)
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
		f.arm("DELETE", true)
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
		f.arm("INSERT INTO", applied)
		if ok, err := s.Cooldown(ctx, key, "", base, base.Add(time.Minute)); err != nil || !ok {
			t.Fatalf("Cooldown after a lost answer (applied %v) = %v, %v; want true", applied, ok, err)
		}
		if ok, err := s.Cooldown(ctx, key, "", base.Add(time.Second), base.Add(time.Minute)); err != nil || ok {
			t.Fatalf("Cooldown while running = %v, %v; want false", ok, err)
		}
	}
}
