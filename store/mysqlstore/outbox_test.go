package mysqlstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
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
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/mysqldialect"

	"github.com/passreset/passreset/httpadapter"
	"github.com/passreset/passreset/internal/storetest"
	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/mysqlstore"
)

func TestOutboxConformance(t *testing.T) {
	db := openDB(t, testDSN(t))
	resettest.TestOutboxStore(t, func(t *testing.T) reset.OutboxStore { return newStore(t, db, mysqlstore.Options{}) })
}

// TestOutboxConformanceNoRetries runs the suite with retries off: the
// claims of concurrent workers must not rely on being retried.
func TestOutboxConformanceNoRetries(t *testing.T) {
	db := openDB(t, testDSN(t))
	resettest.TestOutboxStore(t, func(t *testing.T) reset.OutboxStore {
		return newStore(t, db, mysqlstore.Options{MaxAttempts: 1})
	})
}

// TestOutboxMigrateFromV1 upgrades tables made by the first version of the
// schema, holding a token, to the current one, from several processes at
// once: the token survives and the outbox works.
func TestOutboxMigrateFromV1(t *testing.T) {
	db := openDB(t, testDSN(t))
	prefix := newPrefix(t)
	dropTables(t, db, prefix)
	ctx := t.Context()
	for _, stmt := range mysqlstore.SchemaAt(prefix, 1) {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	s, err := mysqlstore.New(db, mysqlstore.Options{TablePrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); err == nil || !strings.Contains(err.Error(), "schema version 1, want 4: run Migrate") {
		t.Fatalf("Check of a version 1 schema: %v, want an error asking for Migrate", err)
	}
	rec := reset.Record{Hash: reset.Hash{1, 2, 3}, UserID: "kept", Email: "kept@example.com", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	if err := s.Rotate(ctx, rec); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s2, err := mysqlstore.New(db, mysqlstore.Options{TablePrefix: prefix})
			if err == nil {
				err = s2.Migrate(ctx)
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("Migrate from version 1: %v", err)
		}
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, db, s, "schema_version"); n != mysqlstore.SchemaVersion {
		t.Fatalf("schema_version has %d rows, want %d", n, mysqlstore.SchemaVersion)
	}
	if got, err := s.Lookup(ctx, rec.Hash); err != nil || got.UserID != "kept" {
		t.Fatalf("token after the upgrade: %+v, %v", got, err)
	}
	e := reset.Envelope{ID: "after-upgrade", Kind: reset.EnvelopeRequest, Sealed: []byte("sealed"), KeyID: "k", CreatedAt: base, NotBefore: base}
	if err := s.Enqueue(ctx, e); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Claim(ctx, "w", base, base.Add(time.Minute), 10); err != nil || len(got) != 1 {
		t.Fatalf("Claim after the upgrade: %v, %v", got, err)
	}
	// And the statements for teams running their own migrations: the
	// current schema script, applied over version 1, upgrades it too.
	prefix2 := newPrefix(t)
	dropTables(t, db, prefix2)
	for _, stmt := range mysqlstore.SchemaAt(prefix2, 1) {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	applySchemaSQL(t, db, prefix2)
	s2, _ := mysqlstore.New(db, mysqlstore.Options{TablePrefix: prefix2})
	if err := s2.Check(ctx); err != nil {
		t.Fatalf("Check after applying SchemaSQL over version 1: %v", err)
	}
}

// applySchemaSQL runs SchemaSQL(prefix) on one connection, as a client
// running the script does.
func applySchemaSQL(t *testing.T, db *bun.DB, prefix string) {
	t.Helper()
	script, err := mysqlstore.SchemaSQL(prefix)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for stmt := range strings.SplitSeq(script, ";\n") {
		if strings.TrimSpace(stmt) != "" {
			if _, err := conn.ExecContext(t.Context(), stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	}
}

// TestOutboxMigrateFromV2 upgrades an outbox of version 2, which kept
// public requests unsealed, from several processes at once: the plaintext
// columns go, the unsealed requests (which this version cannot read) go,
// sealed envelopes stay. Running the upgrade again, or the SchemaSQL
// script twice, changes nothing.
func TestOutboxMigrateFromV2(t *testing.T) {
	db := openDB(t, testDSN(t))
	ctx := t.Context()
	for _, how := range []string{"Migrate", "SchemaSQL"} {
		prefix := newPrefix(t)
		dropTables(t, db, prefix)
		for _, stmt := range mysqlstore.SchemaAt(prefix, 2) {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		ins := fmt.Sprintf("INSERT INTO `%soutbox` (id, kind, email, link, sealed, key_id, attempts, claims, not_before, created_at,"+
			" dead, last_error, nonce) VALUES (?, 'request', 'a@example.com', '', ?, 'k', 0, 0, ?, ?, 0, '', X'00')", prefix)
		at := base.Format("2006-01-02 15:04:05")
		if _, err := db.ExecContext(ctx, ins, "unsealed", nil, at, at); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, ins, "sealed", []byte("sealed bytes"), at, at); err != nil {
			t.Fatal(err)
		}
		s, err := mysqlstore.New(db, mysqlstore.Options{TablePrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		switch how {
		case "Migrate":
			errs := make(chan error, 4)
			for range 4 {
				go func() { errs <- s.Migrate(ctx) }()
			}
			for range 4 {
				if err := <-errs; err != nil {
					t.Fatalf("Migrate from version 2: %v", err)
				}
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("second Migrate: %v", err)
			}
		case "SchemaSQL":
			applySchemaSQL(t, db, prefix)
			applySchemaSQL(t, db, prefix)
			if err := s.Check(ctx); err != nil {
				t.Fatal(err)
			}
		}
		var cols int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE()"+
			" AND table_name = ? AND column_name IN ('email', 'link')", prefix+"outbox").Scan(&cols); err != nil {
			t.Fatal(err)
		}
		if cols != 0 {
			t.Fatalf("%s: %d plaintext columns left in the outbox", how, cols)
		}
		got, err := s.Claim(ctx, "w", base, base.Add(time.Minute), 10)
		if err != nil || len(got) != 1 || got[0].ID != "sealed" || string(got[0].Sealed) != "sealed bytes" {
			t.Fatalf("%s: Claim after the upgrade = %+v, %v; want the sealed envelope only", how, got, err)
		}
	}
}

// TestOutboxValues stores awkward values and reads them back exactly, and
// refuses what does not fit.
func TestOutboxValues(t *testing.T) {
	db := openDB(t, testDSN(t))
	s := newStore(t, db, mysqlstore.Options{})
	ctx := t.Context()
	sealed := make([]byte, 200_000)
	rand.Read(sealed)
	sealed[0], sealed[1] = 0, '\''
	e := reset.Envelope{
		ID: strings.Repeat("i", 64), Kind: reset.EnvelopeMessage, Sealed: sealed, KeyID: strings.Repeat("k", 64),
		Attempts: 3, CreatedAt: base.Add(999), NotBefore: base.Add(time.Second).In(time.FixedZone("X", 5*3600)),
		LastError: "earlier",
	}
	if err := s.Enqueue(ctx, e); err != nil {
		t.Fatal(err)
	}
	got, err := s.Claim(ctx, "w", base.Add(time.Second), base.Add(time.Minute), 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("Claim: %v, %v", got, err)
	}
	g := got[0]
	if g.ID != e.ID || g.Kind != e.Kind || !bytes.Equal(g.Sealed, sealed) ||
		g.KeyID != e.KeyID || g.Attempts != 3 || g.Claims != 1 || g.LastError != "earlier" || g.Dead ||
		!g.CreatedAt.Equal(base) || !g.NotBefore.Equal(base.Add(time.Second)) || g.NotBefore.Location() != time.UTC {
		t.Fatalf("read back %+v", g)
	}
	// LastError is cut to 1000 characters and made valid UTF-8.
	g.LastError, g.Dead = strings.Repeat("é", 1500)+"\xff", true
	if err := s.Save(ctx, "w", g, false); err != nil {
		t.Fatal(err)
	}
	dead, err := s.Dead(ctx, 10)
	if err != nil || len(dead) != 1 {
		t.Fatalf("Dead: %v, %v", dead, err)
	}
	if n := utf8.RuneCountInString(dead[0].LastError); n != 1000 || !utf8.ValidString(dead[0].LastError) ||
		!strings.HasPrefix(dead[0].LastError, "éé") {
		t.Fatalf("LastError of %d characters stored as %d", 1501, n)
	}
	for name, mod := range map[string]func(*reset.Envelope){
		"empty ID":   func(e *reset.Envelope) { e.ID = "" },
		"long ID":    func(e *reset.Envelope) { e.ID = strings.Repeat("i", 65) },
		"long key":   func(e *reset.Envelope) { e.KeyID = strings.Repeat("k", 65) },
		"no content": func(e *reset.Envelope) { e.Sealed = nil },
		"zero time":  func(e *reset.Envelope) { e.CreatedAt = time.Time{} },
		"long kind":  func(e *reset.Envelope) { e.Kind = strings.Repeat("k", 33) },
	} {
		bad := e
		bad.ID = "other"
		mod(&bad)
		if err := s.Enqueue(ctx, bad); err == nil || !strings.HasPrefix(err.Error(), "mysqlstore: enqueue: ") {
			t.Errorf("%s: Enqueue = %v, want a mysqlstore: enqueue: error", name, err)
		}
	}
	if _, err := s.Claim(ctx, strings.Repeat("w", 256), base, base, 1); err == nil {
		t.Error("Claim with a 256-byte worker name succeeded")
	}
	if err := s.Enqueue(ctx, e); err == nil {
		t.Errorf("Enqueue of an existing ID: %v, want an error", err)
	}
	if err := s.Revive(ctx, strings.Repeat("i", 65), base); !errors.Is(err, reset.ErrNotFound) {
		t.Errorf("Revive of an impossible ID: %v", err)
	}
}

// TestOutboxRoundTrips counts the statements of each outbox operation,
// and of a public password-lost request for an account and for an
// address without one: the same.
func TestOutboxRoundTrips(t *testing.T) {
	db := openDB(t, testDSN(t))
	counter := &queryCounter{}
	s, err := mysqlstore.New(db.WithQueryHook(counter), mysqlstore.Options{TablePrefix: newStore(t, db, mysqlstore.Options{}).TablePrefix()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	measure := func(name string, want int64, f func() error) {
		t.Helper()
		before := counter.n.Load()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := counter.n.Load() - before; got != want {
			t.Errorf("%s: %d round trips, want %d", name, got, want)
		} else {
			t.Logf("%s: %d round trips", name, got)
		}
	}
	users := &resettest.Users{}
	storetest.SeedUsers(users, 1)
	svc, err := reset.New(outboxConfig(s, users, &resettest.Mailer{}, newSealKey()))
	if err != nil {
		t.Fatal(err)
	}
	// The Service counts the outbox in the background, at most once a
	// second: count it now, so that the requests measured do not start it.
	if _, err := svc.OutboxReport(ctx); err != nil {
		t.Fatal(err)
	}
	measure("Request, account", 1, func() error { return svc.Request(ctx, "user0@example.com", "") })
	measure("Request, no account", 1, func() error { return svc.Request(ctx, "nobody@example.com", "") })
	var envs []reset.Envelope
	now := time.Now()
	measure("Claim of two", 4, func() (err error) {
		envs, err = s.Claim(ctx, "w", now.Add(time.Second), now.Add(time.Minute), 5)
		if err == nil && len(envs) != 2 {
			err = fmt.Errorf("claimed %d", len(envs))
		}
		return err
	})
	measure("Claim of none", 3, func() error {
		_, err := s.Claim(ctx, "w", now.Add(time.Second), now.Add(time.Minute), 5)
		return err
	})
	measure("Save", 1, func() error { return s.Save(ctx, "w", envs[0], true) })
	measure("Delete", 1, func() error { return s.Delete(ctx, "w", envs[0].ID) })
	measure("Save that lost its lease", 1, func() error {
		if err := s.Save(ctx, "other", envs[1], false); !errors.Is(err, reset.ErrLeaseLost) {
			return fmt.Errorf("got %v, want ErrLeaseLost", err)
		}
		return nil
	})
	measure("OutboxStats", 1, func() error {
		st, err := s.OutboxStats(ctx, 1000)
		if err == nil && (st.Pending != 1 || st.Oldest.IsZero()) {
			err = fmt.Errorf("stats %+v", st)
		}
		return err
	})
	envs[1].Dead = true
	measure("Save (bury)", 1, func() error { return s.Save(ctx, "w", envs[1], false) })
	measure("Dead", 1, func() error { _, err := s.Dead(ctx, 10); return err })
	measure("Revive", 1, func() error { return s.Revive(ctx, envs[1].ID, now) })
}

// TestOutboxLostConnection loses the answer of each outbox write, after
// the server applied it or before: the retry recognises its own write and
// never reports a lease lost, a queue full or an envelope missing because
// of it.
func TestOutboxLostConnection(t *testing.T) {
	db, f := faultyDB(t)
	s := newStore(t, db, mysqlstore.Options{})
	ctx := t.Context()
	at := base
	for _, applied := range []bool{true, false} {
		name := fmt.Sprintf("applied=%v", applied)
		e := reset.Envelope{ID: name, Kind: reset.EnvelopeRequest, Sealed: []byte("sealed"), KeyID: "k", CreatedAt: at, NotBefore: at}
		// Enqueue: the retry finds its own row (a duplicate key).
		f.Arm("INSERT INTO", applied)
		if err := s.Enqueue(ctx, e); err != nil {
			t.Fatalf("%s: Enqueue: %v", name, err)
		}
		// A claim whose UPDATE fails inside the transaction is rolled
		// back and retried whole.
		f.Arm("UPDATE", applied)
		got, err := s.Claim(ctx, "w", at, at.Add(time.Minute), 5)
		if err != nil || len(got) != 1 || got[0].Claims != 1 {
			t.Fatalf("%s: Claim: %+v, %v; want the envelope claimed once", name, got, err)
		}
		// Save releasing the lease: the retry finds no lease, and its nonce.
		e = got[0]
		e.Attempts, e.LastError = 1, "503"
		f.Arm("UPDATE", applied)
		if err := s.Save(ctx, "w", e, false); err != nil {
			t.Fatalf("%s: Save(release): %v", name, err)
		}
		got, err = s.Claim(ctx, "w", at, at.Add(time.Minute), 5)
		if err != nil || len(got) != 1 || got[0].Attempts != 1 || got[0].Claims != 2 {
			t.Fatalf("%s: Claim after Save: %+v, %v", name, got, err)
		}
		// Save holding the lease: the retry changes nothing, and is right.
		f.Arm("UPDATE", applied)
		if err := s.Save(ctx, "w", got[0], true); err != nil {
			t.Fatalf("%s: Save(hold): %v", name, err)
		}
		// Bury it, then revive it with a lost answer.
		e = got[0]
		e.Dead = true
		if err := s.Save(ctx, "w", e, false); err != nil {
			t.Fatal(err)
		}
		f.Arm("UPDATE", applied)
		if err := s.Revive(ctx, e.ID, at); err != nil {
			t.Fatalf("%s: Revive: %v", name, err)
		}
		got, err = s.Claim(ctx, "w", at, at.Add(time.Minute), 5)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: Claim after Revive: %+v, %v", name, got, err)
		}
		// Delete: the retry finds the row gone.
		f.Arm("DELETE", applied)
		if err := s.Delete(ctx, "w", e.ID); err != nil {
			t.Fatalf("%s: Delete: %v", name, err)
		}
		if st, err := s.OutboxStats(ctx, 1000); err != nil || st.Pending != 0 || st.Dead != 0 {
			t.Fatalf("%s: stats %+v, %v", name, st, err)
		}
	}
	// Without a lost answer, the verdicts stand.
	e := reset.Envelope{ID: "plain", Kind: reset.EnvelopeRequest, Sealed: []byte("sealed"), KeyID: "k", CreatedAt: at, NotBefore: at}
	if err := s.Enqueue(ctx, e); err != nil {
		t.Fatal(err)
	}
	var me *mysql.MySQLError
	if err := s.Enqueue(ctx, e); !errors.As(err, &me) || me.Number != 1062 {
		t.Fatalf("Enqueue of the same ID again: %v, want a duplicate key error", err)
	}
	if err := s.Delete(ctx, "w", e.ID); !errors.Is(err, reset.ErrLeaseLost) {
		t.Fatalf("Delete without a lease: %v", err)
	}
	if err := s.Revive(ctx, e.ID, at); !errors.Is(err, reset.ErrNotFound) {
		t.Fatalf("Revive of a live envelope: %v", err)
	}
}

// TestOutboxProviderOutage: Resend (the local fake, through the real
// resendmailer with no retries of its own) answers 503 for two minutes of
// the fake clock, then recovers. Every message goes out afterwards, once,
// with one idempotency key each, and no faster than the mailer's pacing.
func TestOutboxProviderOutage(t *testing.T) {
	const n = 20
	db := openDB(t, testDSN(t))
	s := newStore(t, db, mysqlstore.Options{})
	ctx := t.Context()
	clock := resettest.NewClock(base)
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
	storetest.SeedUsers(users, n)
	cfg := outboxConfig(s, users, storetest.SendOnly{Mailer: mailer}, newSealKey())
	cfg.Now = clock.Now
	cfg.Outbox.Rate = 20 // the fake's limit
	cfg.Outbox.RetryBase, cfg.Outbox.RetryMax = 10*time.Second, time.Minute
	svc, err := reset.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
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
		if _, err := svc.DrainOutbox(ctx); err != nil {
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
	storetest.CheckDelivered(t, svc, fake, n)
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
	r, err := svc.OutboxReport(ctx)
	if err != nil || r.Pending != 0 || r.Dead != 0 || r.Failed == 0 || r.Sent != n {
		t.Fatalf("OutboxReport = %+v, %v", r, err)
	}
}

// rawRows returns every row of the store's outbox as the bytes of all its
// columns, and checks that each holds a sealed message.
func rawRows(t *testing.T, db *bun.DB, s *mysqlstore.Store) [][]byte {
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
	handler := func(t *testing.T, s reset.Store, maxPending int) (*reset.Service, http.Handler) {
		users := &resettest.Users{}
		storetest.SeedUsers(users, 1)
		cfg := outboxConfig(s, users, &resettest.Mailer{}, newSealKey())
		cfg.Outbox.MaxPending = maxPending
		svc, err := reset.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		h, err := httpadapter.New(svc, httpadapter.Options{RateLimit: -1})
		if err != nil {
			t.Fatal(err)
		}
		return svc, h
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
		svc, h := handler(t, s, 0)
		start := time.Now()
		err = svc.Request(t.Context(), "user0@example.com", "")
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
		db := openDB(t, testDSN(t))
		s := newStore(t, db, mysqlstore.Options{})
		svc, h := handler(t, s, 1)
		if w := post(h); w.Code != http.StatusAccepted {
			t.Fatalf("first request: %d %s", w.Code, w.Body)
		}
		// The Service counts the outbox in the background; count it now.
		if r, err := svc.OutboxReport(t.Context()); err != nil || r.Pending != 1 {
			t.Fatalf("OutboxReport = %+v, %v; want 1 pending", r, err)
		}
		if w := post(h); w.Code != http.StatusAccepted {
			t.Fatalf("request past MaxPending: %d %s, want the same 202", w.Code, w.Body)
		}
		if n := svc.Dropped(); n != 1 {
			t.Fatalf("Dropped = %d, want 1", n)
		}
		if st, err := s.OutboxStats(t.Context(), 10); err != nil || st.Pending != 1 {
			t.Fatalf("OutboxStats = %+v, %v; want the first request only", st, err)
		}
		_, err := svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: "user0@example.com"})
		if !errors.Is(err, reset.ErrQueueFull) {
			t.Fatalf("trusted request past MaxPending: %v, want ErrQueueFull", err)
		}
	})
}

// TestOutboxEndToEndInProcess runs the whole path in one process: public
// requests for accounts and for unknown addresses through the handler,
// RunOutbox with the real Resend mailer against the fake.
func TestOutboxEndToEndInProcess(t *testing.T) {
	const n = 10
	db := openDB(t, testDSN(t))
	s := newStore(t, db, mysqlstore.Options{})
	fake := resendtest.NewServer()
	t.Cleanup(fake.Close)
	mailer, err := resendmailer.New(resendmailer.Options{APIKey: resendtest.APIKey, From: "reset@example.com", BaseURL: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	users := &resettest.Users{}
	storetest.SeedUsers(users, n)
	cfg := outboxConfig(s, users, mailer, newSealKey())
	cfg.Outbox.Rate = -1 // the fake has no rate limit
	svc, err := reset.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- svc.RunOutbox(ctx) }()
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
	storetest.WaitFor(t, 30*time.Second, "the outbox to drain", func() bool {
		st, err := s.OutboxStats(t.Context(), 100000)
		return err == nil && st.Pending == 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	storetest.CheckDelivered(t, svc, fake, n)
}

// The outbox tests' configuration, shared with pgstore's tests (and used
// by the benchmarks).
var (
	outboxConfig = storetest.OutboxConfig
	newSealKey   = storetest.NewSealKey
)
