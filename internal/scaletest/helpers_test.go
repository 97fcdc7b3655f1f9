package scaletest

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/passreset/passreset/internal/proctest"
	"github.com/passreset/passreset/internal/sqlstore/sqlstoretest"
	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/mysqlstore"
	"github.com/passreset/passreset/store/pgstore"
)

const benchEnv = "PASSRESET_SCALE_BENCH"

// kind is one SQL store: where its DSN comes from, how to open its
// database as the store's package documentation says, and how to make a
// store on tables named with a prefix.
type kind struct {
	name, env, script string
	open              func(dsn string) (*bun.DB, error)
	make              func(db *bun.DB, prefix string) (store, error)
	tables            string // the query listing the current schema's tables
}

// store is what the measurements need of a store.
type store interface {
	proctest.Store
	Migrate(context.Context) error
	Check(context.Context) error
}

var kinds = []kind{
	{"mysql", "PASSRESET_MYSQL_DSN", "mariadb.sh",
		func(dsn string) (*bun.DB, error) {
			sqldb, err := sql.Open("mysql", dsn)
			if err != nil {
				return nil, err
			}
			return bun.NewDB(sqldb, mysqldialect.New(mysqldialect.WithTimeLocation("UTC"))), nil
		},
		func(db *bun.DB, prefix string) (store, error) {
			return mysqlstore.New(db, mysqlstore.Options{TablePrefix: prefix})
		},
		"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"},
	{"pg", "PASSRESET_PG_DSN", "postgres.sh",
		func(dsn string) (*bun.DB, error) {
			cfg, err := pgx.ParseConfig(dsn)
			if err != nil {
				return nil, err
			}
			return bun.NewDB(stdlib.OpenDB(*cfg), pgdialect.New()), nil
		},
		func(db *bun.DB, prefix string) (store, error) {
			return pgstore.New(db, pgstore.Options{TablePrefix: prefix})
		},
		"SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"},
}

// kindNamed returns the kind called name.
func kindNamed(name string) (kind, error) {
	for _, k := range kinds {
		if k.name == name {
			return k, nil
		}
	}
	return kind{}, fmt.Errorf("no store kind %q", name)
}

// eachKind runs f as a subtest (a sub-benchmark) for each store.
func eachKind[T interface {
	testing.TB
	Run(string, func(T)) bool
}](tb T, f func(T, kind)) {
	for _, k := range kinds {
		tb.Run(k.name, func(tb T) { f(tb, k) })
	}
}

// dsn returns the kind's DSN, or skips tb (fails it under CI=true;
// benchmarks always skip).
func (k kind) dsn(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(k.env)
	if dsn == "" {
		msg := k.env + ` is not set, so the delivery-at-scale tests do not run on this store; start a server with: export ` + k.env + `="$(scripts/` + k.script + ` start | tail -n 1)"`
		if _, bench := tb.(*testing.B); os.Getenv("CI") == "true" && !bench {
			tb.Fatal(msg + " (CI=true: a skipped test is a failure)")
		}
		tb.Skip(msg)
	}
	return dsn
}

// needBench skips the long part of a benchmark unless PASSRESET_SCALE_BENCH=1.
func needBench(b *testing.B) {
	b.Helper()
	if os.Getenv(benchEnv) != "1" {
		b.Skip(benchEnv + "=1 is not set: this measurement takes minutes (see BENCHMARKS.md, \"Delivery at scale\")")
	}
}

// newStore returns a checked store with its own pool on the tables with
// prefix, closed when tb ends.
func newStore(tb testing.TB, k kind, dsn, prefix string) store {
	tb.Helper()
	db, err := k.open(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	s, err := k.make(db, prefix)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Check(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return s
}

// newTables creates a store's tables under a new prefix, drops them when
// tb ends, and returns the prefix.
func newTables(tb testing.TB, k kind, dsn string) string {
	tb.Helper()
	prefix := sqlstoretest.NewPrefix()
	db, err := k.open(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { dropTables(tb, k, db, prefix); db.Close() })
	s, err := k.make(db, prefix)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return prefix
}

// dropTables drops every table whose name starts with prefix.
func dropTables(tb testing.TB, k kind, db *bun.DB, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := db.QueryContext(ctx, k.tables)
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
			names = append(names, n)
		}
	}
	rows.Close()
	for _, n := range names {
		if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS ?", bun.Ident(n)); err != nil {
			tb.Errorf("dropping test tables: %v", err)
		}
	}
}

