package clustertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/mysqlstore"
)

const (
	dsnsEnv   = "PASSRESET_GALERA_DSNS"
	scriptEnv = "PASSRESET_GALERA_SCRIPT"
)

const startHint = `export ` + dsnsEnv + `="$(scripts/galera.sh start | tail -n 3 | tr '\n' ' ')"; ` +
	`export ` + scriptEnv + `=$PWD/scripts/galera.sh`

// skipOrFail skips tb with msg, or fails it under CI=true (benchmarks
// always skip).
func skipOrFail(tb testing.TB, msg string) {
	tb.Helper()
	if _, bench := tb.(*testing.B); os.Getenv("CI") == "true" && !bench {
		tb.Fatal(msg + " (CI=true: a skipped cluster test is a failure)")
	}
	tb.Skip(msg)
}

// cluster is the Galera cluster under test.
type cluster struct {
	dsns []string // one per node; dsns[0] is node 1
}

// getCluster returns the cluster named by PASSRESET_GALERA_DSNS, or skips.
func getCluster(tb testing.TB) *cluster {
	tb.Helper()
	dsns := strings.Fields(os.Getenv(dsnsEnv))
	if len(dsns) == 0 {
		skipOrFail(tb, dsnsEnv+" is not set, so the Galera cluster tests do not run; start a cluster with "+startHint)
	}
	if len(dsns) != 3 {
		tb.Fatalf("%s holds %d DSNs, want 3 (one per node, separated by spaces)", dsnsEnv, len(dsns))
	}
	return &cluster{dsns: dsns}
}

// withSyncWait returns the cluster with wsrep_sync_wait=v in every DSN, or
// without the setting if v is "".
func (c *cluster) withSyncWait(tb testing.TB, v string) *cluster {
	tb.Helper()
	out := &cluster{}
	for _, dsn := range c.dsns {
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			tb.Fatal(err)
		}
		delete(cfg.Params, "wsrep_sync_wait")
		if v != "" {
			if cfg.Params == nil {
				cfg.Params = map[string]string{}
			}
			cfg.Params["wsrep_sync_wait"] = v
		}
		out.dsns = append(out.dsns, cfg.FormatDSN())
	}
	return out
}

// galeraScript returns the path of scripts/galera.sh, or skips.
func galeraScript(tb testing.TB) string {
	tb.Helper()
	p := os.Getenv(scriptEnv)
	if p == "" {
		skipOrFail(tb, scriptEnv+" (the path of scripts/galera.sh) is not set, so the node failure test does not run; "+startHint)
	}
	return p
}

// runScript runs scripts/galera.sh with args, bounded by timeout, and
// returns its standard output.
func runScript(tb testing.TB, script string, timeout time.Duration, args ...string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", script, strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out)
}

// counters counts what the store's statements ran into, through a bun
// query hook on every *bun.DB a test opens: each failed statement is one
// attempt that the store retried or gave up on.
type counters struct {
	deadlocks atomic.Int64 // 1213: deadlocks and certification conflicts
	notReady  atomic.Int64 // 1047: a node not ready
	other     atomic.Int64 // any other error (lost connections, ...)
}

func (c *counters) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (c *counters) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	if e.Err == nil || errors.Is(e.Err, sql.ErrNoRows) ||
		errors.Is(e.Err, context.Canceled) || errors.Is(e.Err, context.DeadlineExceeded) {
		return // not a failure: no row, or the caller stopped
	}
	var me *mysql.MySQLError
	switch {
	case errors.As(e.Err, &me) && me.Number == 1213:
		c.deadlocks.Add(1)
	case errors.As(e.Err, &me) && me.Number == 1047:
		c.notReady.Add(1)
	default:
		c.other.Add(1)
	}
}

func (c *counters) String() string {
	return fmt.Sprintf("%d deadlocks/certification conflicts (1213), %d node-not-ready (1047), %d other failed statements",
		c.deadlocks.Load(), c.notReady.Load(), c.other.Load())
}

