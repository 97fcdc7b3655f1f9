package mysqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/go-sql-driver/mysql"
)

// MySQL and MariaDB error numbers the store treats as transient.
const (
	errLockWaitTimeout   = 1205 // ER_LOCK_WAIT_TIMEOUT: the statement was rolled back
	errDeadlock          = 1213 // ER_LOCK_DEADLOCK, also a Galera certification conflict
	errNodeNotReady      = 1047 // Galera: "WSREP has not yet prepared node for application use"; nothing ran
	errServerShutdown    = 1053 // ER_SERVER_SHUTDOWN
	errConnectionKilled  = 1927 // ER_CONNECTION_KILLED (MariaDB)
	errClientInteraction = 4031 // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8.0.24+)
	errServerGone        = 2006 // CR_SERVER_GONE_ERROR, from proxies and other clients
	errServerLost        = 2013 // CR_SERVER_LOST
)

// retry runs f as the store retries statements: see [sqlretry.Retrier].
func (s *Store) retry(ctx context.Context, op string, f func() error) error {
	return s.retrier.Run(ctx, op, f)
}

// transient reports whether err is worth retrying: a deadlock (on Galera
// also a certification conflict), a lock wait timeout, a Galera node that
// is not ready (joining, or cut off from the cluster's primary component)
// or a lost connection. Context errors never are.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case errDeadlock, errLockWaitTimeout, errNodeNotReady,
			errServerShutdown, errConnectionKilled, errClientInteraction, errServerGone, errServerLost:
			return true
		}
		return false
	}
	return lostConnection(err)
}

// lostConnection reports whether err says the connection to the server
// broke or could not be made.
func lostConnection(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// mayHaveApplied reports whether a statement that failed with err may
// still have taken effect: the connection broke after the statement could
// have reached the server. A deadlock or lock wait timeout (on Galera, a
// certification conflict too) rolled it back; a Galera node that is not
// ready refused it before running it; driver.ErrBadConn and a failed dial
// mean it was never sent.
func mayHaveApplied(err error) bool {
	if !transient(err) || errors.Is(err, driver.ErrBadConn) {
		return false
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) && (me.Number == errDeadlock || me.Number == errLockWaitTimeout || me.Number == errNodeNotReady) {
		return false
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return false
	}
	return true
}
