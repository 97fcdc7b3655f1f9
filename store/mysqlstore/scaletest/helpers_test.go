package scaletest

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
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

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"

	"github.com/passreset/passreset/internal/proctest"
	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/mysqlstore"
)

const (
	dsnEnv   = "PASSRESET_MYSQL_DSN"
	benchEnv = "PASSRESET_SCALE_BENCH"
)

// getDSN returns PASSRESET_MYSQL_DSN, or skips tb (fails it under CI=true;
// benchmarks always skip).
func getDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		msg := dsnEnv + ` is not set, so the delivery-at-scale tests do not run; start a MariaDB with: export ` + dsnEnv + `="$(scripts/mariadb.sh dsn)"`
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

// openDB opens a *bun.DB (a pool of its own) on dsn, as the mysqlstore
// documentation says.
func openDB(dsn string) (*bun.DB, error) {
	sqldb, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, err
	}
	return bun.NewDB(sqldb, mysqldialect.New(mysqldialect.WithTimeLocation("UTC"))), nil
}

// newStore returns a checked store with its own pool on the tables with
// prefix, closed when tb ends.
func newStore(tb testing.TB, dsn, prefix string) *mysqlstore.Store {
	tb.Helper()
	db, err := openDB(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	s, err := mysqlstore.New(db, mysqlstore.Options{TablePrefix: prefix})
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
func newTables(tb testing.TB, dsn string) string {
	tb.Helper()
	var b [5]byte
	rand.Read(b[:])
	prefix := "s" + hex.EncodeToString(b[:]) + "_"
	db, err := openDB(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { dropTables(tb, db, prefix); db.Close() })
	s, err := mysqlstore.New(db, mysqlstore.Options{TablePrefix: prefix})
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return prefix
}

// dropTables drops every table whose name starts with prefix.
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
func instance(tb testing.TB, store *mysqlstore.Store, users reset.Users, mailer reset.Mailer, opt outbox.Options, edit func(*reset.Config)) *proctest.Instance {
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
	childPrefixEnv = "PASSRESET_SCALE_PREFIX"  // the tables' prefix
	childUsersEnv  = "PASSRESET_SCALE_USERS"   // accounts user0..user<n-1>@example.com
	childResendEnv = "PASSRESET_SCALE_RESEND"  // the fake Resend's URL
	childSingleEnv = "PASSRESET_SCALE_SINGLE"  // "1": one message per API call
	childLeaseEnv  = "PASSRESET_SCALE_LEASE"   // outbox.Options.Lease, or "" for the default
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
	db, err := openDB(os.Getenv(dsnEnv))
	if err != nil {
		return err
	}
	store, err := mysqlstore.New(db, mysqlstore.Options{TablePrefix: os.Getenv(childPrefixEnv)})
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
	if v := os.Getenv(childLeaseEnv); v != "" {
		if opt.Lease, err = time.ParseDuration(v); err != nil {
			return err
		}
	}
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
	prefix, resendURL string
	users, workers    int
	single            bool
	lease             time.Duration // 0: the default
}

// startWorker starts a worker process and waits for its READY; it is
// killed when tb ends if still running.
func startWorker(tb testing.TB, dsn string, ws workerSettings) *worker {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWorkerProcess$")
	single, lease := "0", ""
	if ws.single {
		single = "1"
	}
	if ws.lease > 0 {
		lease = ws.lease.String()
	}
	cmd.Env = append(os.Environ(), childEnv+"=worker", dsnEnv+"="+dsn, childPrefixEnv+"="+ws.prefix,
		childUsersEnv+"="+strconv.Itoa(ws.users), childResendEnv+"="+ws.resendURL, childSingleEnv+"="+single,
		childLeaseEnv+"="+lease, childWorkerEnv+"="+strconv.Itoa(ws.workers))
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

// stop closes the worker's stdin and waits for it to finish; it returns
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
