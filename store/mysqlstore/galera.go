package mysqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"
)

// errUnknownSystemVariable is ER_UNKNOWN_SYSTEM_VARIABLE: a server built
// without Galera (MySQL, for one) has no wsrep_* variables.
const errUnknownSystemVariable = 1193

// galeraQuery reads what checkCluster needs in one round trip.
const galeraQuery = "SELECT @@global.wsrep_on, @@session.wsrep_on, @@session.wsrep_sync_wait"

// syncWaitNeeded are the bits of wsrep_sync_wait the store needs: 1 makes
// reads (SELECT, SHOW, BEGIN) and 2 makes UPDATE and DELETE wait until
// the node has applied every write set the cluster committed before them.
const syncWaitNeeded = 1 | 2

// checkCluster refuses a connection to a Galera cluster node that the
// store cannot be correct on. A node that is part of a cluster has
// wsrep_on=ON globally; then this connection
//
//   - must keep wsrep_on=ON, or its writes would not be replicated at all;
//   - must set bits 1 and 2 of wsrep_sync_wait (unless
//     Options.AllowStaleReads). Without bit 1 a read may miss a write
//     committed through another node an instant before: a token issued by
//     one instance would look unknown to another. Without bit 2 an UPDATE
//     or DELETE may miss it too, and one that then matches no row writes
//     nothing, so certification cannot catch it: RevokeAll would leave a
//     token just issued through another node valid, and an outbox worker
//     would lose a lease it holds. INSERTs need no wait: the store's
//     INSERTs always write their row, and a write based on a stale row
//     fails certification (1213) and is retried.
//
// The setting is per session, so only the DSN can make it hold for every
// pooled connection: go-sql-driver/mysql runs SET wsrep_sync_wait=3 on
// each new connection when the DSN has wsrep_sync_wait=3. checkCluster
// reads one connection of the pool, which has the DSN's settings like all
// the others. It reports whether the server is a cluster node.
func (s *Store) checkCluster(ctx context.Context) (node bool, err error) {
	var globalOn, sessionOn, syncWait int64
	err = s.db.QueryRowContext(ctx, galeraQuery).Scan(&globalOn, &sessionOn, &syncWait)
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == errUnknownSystemVariable {
		return false, nil // not a Galera build
	}
	if err != nil {
		return false, err
	}
	return globalOn != 0, clusterProblem(globalOn != 0, sessionOn != 0, syncWait, s.allowStale)
}

// clusterProblem judges the wsrep settings of a connection.
func clusterProblem(globalOn, sessionOn bool, syncWait int64, allowStale bool) error {
	switch {
	case !globalOn:
		return nil // not a cluster node
	case !sessionOn:
		return errors.New("the server is a Galera cluster node but this connection has wsrep_on=OFF, " +
			"so its writes would not be replicated to the other nodes: do not turn wsrep_on off for the store's connections")
	case syncWait&syncWaitNeeded != syncWaitNeeded && !allowStale:
		return fmt.Errorf("the server is a Galera cluster node (wsrep_on=ON) but this connection has wsrep_sync_wait=%d, "+
			"so a read, UPDATE or DELETE may miss a token just written through another node: add wsrep_sync_wait=3 to the DSN "+
			"(or set Options.AllowStaleReads, which is unsafe unless every instance uses the same node)", syncWait)
	}
	return nil
}
