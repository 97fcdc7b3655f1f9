package proctest_test

import (
	"context"
	"database/sql"
	"os"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"

	"github.com/passreset/passreset/internal/storetest"
	"github.com/passreset/passreset/store/mysqlstore"
)

// procs runs the durability tests (kill -9 of the API process and of a
// worker mid-drain, several worker processes) on this store: see
// storetest.Processes.
var procs = storetest.Processes{
	New: func(t *testing.T) storetest.OutboxStore {
		return newStore(t, openDB(t, testDSN(t)), mysqlstore.Options{})
	},
	Open: func(ctx context.Context, prefix string) (storetest.OutboxStore, error) {
		sqldb, err := sql.Open("mysql", os.Getenv(dsnEnv))
		if err != nil {
			return nil, err
		}
		db := bun.NewDB(sqldb, mysqldialect.New(mysqldialect.WithTimeLocation("UTC")))
		s, err := mysqlstore.New(db, mysqlstore.Options{TablePrefix: prefix})
		if err != nil {
			return nil, err
		}
		return s, s.Check(ctx)
	},
}

// TestOutboxHelperProcess is not a test: it is the child process of the
// durability tests.
func TestOutboxHelperProcess(t *testing.T) { procs.HelperProcess(t) }

func TestOutboxSurvivesKill(t *testing.T)              { procs.TestSurvivesKill(t) }
func TestOutboxWorkerKilledMidDrain(t *testing.T)      { procs.TestWorkerKilledMidDrain(t) }
func TestOutboxBatchWorkerKilledMidDrain(t *testing.T) { procs.TestBatchWorkerKilledMidDrain(t) }
func TestOutboxWorkersInSeveralProcesses(t *testing.T) { procs.TestWorkersInSeveralProcesses(t) }
