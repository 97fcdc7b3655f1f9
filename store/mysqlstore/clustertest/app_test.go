package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"

	"github.com/passreset/passreset/httpadapter"
	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/mysqlstore"
)

// The settings of an app instance, passed in its environment.
const (
	appEnv       = "PASSRESET_CLUSTERTEST_APP" // the instance's name; set only in an instance
	appDSNEnv    = "PASSRESET_CLUSTERTEST_DSN"
	appPrefixEnv = "PASSRESET_CLUSTERTEST_PREFIX"
	appResendEnv = "PASSRESET_CLUSTERTEST_RESEND_URL"
	appUsersEnv  = "PASSRESET_CLUSTERTEST_USERS"
)

// The client credentials of trusted callers.
const (
	clientID     = "clustertest"
	clientSecret = "clustertest-secret"
)

// appStats is what an instance reports when it ends.
type appStats struct {
	Deadlocks int64 // failed statements: 1213
	NotReady  int64 // 1047
	Other     int64 // anything else (lost connections during an outage)
	Failed    int64 // background work that failed (EventFailed, EventSendFailed)
}

// TestAppInstance is one app instance, run as a separate process by
// startInstances: a reset.Service on the store of one node, served by the
// httpadapter handler on 127.0.0.1, mailing through resendmailer to the
// fake Resend API of the parent. It prints "ADDR <host:port> PID <pid>",
// serves until its standard input ends, then shuts down (delivering the
// mail still queued) and prints "STATS <json>".
func TestAppInstance(t *testing.T) {
	name := os.Getenv(appEnv)
	if name == "" {
		t.Skip("the app instance of TestAppInstances and TestNodeFailure; it runs only in the processes they start")
	}
	if err := runApp(name); err != nil {
		t.Fatalf("app instance %s: %v", name, err)
	}
}

func runApp(name string) error {
	sqldb, err := sql.Open("mysql", os.Getenv(appDSNEnv))
	if err != nil {
		return err
	}
	var cnt counters
	db := bun.NewDB(sqldb, mysqldialect.New(mysqldialect.WithTimeLocation("UTC"))).WithQueryHook(&cnt)
	defer db.Close()
	store, err := mysqlstore.New(db, mysqlstore.Options{TablePrefix: os.Getenv(appPrefixEnv)})
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := store.Check(ctx); err != nil {
		return err
	}
	n, err := strconv.Atoi(os.Getenv(appUsersEnv))
	if err != nil {
		return fmt.Errorf("%s: %v", appUsersEnv, err)
	}
	users := &resettest.Users{}
	addUsers(users, "u", n)
	users.Add("probe", "probe@example.com", "old password")
	mailer, err := resendmailer.New(resendmailer.Options{
		APIKey:  resendtest.APIKey,
		From:    "Passreset <security@example.com>",
		BaseURL: os.Getenv(appResendEnv),
		Timeout: 5 * time.Second,
	})
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("instance", name)
	var failed atomic.Int64
	svc, err := reset.New(reset.Config{
		KeepSessions: true,
		Store:        store, Users: users, Mailer: mailer,
		ResetURL: resetURL, Logger: logger,
		OnEvent: func(e reset.Event) {
			if e.Kind == reset.EventFailed || e.Kind == reset.EventSendFailed {
				failed.Add(1)
			}
		},
	})
	if err != nil {
		return err
	}
	auth, err := httpadapter.BasicAuth(clientID, clientSecret)
	if err != nil {
		return err
	}
	h, err := httpadapter.New(svc, httpadapter.Options{
		Authorize: auth,
		RateLimit: -1, // one client makes every request: the per-client limit would refuse it
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Printf("ADDR %s PID %d\n", ln.Addr(), os.Getpid())

	io.Copy(io.Discard, os.Stdin) // until the parent closes it, or dies

	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("HTTP shutdown: %w", err)
	}
	if err := svc.Shutdown(sctx); err != nil {
		return fmt.Errorf("delivering the queued mail: %w", err)
	}
	b, err := json.Marshal(appStats{
		Deadlocks: cnt.deadlocks.Load(), NotReady: cnt.notReady.Load(), Other: cnt.other.Load(),
		Failed: failed.Load(),
	})
	if err != nil {
		return err
	}
	fmt.Printf("STATS %s\n", b)
	return nil
}

// instance is an app instance process.
type instance struct {
	name   string
	url    string // http://127.0.0.1:port
	pid    int
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // its standard output after the ADDR line
	stderr *syncBuffer
	done   chan struct{} // closed when the process has ended
	err    error         // its exit status, once done
}

// startInstances starts one app instance per node, on the tables with
// prefix, mailing to fake; users u0..u<users-1> and probe exist in each.
// They are stopped when t ends, if stopInstances did not stop them.
func startInstances(t *testing.T, c *cluster, prefix string, fake *resendtest.Server, users int) []*instance {
	t.Helper()
	var out []*instance
	for i, dsn := range c.dsns {
		inst := &instance{name: fmt.Sprintf("app%d", i+1), lines: make(chan string, 16), stderr: &syncBuffer{}, done: make(chan struct{})}
		cmd := exec.Command(os.Args[0], "-test.run=^TestAppInstance$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			appEnv+"="+inst.name, appDSNEnv+"="+dsn, appPrefixEnv+"="+prefix,
			appResendEnv+"="+fake.URL, appUsersEnv+"="+strconv.Itoa(users))
		cmd.Stderr = inst.stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if inst.stdin, err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		inst.cmd = cmd
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				inst.lines <- sc.Text()
			}
			close(inst.lines)
			inst.err = cmd.Wait()
			close(inst.done)
		}()
		t.Cleanup(func() {
			inst.stdin.Close()
			select {
			case <-inst.done:
			case <-time.After(time.Minute):
				cmd.Process.Kill()
				<-inst.done
			}
		})
		out = append(out, inst)
	}
	deadline := time.After(60 * time.Second)
	for _, inst := range out {
		for inst.url == "" {
			select {
			case line, ok := <-inst.lines:
				if !ok {
					<-inst.done
					t.Fatalf("%s ended before serving: %v\n%s", inst.name, inst.err, tail(inst.stderr.String(), 20))
				}
				var addr string
				if _, err := fmt.Sscanf(line, "ADDR %s PID %d", &addr, &inst.pid); err == nil {
					inst.url = "http://" + addr
				}
			case <-deadline:
				t.Fatalf("%s did not print its address within 60s\n%s", inst.name, tail(inst.stderr.String(), 20))
			}
		}
	}
	return out
}

