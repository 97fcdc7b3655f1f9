package proctest_test

import (
	"testing"

	"github.com/passreset/passreset/internal/storetest"
	"github.com/passreset/passreset/store/pgstore"
)

// postgresScript starts a PostgreSQL server of a test's own.
var postgresScript = storetest.Script{
	Name: "PostgreSQL", Env: "PASSRESET_PG_SCRIPT",
	DirEnv: "PASSRESET_PG_DIR", PortEnv: "PASSRESET_PG_PORT",
}

// TestServerRestart restarts the server under load, then stops it for a
// while: requests fail cleanly with wrapped errors (the handler answers
// 503) and work again afterwards with the same *bun.DB (see
// storetest.Restart.Test).
func TestServerRestart(t *testing.T) {
	storetest.Restart{
		Script: postgresScript,
		Prefix: "pgstore",
		New: func(t *testing.T, dsn string) storetest.OutboxStore {
			return newStore(t, openDB(t, dsn), pgstore.Options{})
		},
	}.Test(t)
}