// addr is the address of account i.
func addr(i int) string { return fmt.Sprintf("user%d@example.com", i) }

// seedUsers adds accounts user0..user<n-1>@example.com.
func seedUsers(n int) *resettest.Users {
	u := &resettest.Users{}
	for i := range n {
		u.Add(fmt.Sprintf("user%d", i), addr(i), "old password")
	}
	return u
}

// sendOnly hides the Mailer's SendBatch (one message per API call) and
// keeps its advertised rate.
type sendOnly struct{ m *resendmailer.Mailer }

var _ reset.RateLimitedMailer = sendOnly{}

func (s sendOnly) Send(ctx context.Context, msg reset.Message) error { return s.m.Send(ctx, msg) }
func (s sendOnly) ProviderRate() (float64, int)                      { return s.m.ProviderRate() }

// newMailer is the Resend mailer at the fake's URL with the mailer's
// default rate (2 a second, which it advertises to the outbox) and
// timeout (0: the default);
// single hides SendBatch.
func newMailer(url string, timeout time.Duration, single bool) (reset.Mailer, error) {
	m, err := resendmailer.New(resendmailer.Options{APIKey: resendtest.APIKey, From: "Reset <reset@example.com>",
		BaseURL: url, Timeout: timeout})
	if err != nil {
		return nil, err
	}
	if single {
		return sendOnly{m}, nil
	}
	return m, nil
}

var sealKey = outbox.SealKey{ID: "scale", Key: []byte("0123456789abcdef0123456789abcdef")}

// instance is an instance of the application on store, with the outbox
// (opt) as its queue; edit, when not nil, changes the Service's
// configuration. It is shut down when tb ends.
func instance(tb testing.TB, store store, users reset.Users, mailer reset.Mailer, opt outbox.Options, edit func(*reset.Config)) *proctest.Instance {
	tb.Helper()
	in, err := proctest.NewInstance(store, users, mailer, sealKey, opt, edit)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { in.Service.Shutdown(context.Background()) })
	return in
}

