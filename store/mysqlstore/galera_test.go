package mysqlstore

import (
	"strings"
	"testing"
)

// TestClusterProblem covers the decision of Check on Galera settings; the
// tests in package clustertest run it against a real cluster.
func TestClusterProblem(t *testing.T) {
	for _, c := range []struct {
		globalOn, sessionOn bool
		syncWait            int64
		allowStale          bool
		want                string // part of the error; "" for none
	}{
		{false, false, 0, false, ""}, // not a Galera node: nothing to require
		{true, true, 3, false, ""},
		{true, true, 15, false, ""},
		{true, true, 0, false, "add wsrep_sync_wait=3 to the DSN"},
		{true, true, 1, false, "wsrep_sync_wait=1"},
		{true, true, 2, false, "wsrep_sync_wait=2"},
		{true, true, 5, false, "add wsrep_sync_wait=3"},
		{true, true, 0, true, ""},
		{true, false, 3, false, "wsrep_on=OFF"},
		{true, false, 3, true, "wsrep_on=OFF"}, // AllowStaleReads does not cover unreplicated writes
	} {
		err := clusterProblem(c.globalOn, c.sessionOn, c.syncWait, c.allowStale)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v, want no error", c, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v, want an error with %q", c, err, c.want)
		}
	}
}
