package proctest_test

import (
	"testing"

	"github.com/passreset/passreset/internal/storetest"
	"github.com/passreset/passreset/store/mysqlstore"
)

// mariadbScript starts a MariaDB server of a test's own.
var mariadbScript = storetest.Script{
	Name: "MySQL", Env: "PASSRESET_MARIADB_SCRIPT",
	DirEnv: "PASSRESET_MARIADB_DIR", PortEnv: "PASSRESET_MARIADB_PORT",
}

// TestServerRestart restarts the server under load, then stops it for a
// while: requests fail cleanly with wrapped errors and work again
// afterwards with the same *bun.DB (see storetest.Restart.Test).
func TestServerRestart(t *testing.T) {
	storetest.Restart{
		Script: mariadbScript,
		Prefix: "mysqlstore",
		New: func(t *testing.T, dsn string) storetest.OutboxStore {
			return newStore(t, openDB(t, dsn), mysqlstore.Options{})
		},
	}.Test(t)
}