// stopInstances ends every instance's input, waits until each has
// delivered its queued mail and ended, and returns their stats.
func stopInstances(t *testing.T, insts []*instance) []appStats {
	t.Helper()
	for _, inst := range insts {
		inst.stdin.Close()
	}
	var out []appStats
	deadline := time.After(90 * time.Second)
	for _, inst := range insts {
		var st appStats
		got := false
		for line := range inst.lines {
			if js, ok := strings.CutPrefix(line, "STATS "); ok {
				if err := json.Unmarshal([]byte(js), &st); err != nil {
					t.Errorf("%s: %v", inst.name, err)
				}
				got = true
			}
		}
		select {
		case <-inst.done:
		case <-deadline:
			t.Fatalf("%s did not end within 90s", inst.name)
		}
		if inst.err != nil || !got {
			t.Errorf("%s ended with %v, stats reported: %v\n%s", inst.name, inst.err, got, tail(inst.stderr.String(), 30))
		}
		out = append(out, st)
	}
	return out
}

// client is the one client of the app instances.
type client struct {
	hc *http.Client
}

func newClient() *client {
	return &client{hc: &http.Client{
		Timeout:   15 * time.Second, // no request may hang longer
		Transport: &http.Transport{MaxIdleConnsPerHost: 16},
	}}
}

// result is the outcome of one request.
type result struct {
	inst       int // 0-based
	step       string
	status     int // 0 when the request failed without an answer
	code       string
	err        error
	start, end time.Time
}

// post sends body to path of inst, as a trusted caller if trusted, and
// returns the result and the decoded JSON answer.
func (c *client) post(inst *instance, idx int, step, path string, trusted bool, body any) (result, map[string]any) {
	r := result{inst: idx, step: step, start: time.Now()}
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, inst.url+path, bytes.NewReader(b))
	if err != nil {
		r.err = err
		return r, nil
	}
	req.Header.Set("Content-Type", "application/json")
	if trusted {
		req.SetBasicAuth(clientID, clientSecret)
	}
	resp, err := c.hc.Do(req)
	r.end = time.Now()
	if err != nil {
		r.err = err
		return r, nil
	}
	defer resp.Body.Close()
	r.status = resp.StatusCode
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		r.err = fmt.Errorf("reading the answer: %w", err)
	}
	r.code, _ = out["code"].(string)
	r.end = time.Now()
	return r, out
}
