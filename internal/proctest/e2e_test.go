package proctest_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/httpadapter"
	"github.com/passreset/passreset/internal/proctest"
	"github.com/passreset/passreset/internal/sqlstore/sqlstoretest"
	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/mysqlstore"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/mysqldialect"
)

// TestOutboxProviderOutage: Resend (the local fake, through the real
// resendmailer with no retries of its own) answers 503 for two minutes of
// the fake clock, then recovers. Every message goes out afterwards, once,
// with one idempotency key each, and no faster than the mailer's pacing.
func TestOutboxProviderOutage(t *testing.T) {
	const n = 20
	d := dsn(t, mysqlEnv, "mariadb.sh")
	s := newStore(t, 0, d)
	db, err := openMySQL(d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := t.Context()
	clock := resettest.NewClock(sqlstoretest.Base)
	start := clock.Now()
	fake := resendtest.NewServer()
	t.Cleanup(fake.Close)
	fake.SetRateLimit(20, time.Second)
	fake.SetHook(func(resendtest.Request) resendtest.Fault {
		if clock.Now().Before(start.Add(2 * time.Minute)) {
			return resendtest.Fault{Status: http.StatusServiceUnavailable}
		}
		return resendtest.Fault{}
	})
	mailer, err := resendmailer.New(resendmailer.Options{APIKey: resendtest.APIKey, From: "Reset <reset@example.com>",
		BaseURL: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	users := &resettest.Users{}
	proctest.SeedUsers(users, n)
	in, err := proctest.NewInstance(s, users, proctest.SendOnly{Mailer: mailer}, proctest.NewSealKey(),
		outbox.Options{Rate: 20}, // the fake's limit
		func(c *reset.Config) { c.Now = clock.Now })
	if err != nil {
		t.Fatal(err)
	}
	svc := in.Service
	for i := range n {
		if err := svc.Request(ctx, fmt.Sprintf("user%d@example.com", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	began := time.Now()
	var atRest [][]byte // every outbox row during the outage, as stored
	for i := 0; len(fake.Emails()) < n; i++ {
		if i == 100 {
			t.Fatalf("%d of %d delivered after %v of fake time", len(fake.Emails()), n, clock.Now().Sub(start))
		}
		if _, err := in.Outbox.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			atRest = rawRows(t, db, s)
		}
		clock.Advance(5 * time.Second)
	}
	elapsed := time.Since(began)
	// No usable token at rest: the rows held sealed messages, and neither
	// a mailed token nor a link with a token in the clear.
	if len(atRest) != n {
		t.Fatalf("%d rows during the outage, want %d", len(atRest), n)
	}
	for _, row := range atRest {
		if bytes.Contains(row, []byte("token=")) {
			t.Fatal("an outbox row holds a link with a token")
		}
		for _, e := range fake.Emails() {
			if tok := resettest.Token(e.Text); tok == "" || bytes.Contains(row, []byte(tok)) {
				t.Fatalf("an outbox row holds the token mailed to %s", e.To[0])
			}
		}
	}
	reqs := fake.Requests()
	var failed, ok int
	keys := map[string]bool{}
	for _, r := range reqs {
		keys[r.IdempotencyKey] = true
		switch r.Status {
		case http.StatusServiceUnavailable:
			failed++
		case http.StatusOK:
			ok++
		}
	}
	t.Logf("%d requests in %v (%d answered 503, %d 200, %d 429); at most %d in one second",
		len(reqs), elapsed.Round(time.Millisecond), failed, ok, fake.RateLimited(), fake.MaxPerWindow())
	proctest.CheckDelivered(t, svc, fake, n)
	if failed < n {
		t.Errorf("only %d requests failed during the outage", failed)
	}
	if len(keys) != n {
		t.Errorf("%d idempotency keys for %d messages: a retry sent another message", len(keys), n)
	}
	// Pacing at 20/s, checked without depending on scheduling: the i-th
	// request (from 0) cannot arrive before i/20 s after the requests began
	// (a stall only delays them; per-window counts are logged above).
	arrived := make([]time.Time, 0, len(reqs))
	for _, r := range reqs {
		arrived = append(arrived, r.Received)
	}
	slices.SortFunc(arrived, time.Time.Compare)
	for i, at := range arrived {
		if earliest := began.Add(time.Duration(i) * time.Second / 20); at.Before(earliest.Add(-time.Millisecond)) {
			t.Fatalf("request %d arrived %v after the start, before the pace allows (%v)", i, at.Sub(began), earliest.Sub(began))
		}
	}
	r, err := in.Outbox.Report(ctx)
	if err != nil || r.Pending != 0 || r.Dead != 0 || in.Sent() != n {
		t.Fatalf("Report = %+v, %v; %d sent, want %d", r, err, in.Sent(), n)
	}
}

// rawRows returns every row of the store's outbox as the bytes of all its
// columns, and checks that each holds a sealed message.
func rawRows(t *testing.T, db *bun.DB, s proctest.Store) [][]byte {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), fmt.Sprintf("SELECT id, kind, sealed, key_id, last_error,"+
		" COALESCE(lease_owner, '') FROM `%soutbox`", s.TablePrefix()))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var cols [6][]byte
		if err := rows.Scan(&cols[0], &cols[1], &cols[2], &cols[3], &cols[4], &cols[5]); err != nil {
			t.Fatal(err)
		}
		if len(cols[2]) == 0 {
			t.Fatal("an envelope that was tried holds no sealed message")
		}
		out = append(out, bytes.Join(cols[:], []byte{0}))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOutboxStoreUnreachable: with the database down, a public request
// fails (the handler answers 503, never a silent 202), quickly; with the
// outbox full, it is dropped and counted (the answer does not change) and
// a trusted request fails with ErrQueueFull.
func TestOutboxStoreUnreachable(t *testing.T) {
	post := func(h http.Handler) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, httpadapter.PasswordLostPath, strings.NewReader(`{"email":"user0@example.com"}`))
		r.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(w, r)
		return w
	}
	handler := func(t *testing.T, s proctest.Store, maxPending int) (*proctest.Instance, http.Handler) {
		users := &resettest.Users{}
		proctest.SeedUsers(users, 1)
		in, err := proctest.NewInstance(s, users, &resettest.Mailer{}, proctest.NewSealKey(), outbox.Options{MaxPending: maxPending}, nil)
		if err != nil {
			t.Fatal(err)
		}
		h, err := httpadapter.New(in.Service, httpadapter.Options{RateLimit: -1})
		if err != nil {
			t.Fatal(err)
		}
		return in, h
	}

	t.Run("down", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close() // nothing listens there now
		sqldb, err := sql.Open("mysql", "passreset:passreset@tcp("+addr+")/passreset?timeout=1s")
		if err != nil {
			t.Fatal(err)
		}
		db := bun.NewDB(sqldb, offlineDialect{mysqldialect.New(), dialect.MySQL})
		t.Cleanup(func() { db.Close() })
		s, err := mysqlstore.New(db, mysqlstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		in, h := handler(t, s, 0)
		start := time.Now()
		err = in.Service.Request(t.Context(), "user0@example.com", "")
		if err == nil || errors.Is(err, reset.ErrQueueFull) || !strings.Contains(err.Error(), "mysqlstore: enqueue: ") {
			t.Fatalf("Request with the database down: %v, want the store's error", err)
		}
		t.Logf("failed after %v: %v", time.Since(start), err)
		if d := time.Since(start); d > time.Minute { // a bound on retries, not a speed
			t.Errorf("the failure took %v; retries must be bounded", d)
		}
		w := post(h)
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), httpadapter.CodeServiceUnavailable) {
			t.Fatalf("POST %s with the database down: %d %s, want 503", httpadapter.PasswordLostPath, w.Code, w.Body)
		}
	})

	t.Run("full", func(t *testing.T) {
		s := newStore(t, 0, dsn(t, mysqlEnv, "mariadb.sh"))
		in, h := handler(t, s, 1)
		svc := in.Service
		if w := post(h); w.Code != http.StatusAccepted {
			t.Fatalf("first request: %d %s", w.Code, w.Body)
		}
		// The Service counts the outbox in the background; count it now.
		if r, err := in.Outbox.Report(t.Context()); err != nil || r.Pending != 1 {
			t.Fatalf("Report = %+v, %v; want 1 pending", r, err)
		}
		if w := post(h); w.Code != http.StatusAccepted {
			t.Fatalf("request past MaxPending: %d %s, want the same 202", w.Code, w.Body)
		}
		if n := svc.Dropped(); n != 1 {
			t.Fatalf("Dropped = %d, want 1", n)
		}
		if st, err := s.Stats(t.Context(), 10); err != nil || st.Pending != 1 {
			t.Fatalf("Stats = %+v, %v; want the first request only", st, err)
		}
		_, err := svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: "user0@example.com"})
		if !errors.Is(err, reset.ErrQueueFull) {
			t.Fatalf("trusted request past MaxPending: %v, want ErrQueueFull", err)
		}
	})
}

