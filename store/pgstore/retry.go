package pgstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// retry runs f as the store retries statements: see [sqlretry.Retrier].
func (s *Store) retry(ctx context.Context, op string, f func() error) error {
	return s.retrier.Run(ctx, op, f)
}

// sqlState returns the SQLSTATE of a server error, "" for other errors.
// It asks for the SQLState method that pgx's *pgconn.PgError (and
// lib/pq's *pq.Error) have.
func sqlState(err error) string {
	var e interface{ SQLState() string }
	if err != nil && errors.As(err, &e) {
		return e.SQLState()
	}
	return ""
}

// classifyReadOnly marks the server's refusal to write (25006
// read_only_sql_transaction, from a standby or a read-only session) with
// [ErrReadOnly].
func classifyReadOnly(err error) error {
	if sqlState(err) == "25006" && !errors.Is(err, ErrReadOnly) {
		return fmt.Errorf("%w: %w", ErrReadOnly, err)
	}
	return err
}

// SQLSTATEs the store retries.
const (
	stateSerialization  = "40001" // serialization_failure: rolled back
	stateDeadlock       = "40P01" // deadlock_detected: rolled back
	stateLockNotAvail   = "55P03" // lock_not_available (lock_timeout): rolled back
	stateAdminShutdown  = "57P01" // admin_shutdown: the server is stopping
	stateCrashShutdown  = "57P02" // crash_shutdown
	stateCannotConnect  = "57P03" // cannot_connect_now: starting up or shutting down; nothing ran
	classConnectionFail = "08"    // connection_exception
)

// transient reports whether err is worth retrying: a serialization
// failure, a deadlock, a lock timeout, a server starting or stopping, or a
// lost connection. Context errors never are, nor a read-only server.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if state := sqlState(err); state != "" {
		switch state {
		case stateSerialization, stateDeadlock, stateLockNotAvail,
			stateAdminShutdown, stateCrashShutdown, stateCannotConnect:
			return true
		}
		return strings.HasPrefix(state, classConnectionFail)
	}
	return lostConnection(err)
}

// lostConnection reports whether err says the connection to the server
// broke or could not be made.
func lostConnection(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgconn.SafeToRetry(err) ||
		errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// mayHaveApplied reports whether a statement that failed with err may
// still have taken effect: the connection broke after the statement could
// have reached the server. A serialization failure, deadlock or lock
// timeout rolled it back; a server that refused the connection, a failed
// dial and errors that pgx marks safe to retry mean it was never sent.
func mayHaveApplied(err error) bool {
	if !transient(err) || errors.Is(err, driver.ErrBadConn) || pgconn.SafeToRetry(err) {
		return false
	}
	switch sqlState(err) {
	case stateSerialization, stateDeadlock, stateLockNotAvail, stateCannotConnect:
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || errors.Is(err, syscall.ECONNREFUSED) {
		return false
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return false
	}
	return true
}