// openDB opens a *bun.DB on dsn, built as the mysqlstore documentation
// says, with the counters' hook, and closes it when tb ends.
func openDB(tb testing.TB, dsn string, cnt *counters) *bun.DB {
	tb.Helper()
	sqldb, err := sql.Open("mysql", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	db := bun.NewDB(sqldb, mysqldialect.New(mysqldialect.WithTimeLocation("UTC")))
	tb.Cleanup(func() { db.Close() })
	if cnt != nil {
		return db.WithQueryHook(cnt) // a copy on the same pool
	}
	return db
}

// newPrefix returns a table prefix of the test's own.
func newPrefix() string {
	var b [5]byte
	rand.Read(b[:])
	return "c" + hex.EncodeToString(b[:]) + "_"
}

// newTables creates a store's tables under a new prefix through node 1,
// drops every table with that prefix when tb ends, and returns the prefix.
func newTables(tb testing.TB, c *cluster) string {
	tb.Helper()
	prefix := newPrefix()
	db := openDB(tb, c.dsns[0], nil)
	s, err := mysqlstore.New(db, mysqlstore.Options{TablePrefix: prefix})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { dropTables(tb, db, prefix) })
	if err := s.Migrate(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return prefix
}

// dropTables drops every table whose name starts with prefix, whatever
// tables later schema versions add.
func dropTables(tb testing.TB, db *bun.DB, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
	if err != nil {
		tb.Errorf("listing test tables: %v", err)
		return
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			tb.Errorf("listing test tables: %v", err)
		}
		if strings.HasPrefix(n, prefix) {
			names = append(names, "`"+n+"`")
		}
	}
	rows.Close()
	if len(names) == 0 {
		return
	}
	if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+strings.Join(names, ", ")); err != nil {
		tb.Errorf("dropping test tables: %v", err)
	}
}

// stores returns one store per node on the tables with prefix, each
// checked (which refuses a Galera connection without wsrep_sync_wait=1).
func (c *cluster) stores(tb testing.TB, prefix string, cnt *counters, opts mysqlstore.Options) []*mysqlstore.Store {
	tb.Helper()
	opts.TablePrefix = prefix
	var out []*mysqlstore.Store
	for _, dsn := range c.dsns {
		s, err := mysqlstore.New(openDB(tb, dsn, cnt), opts)
		if err != nil {
			tb.Fatal(err)
		}
		if err := s.Check(context.Background()); err != nil {
			tb.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

const resetURL = "https://app.example.com/reset"

var discard = slog.New(slog.DiscardHandler)

// services returns one Service per store, sharing users and mailer as
// instances of one application share its user database and mail provider.
func services(tb testing.TB, stores []*mysqlstore.Store, users reset.Users, mailer reset.Mailer, edit func(*reset.Config)) []*reset.Service {
	tb.Helper()
	var out []*reset.Service
	for _, s := range stores {
		cfg := reset.Config{KeepSessions: true, Store: s, Users: users, Mailer: mailer, ResetURL: resetURL, Logger: discard}
		if edit != nil {
			edit(&cfg)
		}
		svc, err := reset.New(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { svc.Shutdown(context.Background()) })
		out = append(out, svc)
	}
	return out
}

// addUsers adds n users named <prefix><i> with address <prefix><i>@example.com.
func addUsers(u *resettest.Users, prefix string, n int) {
	for i := range n {
		id := fmt.Sprintf("%s%d", prefix, i)
		u.Add(id, id+"@example.com", "old password")
	}
}

// spread is a reset.Store (with the optional capabilities of the stores
// it spreads over) that sends every call to the next node in turn. Its
// outbox.Store methods are in outbox_test.go.
type spread struct {
	stores []*mysqlstore.Store
	next   atomic.Uint64
}

var (
	_ reset.Store      = (*spread)(nil)
	_ reset.Pruner     = (*spread)(nil)
	_ reset.Cooldowner = (*spread)(nil)
	_ reset.Quota      = (*spread)(nil)
	_ outbox.Store     = (*spread)(nil)
)

func (s *spread) pick() *mysqlstore.Store {
	return s.stores[(s.next.Add(1)-1)%uint64(len(s.stores))]
}

func (s *spread) Rotate(ctx context.Context, rec reset.Record) error {
	return s.pick().Rotate(ctx, rec)
}
func (s *spread) Lookup(ctx context.Context, h reset.Hash) (reset.Record, error) {
	return s.pick().Lookup(ctx, h)
}
func (s *spread) Consume(ctx context.Context, h reset.Hash) (reset.Record, error) {
	return s.pick().Consume(ctx, h)
}
func (s *spread) RevokeAll(ctx context.Context, userID string) error {
	return s.pick().RevokeAll(ctx, userID)
}
func (s *spread) Prune(ctx context.Context, now time.Time, limit int) (reset.Pruned, error) {
	return s.pick().Prune(ctx, now, limit)
}
func (s *spread) CooldownSecret(ctx context.Context) ([]byte, error) {
	return s.pick().CooldownSecret(ctx)
}
func (s *spread) Cooldown(ctx context.Context, key reset.Hash, owner string, now, until time.Time) (bool, error) {
	return s.pick().Cooldown(ctx, key, owner, now, until)
}
func (s *spread) Spend(ctx context.Context, key reset.Hash, owner string, now time.Time, window time.Duration, limit int) (bool, error) {
	return s.pick().Spend(ctx, key, owner, now, window, limit)
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
