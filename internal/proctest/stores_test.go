package proctest_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/passreset/passreset/internal/proctest"
	"github.com/passreset/passreset/internal/sqlstore/sqlstoretest"
	"github.com/passreset/passreset/store/mysqlstore"
	"github.com/passreset/passreset/store/pgstore"
)

// dsn returns the DSN in env. Without one the test is skipped, or fails
// under CI=true.
func dsn(tb testing.TB, env, script string) string {
	tb.Helper()
	if d := os.Getenv(env); d != "" {
		return d
	}
	msg := fmt.Sprintf("%s is not set, so this test does not run; start a server with export %s=\"$(scripts/%s start | tail -n 1)\"", env, env, script)
	if _, bench := tb.(*testing.B); os.Getenv("CI") == "true" && !bench {
		tb.Fatal(msg + " (CI=true: a skipped database test is a failure)")
	}
	tb.Skip(msg)
	return ""
}

const (
	mysqlEnv = "PASSRESET_MYSQL_DSN"
	pgEnv    = "PASSRESET_PG_DSN"
)

// openMySQL and openPG open a database handle as the stores' package
// documentation says.
func openMySQL(d string) (*bun.DB, error) {
	sqldb, err := sql.Open("mysql", d)
	if err != nil {
		return nil, err
	}
	return bun.NewDB(sqldb, mysqldialect.New(mysqldialect.WithTimeLocation("UTC"))), nil
}

func openPG(d string) (*bun.DB, error) {
	cfg, err := pgx.ParseConfig(d)
	if err != nil {
		return nil, err
	}
	return bun.NewDB(stdlib.OpenDB(*cfg), pgdialect.New()), nil
}

// stores describes both SQL stores: how to open their database and make
// a store on tables named with a prefix.
var stores = []struct {
	name, env, script, prefix string
	open                      func(dsn string) (*bun.DB, error)
	make                      func(db bun.IDB, prefix string) (proctest.Store, error)
	drop                      func(db bun.IDB, prefix string) error
}{
	{"mysql", mysqlEnv, "mariadb.sh", "mysqlstore", openMySQL,
		func(db bun.IDB, prefix string) (proctest.Store, error) {
			return mysqlstore.New(db, mysqlstore.Options{TablePrefix: prefix})
		},
		func(db bun.IDB, p string) error {
			_, err := db.ExecContext(context.Background(), fmt.Sprintf(
				"DROP TABLE IF EXISTS `%[1]stokens`, `%[1]scooldowns`, `%[1]soutbox`, `%[1]sbudget`, `%[1]ssecrets`, `%[1]squotas`, `%[1]sschema_version`", p))
			return err
		}},
	{"pg", pgEnv, "postgres.sh", "pgstore", openPG,
		func(db bun.IDB, prefix string) (proctest.Store, error) {
			return pgstore.New(db, pgstore.Options{TablePrefix: prefix})
		},
		func(db bun.IDB, p string) error {
			for _, t := range []string{"tokens", "cooldowns", "outbox", "budget", "secrets", "quotas", "schema_version"} {
				if _, err := db.ExecContext(context.Background(), `DROP TABLE IF EXISTS "`+p+t+`"`); err != nil {
					return err
				}
			}
			return nil
		}},
}

// newStore returns a migrated store of kind i on tables of its own on the
// server at d, through one database handle, both dropped when t ends.
func newStore(t *testing.T, i int, d string) proctest.Store {
	t.Helper()
	k := stores[i]
	db, err := k.open(d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	prefix := sqlstoretest.NewPrefix()
	s, err := k.make(db, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k.drop(db, prefix); err != nil {
			t.Errorf("dropping test tables: %v", err)
		}
	})
	if err := s.(interface{ Migrate(context.Context) error }).Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// procs returns the durability tests' Processes on store kind i.
func procs(i int) proctest.Processes {
	k := stores[i]
	return proctest.Processes{
		Name: k.name,
		New:  func(t *testing.T) proctest.Store { return newStore(t, i, dsn(t, k.env, k.script)) },
		Open: func(ctx context.Context, prefix string) (proctest.Store, error) {
			db, err := k.open(os.Getenv(k.env))
			if err != nil {
				return nil, err
			}
			s, err := k.make(db, prefix)
			if err != nil {
				return nil, err
			}
			return s, s.(interface{ Check(context.Context) error }).Check(ctx)
		},
	}
}

// TestHelperProcess is not a test: it is the child process of the
// durability tests.
func TestHelperProcess(t *testing.T) { proctest.HelperProcess(t, procs(0), procs(1)) }

// each runs f as a subtest on each store.
func each(t *testing.T, f func(t *testing.T, i int)) {
	for i, k := range stores {
		t.Run(k.name, func(t *testing.T) { f(t, i) })
	}
}

func TestSurvivesKill(t *testing.T) {
	each(t, func(t *testing.T, i int) { procs(i).TestSurvivesKill(t) })
}

func TestWorkerKilledMidDrain(t *testing.T) {
	each(t, func(t *testing.T, i int) { procs(i).TestWorkerKilledMidDrain(t) })
}

func TestBatchWorkerKilledMidDrain(t *testing.T) {
	each(t, func(t *testing.T, i int) { procs(i).TestBatchWorkerKilledMidDrain(t) })
}

func TestWorkersInSeveralProcesses(t *testing.T) {
	each(t, func(t *testing.T, i int) { procs(i).TestWorkersInSeveralProcesses(t) })
}

func TestServerRestart(t *testing.T) {
	scripts := []proctest.Script{
		{Name: "MySQL", Env: "PASSRESET_MARIADB_SCRIPT", DirEnv: "PASSRESET_MARIADB_DIR", PortEnv: "PASSRESET_MARIADB_PORT"},
		{Name: "PostgreSQL", Env: "PASSRESET_PG_SCRIPT", DirEnv: "PASSRESET_PG_DIR", PortEnv: "PASSRESET_PG_PORT"},
	}
	each(t, func(t *testing.T, i int) {
		proctest.Restart{
			Script: scripts[i],
			Prefix: stores[i].prefix,
			New:    func(t *testing.T, d string) proctest.Store { return newStore(t, i, d) },
		}.Test(t)
	})
}

// TestFaults runs the fault-injection suite on both stores, with batches
// of 10 and with one email per call, 200 recipients each, the four at
// once (they spend most of their time waiting for leases and retries).
func TestFaults(t *testing.T) {
	const n = 200
	for i, k := range stores {
		for _, batch := range []int{0, 10} {
			t.Run(fmt.Sprintf("%s/batch=%d", k.name, batch), func(t *testing.T) {
				t.Parallel()
				procs(i).TestFaults(t, n, batch)
			})
		}
	}
}
