package mysqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/passreset/passreset/internal/sqlretry"
	"github.com/passreset/passreset/reset"
)

func TestClassification(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("connect: %w", syscall.ECONNREFUSED)}
	read := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	for _, c := range []struct {
		err              error
		transient, maybe bool
	}{
		{&mysql.MySQLError{Number: 1213, Message: "Deadlock found"}, true, false},
		{&mysql.MySQLError{Number: 1205, Message: "Lock wait timeout"}, true, false},
		{&mysql.MySQLError{Number: 1047, Message: "WSREP has not yet prepared node for application use"}, true, false},
		{&mysql.MySQLError{Number: 1053, Message: "Server shutdown in progress"}, true, true},
		{&mysql.MySQLError{Number: 2013}, true, true},
		{&mysql.MySQLError{Number: 1062, Message: "Duplicate entry"}, false, false},
		{&mysql.MySQLError{Number: 1146, Message: "Table doesn't exist"}, false, false},
		{driver.ErrBadConn, true, false},
		{mysql.ErrInvalidConn, true, true},
		{io.EOF, true, true},
		{dial, true, false},
		{read, true, true},
		{fmt.Errorf("wrapped: %w", &mysql.MySQLError{Number: 1213}), true, false},
		{context.Canceled, false, false},
		{context.DeadlineExceeded, false, false},
		{reset.ErrNotFound, false, false},
		{errors.New("something else"), false, false},
	} {
		if got := transient(c.err); got != c.transient {
			t.Errorf("transient(%v) = %v, want %v", c.err, got, c.transient)
		}
		if got := mayHaveApplied(c.err); got != c.maybe {
			t.Errorf("mayHaveApplied(%v) = %v, want %v", c.err, got, c.maybe)
		}
	}
}

func TestRetry(t *testing.T) {
	s := &Store{retrier: sqlretry.Retrier{Prefix: "mysqlstore", Attempts: 4, Delay: time.Millisecond, MaxDelay: maxRetryDelay, Transient: transient}}
	deadlock := &mysql.MySQLError{Number: 1213, Message: "Deadlock found"}
	ctx := t.Context()

	calls := 0
	err := s.retry(ctx, "rotate", func() error {
		calls++
		if calls < 3 {
			return deadlock
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("retry = %v after %d calls, want success after 3", err, calls)
	}

	calls = 0
	err = s.retry(ctx, "rotate", func() error { calls++; return deadlock })
	var me *mysql.MySQLError
	if calls != 4 || !errors.As(err, &me) || err.Error() != "mysqlstore: rotate: gave up after 4 attempts: "+deadlock.Error() {
		t.Fatalf("retry = %v after %d calls, want the wrapped deadlock after 4", err, calls)
	}

	calls = 0
	err = s.retry(ctx, "consume", func() error { calls++; return reset.ErrNotFound })
	if calls != 1 || !errors.Is(err, reset.ErrNotFound) || err.Error() != "mysqlstore: consume: reset: record not found" {
		t.Fatalf("retry = %v after %d calls, want the wrapped ErrNotFound at once", err, calls)
	}

	calls = 0
	err = s.retry(ctx, "consume", func() error { calls++; return sqlretry.Permanent{Err: fmt.Errorf("unknown: %w", mysql.ErrInvalidConn)} })
	if calls != 1 || !errors.Is(err, mysql.ErrInvalidConn) || err.Error() != "mysqlstore: consume: unknown: invalid connection" {
		t.Fatalf("retry = %v after %d calls, want the permanent error at once", err, calls)
	}

	// A context that ends during the backoff ends the retries: with an
	// hour between attempts, returning at all proves it.
	s = &Store{retrier: sqlretry.Retrier{Prefix: "mysqlstore", Attempts: 100, Delay: time.Hour, MaxDelay: maxRetryDelay, Transient: transient}}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.retry(cctx, "lookup", func() error { return mysql.ErrInvalidConn })
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, mysql.ErrInvalidConn) {
		t.Fatalf("retry with an ending context = %v after %v", err, time.Since(start))
	}
}
