package pgstore_test

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
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/pgstore"
)

const scriptEnv = "PASSRESET_PG_SCRIPT"

// privateServer starts a PostgreSQL server of the test's own with the
// project's script (so that stopping it disturbs no other test), stops it
// when t ends, and returns the DSN and a function that runs a subcommand of
// the script against it.
func privateServer(t *testing.T) (string, func(cmd string) string) {
	t.Helper()
	script := os.Getenv(scriptEnv)
	if script == "" {
		msg := scriptEnv + " (the path of scripts/postgres.sh) is not set, so the server restart test does not run"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: a skipped PostgreSQL test is a failure)")
		}
		t.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	// Directly under the temporary directory: run as root, the script
	// hands the directory to the postgres user, who must reach it.
	dir, err := os.MkdirTemp("", "passreset-pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "PASSRESET_PG_DIR="+dir, "PASSRESET_PG_PORT="+port)
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

// TestServerRestart restarts the server under load, then stops it for a
// while: requests fail cleanly with wrapped errors (the handler answers
// 503) and work again afterwards with the same *bun.DB.
func TestServerRestart(t *testing.T) {
	dsn, run := privateServer(t)
	db := openDB(t, dsn)
	s := newStore(t, db, pgstore.Options{})
	svc, users, _ := newService(t, s, "restart", nil)
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
		if !strings.Contains(err.Error(), "pgstore: "+op+": ") || errors.Is(err, reset.ErrNotFound) ||
			errors.Is(err, reset.ErrInvalidToken) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s during the outage: %v, want a wrapped pgstore: %s: error", op, err, op)
		}
	}

	// 1. Restart under load.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, failed int
	warm := make(chan struct{}) // closed at the 20th success
	kinds := map[string]int{}   // distinct errors
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
	_, err = svc.Complete(ctx, reset.Completion{Token: resettest.Token(kept.Link), Password: "new password"})
	checkClean(err, "consume")
	if err == nil {
		t.Fatal("Complete with the server stopped succeeded")
	}
	osvc, err := reset.New(outboxConfig(s, users, &resettest.Mailer{}, newSealKey()))
	if err != nil {
		t.Fatal(err)
	}
	h, err := httpadapter.New(osvc, httpadapter.Options{RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, httpadapter.PasswordLostPath, strings.NewReader(`{"email":"kept@example.com"}`))
	r.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("POST %s with the server stopped: %d %s, want 503", httpadapter.PasswordLostPath, w.Code, w.Body)
	}

	// 3. Started again: the same *bun.DB works, and nothing was lost.
	run("start")
	if err := request(); err != nil {
		t.Fatalf("Request after the server came back: %v", err)
	}
	if _, err := svc.Complete(ctx, reset.Completion{Token: resettest.Token(kept.Link), Password: "new password"}); err != nil {
		t.Fatalf("Complete with the token issued before the outage: %v", err)
	}
	if users.Password("kept") != "new password" {
		t.Fatal("password not changed")
	}
}