// TestOutboxEndToEndInProcess runs the whole path in one process: public
// requests for accounts and for unknown addresses through the handler,
// the outbox's workers with the real Resend mailer against the fake, on
// each store.
func TestOutboxEndToEndInProcess(t *testing.T) {
	const n = 10
	each(t, func(t *testing.T, i int) {
		s := newStore(t, i, dsn(t, stores[i].env, stores[i].script))
		fake := resendtest.NewServer()
		t.Cleanup(fake.Close)
		mailer, err := resendmailer.New(resendmailer.Options{APIKey: resendtest.APIKey, From: "reset@example.com", BaseURL: fake.URL})
		if err != nil {
			t.Fatal(err)
		}
		users := &resettest.Users{}
		proctest.SeedUsers(users, n)
		in, err := proctest.NewInstance(s, users, mailer, proctest.NewSealKey(), outbox.Options{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		svc := in.Service
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- in.Outbox.Run(ctx) }()
		h, err := httpadapter.New(svc, httpadapter.Options{RateLimit: -1})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 * n {
			addr := fmt.Sprintf("user%d@example.com", i) // the second half has no account
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, httpadapter.PasswordLostPath, strings.NewReader(`{"email":"`+addr+`"}`))
			r.Header.Set("Content-Type", "application/json")
			h.ServeHTTP(w, r)
			if w.Code != http.StatusAccepted {
				t.Fatalf("%s: %d %s", addr, w.Code, w.Body)
			}
		}
		wctx, wcancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer wcancel()
		if _, err := fake.WaitEmails(wctx, n); err != nil {
			t.Fatal(err)
		}
		proctest.WaitFor(t, 30*time.Second, "the outbox to drain", func() bool {
			st, err := s.Stats(t.Context(), 100000)
			return err == nil && st.Pending == 0
		})
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		proctest.CheckDelivered(t, svc, fake, n)
	})
}

// offlineDialect is bun's MySQL dialect without the version query that
// Init sends, so that a store can be made on a server that is down.
type offlineDialect struct {
	*mysqldialect.Dialect
	name dialect.Name
}

func (offlineDialect) Init(*sql.DB)         {}
func (d offlineDialect) Name() dialect.Name { return d.name }