// enqueue queues a reset request for accounts 0..n-1 through svc, 16 at a
// time.
func enqueue(tb testing.TB, in *proctest.Instance, n int) {
	tb.Helper()
	var wg sync.WaitGroup
	next := make(chan int)
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				if err := in.Service.Request(context.Background(), addr(i), ""); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range n {
		select {
		case next <- i:
		case err := <-errs:
			tb.Fatal(err)
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatal(err)
	}
	r, err := in.Outbox.Report(context.Background())
	if err != nil || r.Pending != n {
		tb.Fatalf("outbox after queueing %d: %+v, %v", n, r, err)
	}
}

// onceEach checks that the fake accepted exactly one email for each of
// accounts 0..n-1 and no other, and returns the emails.
func onceEach(tb testing.TB, fake *resendtest.Server, n int) []resendtest.Email {
	tb.Helper()
	emails := fake.Emails()
	seen := map[string]int{}
	for _, e := range emails {
		seen[strings.Join(e.To, ",")]++
	}
	for i := range n {
		if c := seen[addr(i)]; c != 1 {
			tb.Fatalf("%s got %d emails, want 1", addr(i), c)
		}
	}
	if len(emails) != n {
		tb.Fatalf("%d emails accepted, want %d", len(emails), n)
	}
	return emails
}

// The worker processes read their settings from these variables.
const (
	childEnv       = "PASSRESET_SCALE_CHILD"   // set to "worker" in a worker process
	childKindEnv   = "PASSRESET_SCALE_KIND"    // the store kind's name
	childDSNEnv    = "PASSRESET_SCALE_DSN"     // its DSN
	childPrefixEnv = "PASSRESET_SCALE_PREFIX"  // the tables' prefix
	childUsersEnv  = "PASSRESET_SCALE_USERS"   // accounts user0..user<n-1>@example.com
	childResendEnv = "PASSRESET_SCALE_RESEND"  // the fake Resend's URL
	childSingleEnv = "PASSRESET_SCALE_SINGLE"  // "1": one message per API call
	childWorkerEnv = "PASSRESET_SCALE_WORKERS" // outbox.Options.Workers
)

// TestWorkerProcess is not a test: it is a worker process of the
// benchmarks. It prints "READY", waits for a line on stdin, runs
// the outbox until stdin closes, then prints "SENT <n>".
func TestWorkerProcess(t *testing.T) {
	if os.Getenv(childEnv) != "worker" {
		return
	}
	if err := runWorker(); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runWorker() error {
	k, err := kindNamed(os.Getenv(childKindEnv))
	if err != nil {
		return err
	}
	db, err := k.open(os.Getenv(childDSNEnv))
	if err != nil {
		return err
	}
	store, err := k.make(db, os.Getenv(childPrefixEnv))
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(os.Getenv(childUsersEnv))
	if err != nil {
		return err
	}
	mailer, err := newMailer(os.Getenv(childResendEnv), 0, os.Getenv(childSingleEnv) == "1")
	if err != nil {
		return err
	}
	opt := outbox.Options{WorkerID: fmt.Sprintf("pid%d", os.Getpid())}
	opt.Workers, _ = strconv.Atoi(os.Getenv(childWorkerEnv))
	in, err := proctest.NewInstance(store, seedUsers(n), mailer, sealKey, opt, nil)
	if err != nil {
		return err
	}
	return proctest.ServeWorker(in)
}

// worker is a running worker process.
type worker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

// workerSettings are a worker process's settings.
type workerSettings struct {
	kind                   kind
	dsn, prefix, resendURL string
	users, workers         int
	single                 bool
}

// startWorker starts a worker process and waits for its READY; it is
// killed when tb ends if still running.
func startWorker(tb testing.TB, ws workerSettings) *worker {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWorkerProcess$")
	single := "0"
	if ws.single {
		single = "1"
	}
	cmd.Env = append(os.Environ(), childEnv+"=worker", childKindEnv+"="+ws.kind.name, childDSNEnv+"="+ws.dsn,
		childPrefixEnv+"="+ws.prefix, childUsersEnv+"="+strconv.Itoa(ws.users), childResendEnv+"="+ws.resendURL,
		childSingleEnv+"="+single, childWorkerEnv+"="+strconv.Itoa(ws.workers))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	w := &worker{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	tb.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	if !w.out.Scan() || w.out.Text() != "READY" {
		tb.Fatalf("worker process did not start: %q %v", w.out.Text(), w.out.Err())
	}
	return w
}

// start tells the worker to run its outbox workers.
func (w *worker) start(tb testing.TB) {
	tb.Helper()
	if _, err := io.WriteString(w.stdin, "go\n"); err != nil {
		tb.Fatal(err)
	}
}

// stop closes the worker's stdin, which cancels the context of its
// outbox's Run (a graceful stop), and waits for it to finish; it returns
// how many messages it sent.
func (w *worker) stop(tb testing.TB) int {
	tb.Helper()
	w.stdin.Close()
	sent := -1
	for w.out.Scan() {
		if v, ok := strings.CutPrefix(w.out.Text(), "SENT "); ok {
			sent, _ = strconv.Atoi(v)
		}
	}
	if err := w.cmd.Wait(); err != nil {
		tb.Fatalf("worker process: %v", err)
	}
	return sent
}

// kill ends the worker with SIGKILL and returns when it did.
func (w *worker) kill(tb testing.TB) time.Time {
	tb.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		tb.Fatal(err)
	}
	at := time.Now()
	w.cmd.Wait()
	return at
}
