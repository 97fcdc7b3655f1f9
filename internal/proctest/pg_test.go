package proctest_test

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/passreset/passreset/internal/storetest"
	"github.com/passreset/passreset/store/pgstore"
)

// procs runs the durability tests (kill -9 of the API process and of a
// worker mid-drain, several worker processes) on this store: see
// storetest.Processes.
var procs = storetest.Processes{
	New: func(t *testing.T) storetest.OutboxStore {
		return newStore(t, openDB(t, testDSN(t)), pgstore.Options{})
	},
	Open: func(ctx context.Context, prefix string) (storetest.OutboxStore, error) {
		cfg, err := pgx.ParseConfig(os.Getenv(dsnEnv))
		if err != nil {
			return nil, err
		}
		db := bun.NewDB(stdlib.OpenDB(*cfg), pgdialect.New())
		s, err := pgstore.New(db, pgstore.Options{TablePrefix: prefix})
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
