package proctest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/httpadapter"
	"github.com/passreset/passreset/internal/sqlstore/sqlstoretest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
)

// Script is one of the project's scripts that start a database server
// (scripts/mariadb.sh, scripts/postgres.sh): "start" prints the DSN on its
// last line, "restart" and "stop" act on the server of the directory and
// port given in its environment.
type Script struct {
	Name    string // the server in messages: "MySQL", "PostgreSQL"
	Env     string // the variable that holds the script's path
	DirEnv  string // the script's variable for the server's directory
	PortEnv string // the script's variable for the server's port
}

// PrivateServer starts a server of the test's own with the script (so
// that stopping it disturbs no other test), stops it when t ends, and
// returns its DSN and a function that runs a subcommand of the script
// against it and returns the last line it printed. Without the script's
// variable the test is skipped, or fails under CI=true.
func PrivateServer(t *testing.T, sc Script) (string, func(cmd string) string) {
	t.Helper()
	script := os.Getenv(sc.Env)
	if script == "" {
		msg := sc.Env + " (the path of the script that starts a " + sc.Name + " server) is not set, so the server restart test does not run"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: a skipped " + sc.Name + " test is a failure)")
		}
		t.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	// Directly under the temporary directory: run as root, a script may
	// hand the directory to another user (postgres), who must reach it.
	dir, err := os.MkdirTemp("", "passreset-dbtest-")
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), sc.DirEnv+"="+dir, sc.PortEnv+"="+port)
	run := func(cmd string) string {
		t.Helper()
		c := exec.Command(script, cmd)
		c.Env = env
		var stderr bytes.Buffer
		c.Stderr = &stderr
		start := time.Now()
		out, err := c.Output()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", script, cmd, err, stderr.Bytes())
		}
		t.Logf("%s %s: %v", script, cmd, time.Since(start).Round(time.Millisecond))
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return lines[len(lines)-1]
	}
	t.Cleanup(func() {
		run("stop")
		os.RemoveAll(dir)
	})
	return run("start"), run
}

// Restart is a store's server restart test: see [Restart.Test].
type Restart struct {
	Script Script
	// New returns a new, migrated store with tables of its own on the
	// server at dsn, through one database handle kept for the whole test.
	New func(t *testing.T, dsn string) Store
	// Prefix is the store's error prefix: "mysqlstore", "pgstore".
	Prefix string
}

// Test restarts a private server under load, then stops it for a while:
// requests fail cleanly with the store's wrapped errors (the handler
// answers 503 to a public request with the durable outbox), retries end
// with the context, and everything works again afterwards with the same
// database handle, a token issued before the outage included.
func (r Restart) Test(t *testing.T) {
	dsn, run := PrivateServer(t, r.Script)
	s := r.New(t, dsn)
	svc, users, _ := sqlstoretest.NewService(t, s, "restart", nil)
	users.Add("kept", "kept@example.com", "old password")
	ctx := t.Context()

	kept, err := svc.RequestTrusted(ctx, reset.TrustedRequest{Email: "kept@example.com", SkipSend: true})
	if err != nil {
		t.Fatal(err)
	}
	request := func() error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := svc.RequestTrusted(ctx, reset.TrustedRequest{Email: "restart@example.com", SkipSend: true})
		return err
	}
	// checkClean: a failure during an outage is the store's wrapped
	// connection error, never a verdict about the token.
	checkClean := func(err error, op string) {
		t.Helper()
		if err == nil {
			return
		}
		if want := r.Prefix + ": " + op + ": "; !strings.Contains(err.Error(), want) || errors.Is(err, reset.ErrNotFound) ||
			errors.Is(err, reset.ErrInvalidToken) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s during the outage: %v, want a wrapped %s error", op, err, want)
		}
	}

	// 1. Restart under load.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, failed int
	warm := make(chan struct{}) // closed at the 20th success
	kinds := map[string]int{}   // distinct errors, without addresses and ports
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := request()
				checkClean(err, "rotate")
				mu.Lock()
				if err == nil {
					ok++
					if ok == 20 {
						close(warm)
					}
				} else {
					failed++
					msg := err.Error()
					if i := strings.LastIndex(msg, ": "); i >= 0 {
						msg = msg[i+2:]
					}
					kinds[msg]++
				}
				mu.Unlock()
				time.Sleep(time.Millisecond) // pacing of the load, not a wait for anything
			}
		})
	}
	// Let the load run before the restart: wait for a few successes.
	select {
	case <-warm:
	case <-t.Context().Done():
		t.Fatal("no request succeeded before the restart")
	}
	if got := run("restart"); got != dsn {
		t.Fatalf("restart printed DSN %q, want %q", got, dsn)
	}
	if err := request(); err != nil {
		t.Fatalf("Request right after the restart: %v", err)
	}
	close(stop)
	wg.Wait()
	t.Logf("during the restart: %d requests succeeded, %d failed cleanly: %v", ok, failed, kinds)

	// 2. Stopped: every operation fails quickly with a wrapped error, and
	// a public request through the handler with the durable outbox gets 503.
	run("stop")
	start := time.Now()
	err = request()
	if err == nil {
		t.Fatal("Request with the server stopped succeeded")
	}
	checkClean(err, "rotate")
	t.Logf("Request with the server stopped failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	// Bounded retries end it in about 2 s (logged above); the bound here
	// only catches retries that never end, on however loaded a machine.
	if time.Since(start) > time.Minute {
		t.Errorf("the failure took %v; retries must be bounded", time.Since(start))
	}
	_, err = svc.Inspect(ctx, resettest.Token(kept.Link))
	checkClean(err, "lookup")
	if err == nil {
		t.Fatal("Inspect with the server stopped succeeded")
	}
	// Complete looks the token up first, to check the password for its
	// account: that is where it fails.
	_, err = svc.Complete(ctx, reset.Completion{Token: resettest.Token(kept.Link), Password: "new passphrase for tests"})
	checkClean(err, "lookup")
	if err == nil {
		t.Fatal("Complete with the server stopped succeeded")
	}
	// The retries end with the context.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
	defer cancel()
	if _, err := s.Lookup(cctx, reset.Hash{}); err == nil ||
		!errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), r.Prefix+": lookup") {
		t.Errorf("Lookup with a short deadline: %v", err)
	}
	in, err := NewInstance(s, users, &resettest.Mailer{}, NewSealKey(), outbox.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	osvc := in.Service
	t.Cleanup(func() { osvc.Shutdown(context.Background()) })
	h, err := httpadapter.New(osvc, httpadapter.Options{RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, httpadapter.PasswordLostPath, strings.NewReader(`{"email":"kept@example.com"}`))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(w, req)
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("POST %s with the server stopped: %d %s, want 503", httpadapter.PasswordLostPath, w.Code, w.Body)
	}

	// 3. Started again: the same database handle works, and nothing was
	// lost.
	run("start")
	if err := request(); err != nil {
		t.Fatalf("Request after the server came back: %v", err)
	}
	if _, err := svc.Complete(ctx, reset.Completion{Token: resettest.Token(kept.Link), Password: "new passphrase for tests"}); err != nil {
		t.Fatalf("Complete with the token issued before the outage: %v", err)
	}
	if users.Password("kept") != "new passphrase for tests" {
		t.Fatal("password not changed")
	}
}
