package sqlstoretest

import (
	"context"
	"database/sql/driver"
	"strings"
	"sync"
)

// Faults injects lost connections into a database/sql driver: the next
// statement that starts with the armed prefix fails with Lost, after it
// ran on the server (applied) or instead of running. The prefix "COMMIT"
// stands for the commit of a transaction, which then fails with Lost
// after committing (applied) or after rolling back. Wrap a driver's
// connector with [Faults.Connector] and open it with sql.OpenDB.
type Faults struct {
	// Lost is the error of a statement whose answer was lost, as the
	// driver reports a connection that broke while reading the answer.
	Lost error

	mu      sync.Mutex
	prefix  string
	applied bool
}

// Arm makes the next statement that starts with prefix fail, after
// running on the server if applied.
func (f *Faults) Arm(prefix string, applied bool) {
	f.mu.Lock()
	f.prefix, f.applied = prefix, applied
	f.mu.Unlock()
}

// take reports whether query must fail, and whether it runs first.
func (f *Faults) take(query string) (fail, run bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.prefix == "" || !strings.HasPrefix(query, f.prefix) {
		return false, true
	}
	f.prefix = ""
	return true, f.applied
}

// Connector returns c with the faults injected into its connections.
func (f *Faults) Connector(c driver.Connector) driver.Connector {
	return faultConnector{c, f}
}

type faultConnector struct {
	driver.Connector
	f *Faults
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
	f *Faults
}

func (c faultConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return faultTx{tx, c.f}, nil
}

type faultTx struct {
	driver.Tx
	f *Faults
}

func (t faultTx) Commit() error {
	fail, run := t.f.take("COMMIT")
	if !fail {
		return t.Tx.Commit()
	}
	if run {
		t.Tx.Commit()
	} else {
		t.Tx.Rollback()
	}
	return t.f.Lost
}

func (c faultConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	fail, run := c.f.take(query)
	var res driver.Result
	var err error
	if run {
		res, err = c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
	}
	if fail {
		return nil, c.f.Lost
	}
	return res, err
}

func (c faultConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	fail, run := c.f.take(query)
	if fail {
		if run {
			if rows, err := c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args); err == nil {
				dest := make([]driver.Value, len(rows.Columns()))
				for rows.Next(dest) == nil {
				}
				rows.Close()
			}
		}
		return nil, c.f.Lost
	}
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
}
