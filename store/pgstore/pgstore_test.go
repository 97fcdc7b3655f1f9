package pgstore_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/passreset/passreset/feedback"
	"github.com/passreset/passreset/feedback/feedbacktest"
	"github.com/passreset/passreset/internal/sqlstore"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/pgstore"
)

// TestConformanceSchema runs the suite on tables in a schema of their own.
func TestConformanceSchema(t *testing.T) {
	db := openDB(t, testDSN(t))
	schema := "s" + strings.TrimSuffix(newPrefix(t), "_")
	t.Cleanup(func() { db.ExecContext(context.Background(), `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`) })
	s := newStore(t, db, pgstore.Options{Schema: schema, TablePrefix: "Mixed_Case_"})
	resettest.TestStore(t, func(*testing.T) reset.Store { return s })
	feedbacktest.Run(t, func(*testing.T) feedback.Store { return s })
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM pg_tables WHERE schemaname = ?", schema).Scan(&n); err != nil || n != 9 {
		t.Fatalf("%d tables in schema %s (%v), want 9", n, schema, err)
	}
}

func TestMigrateIdempotent(t *testing.T) {
	db := openDB(t, testDSN(t))
	s := newStore(t, db, pgstore.Options{})
	ctx := t.Context()
	// Concurrent migrations of new tables from several "instances".
	prefix := newPrefix(t)
	dropTables(t, db, "", prefix)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			s2, err := pgstore.New(db, pgstore.Options{TablePrefix: prefix})
			if err == nil {
				err = s2.Migrate(ctx)
			}
			if err != nil {
				t.Errorf("Migrate: %v", err)
			}
		})
	}
	wg.Wait()
	s2, _ := pgstore.New(db, pgstore.Options{TablePrefix: prefix})
	if n := countRows(t, db, s2, "schema_version"); n != pgstore.SchemaVersion {
		t.Errorf("schema_version has %d rows, want %d", n, pgstore.SchemaVersion)
	}
	// A newer schema than the package knows is refused.
	if _, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (version) VALUES (%d)", table(s, "schema_version"), pgstore.SchemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Migrate over a newer schema: %v, want an error", err)
	}
	if err := s.Check(ctx); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Check of a newer schema: %v, want an error", err)
	}
}

func TestCheckWithoutTables(t *testing.T) {
	db := openDB(t, testDSN(t))
	s, err := pgstore.New(db, pgstore.Options{TablePrefix: newPrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Check(t.Context())
	if err == nil || !errors.Is(err, sqlstore.ErrNoTables) || !strings.Contains(err.Error(), "run `passreset schema migrate` or Store.Migrate") {
		t.Fatalf("Check without tables: %v, want an error telling to run passreset schema migrate", err)
	}
	_, err = s.Lookup(t.Context(), reset.Hash{})
	if err == nil || errors.Is(err, reset.ErrNotFound) || !strings.HasPrefix(err.Error(), "pgstore: lookup: ") {
		t.Fatalf("Lookup without tables: %v, want a wrapped server error", err)
	}
}

// TestSchemaSQL checks that SchemaSQL applied by hand gives tables that
// Check accepts, and that the package documentation shows the same SQL.
func TestSchemaSQL(t *testing.T) {
	def, err := pgstore.SchemaSQL("", "")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "//\t"+strings.ReplaceAll(strings.TrimSuffix(def, "\n"), "\n", "\n//\t")+"\n") {
		t.Errorf("doc.go does not show the current SchemaSQL(\"\", \"\"):\n%s", def)
	}
	for _, bad := range [][2]string{{"", "a-b"}, {"", "x;"}, {"", `"`}, {"", strings.Repeat("p", 50)}, {"a b", ""}, {strings.Repeat("s", 64), ""}} {
		if _, err := pgstore.SchemaSQL(bad[0], bad[1]); err == nil {
			t.Errorf("SchemaSQL(%q, %q) accepted", bad[0], bad[1])
		}
	}

	db := openDB(t, testDSN(t))
	prefix := newPrefix(t)
	dropTables(t, db, "", prefix)
	script, err := pgstore.SchemaSQL("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		for stmt := range strings.SplitSeq(script, ";\n") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := db.ExecContext(t.Context(), stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	}
	s, err := pgstore.New(db, pgstore.Options{TablePrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("Check after applying SchemaSQL: %v", err)
	}
}

// offlineMySQL is bun's MySQL dialect without the version query that Init
// sends, so that New can be tested without a server.
type offlineMySQL struct{ *mysqldialect.Dialect }

func (offlineMySQL) Init(*sql.DB) {}

func TestNew(t *testing.T) {
	pg := bun.NewDB(nil, pgdialect.New())
	my := bun.NewDB(nil, offlineMySQL{mysqldialect.New()})
	var nilDB *bun.DB
	for _, c := range []struct {
		name string
		db   bun.IDB
		opts pgstore.Options
		want string
	}{
		{"nil", nil, pgstore.Options{}, "db is nil"},
		{"nil *bun.DB", nilDB, pgstore.Options{}, "nil *bun.DB"},
		{"mysql", my, pgstore.Options{}, "pgdialect"},
		{"bad prefix", pg, pgstore.Options{TablePrefix: "a b"}, "TablePrefix"},
		{"long prefix", pg, pgstore.Options{TablePrefix: strings.Repeat("p", 50)}, "TablePrefix"},
		{"bad schema", pg, pgstore.Options{Schema: `x"y`}, "Schema"},
		{"negative", pg, pgstore.Options{MaxAttempts: -1}, "negative"},
	} {
		if _, err := pgstore.New(c.db, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New: %v, want an error containing %q", c.name, err, c.want)
		}
	}
	s, err := pgstore.New(pg, pgstore.Options{})
	if err != nil || s.TablePrefix() != pgstore.DefaultTablePrefix {
		t.Fatalf("New with zero Options: %v, %v", s, err)
	}
	if _, _, err := pgstore.Open(t.Context(), "postgres://a@b:c:d/", pgstore.Options{}); err == nil || !strings.HasPrefix(err.Error(), "pgstore: Open: ") {
		t.Errorf("Open with a bad DSN: %v", err)
	}
}

// TestOpen opens a store from a DSN, as the examples do: without
// Options.Migrate it changes nothing and refuses missing tables, naming
// the command to run; with it, it migrates.
func TestOpen(t *testing.T) {
	dsn := testDSN(t)
	prefix := newPrefix(t)
	check := openDB(t, dsn)
	dropTables(t, check, "", prefix)
	if _, _, err := pgstore.Open(t.Context(), dsn, pgstore.Options{TablePrefix: prefix}); err == nil ||
		!errors.Is(err, sqlstore.ErrNoTables) || !strings.Contains(err.Error(), "passreset schema migrate") {
		t.Fatalf("Open of a database without the tables: %v, want an error naming passreset schema migrate", err)
	}
	var n int
	if err := check.QueryRowContext(t.Context(), "SELECT count(*) FROM pg_tables WHERE tablename LIKE ?", prefix+"%").Scan(&n); err != nil || n != 0 {
		t.Fatalf("Open without Migrate made %d tables (%v)", n, err)
	}
	if _, db, err := pgstore.Open(t.Context(), dsn, pgstore.Options{TablePrefix: prefix, Migrate: true}); err != nil {
		t.Fatal(err)
	} else {
		db.Close()
	}
	s, db, err := pgstore.Open(t.Context(), dsn, pgstore.Options{TablePrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, _, _ := newService(t, s, "open", nil)
	if _, err := svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: "open@example.com", SkipSend: true}); err != nil {
		t.Fatal(err)
	}
}

// TestSessionTimeZone runs the store on a session whose TimeZone is not
// UTC: stored instants stay right and read back in UTC.
func TestSessionTimeZone(t *testing.T) {
	u, err := url.Parse(testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("timezone", "America/New_York")
	u.RawQuery = q.Encode()
	db := openDB(t, u.String())
	s := newStore(t, db, pgstore.Options{})
	ctx := t.Context()
	created := time.Date(2026, 3, 8, 2, 30, 0, 654321000, time.UTC)
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	rec := reset.Record{Hash: sha256.Sum256([]byte("tz")), UserID: "tz", Email: "tz@example.com",
		CreatedAt: created.In(ny), ExpiresAt: created.Add(time.Hour)}
	if err := s.Rotate(ctx, rec); err != nil {
		t.Fatal(err)
	}
	var raw string
	if err := db.QueryRowContext(ctx, "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM "+table(s, "tokens")).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if want := "2026-03-08 02:30:00.654321"; raw != want {
		t.Errorf("stored %s UTC, want %s", raw, want)
	}
	got, err := s.Lookup(ctx, rec.Hash)
	if err != nil || !got.CreatedAt.Equal(created) || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("Lookup = %v, %v; want %v in UTC", got.CreatedAt, err, created)
	}
}

// TestReadOnly refuses a read-only server clearly: Migrate and Check before
// any write, and every write with ErrReadOnly.
func TestReadOnly(t *testing.T) {
	dsn := testDSN(t)
	db := openDB(t, dsn)
	s := newStore(t, db, pgstore.Options{})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("default_transaction_read_only", "on")
	u.RawQuery = q.Encode()
	ro := openDB(t, u.String())
	rs, err := pgstore.New(ro, pgstore.Options{TablePrefix: s.TablePrefix()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for name, err := range map[string]error{"Migrate": rs.Migrate(ctx), "Check": rs.Check(ctx)} {
		if !errors.Is(err, pgstore.ErrReadOnly) || !strings.Contains(err.Error(), "connect to the primary") {
			t.Errorf("%s on a read-only session: %v, want ErrReadOnly", name, err)
		}
	}
	rec := reset.Record{Hash: sha256.Sum256([]byte("ro")), UserID: "ro", Email: "ro@example.com", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	start := time.Now()
	err = rs.Rotate(ctx, rec)
	if !errors.Is(err, pgstore.ErrReadOnly) || !strings.HasPrefix(err.Error(), "pgstore: rotate: ") || strings.Contains(err.Error(), "gave up") {
		t.Errorf("Rotate on a read-only session: %v, want ErrReadOnly at once", err)
	}
	t.Logf("Rotate refused after %v: %v", time.Since(start), err)
	if _, err := rs.Cooldown(ctx, rec.Hash, "", base, base.Add(time.Minute)); !errors.Is(err, pgstore.ErrReadOnly) {
		t.Errorf("Cooldown on a read-only session: %v, want ErrReadOnly", err)
	}
	if err := rs.Enqueue(ctx, outbox.Envelope{ID: "ro", Kind: outbox.KindRequest, Sealed: []byte("s"), CreatedAt: base, NotBefore: base}); !errors.Is(err, pgstore.ErrReadOnly) {
		t.Errorf("Enqueue on a read-only session: %v, want ErrReadOnly", err)
	}
	// Reads work.
	if _, err := rs.Lookup(ctx, rec.Hash); !errors.Is(err, reset.ErrNotFound) {
		t.Errorf("Lookup on a read-only session: %v, want ErrNotFound", err)
	}
}

func TestRotateLimits(t *testing.T) {
	db := openDB(t, testDSN(t))
	s := newStore(t, db, pgstore.Options{})
	ctx := t.Context()
	ok := reset.Record{UserID: "u", Email: "a@example.com", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	for name, mod := range map[string]func(*reset.Record){
		"empty user":   func(r *reset.Record) { r.UserID = "" },
		"long user":    func(r *reset.Record) { r.UserID = strings.Repeat("u", pgstore.MaxUserIDLen+1) },
		"NUL in user":  func(r *reset.Record) { r.UserID = "u\x00" },
		"long email":   func(r *reset.Record) { r.Email = strings.Repeat("e", pgstore.MaxEmailLen+1) },
		"bad email":    func(r *reset.Record) { r.Email = "\xff@example.com" },
		"year 10000":   func(r *reset.Record) { r.ExpiresAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"year 9999 ok": nil,
	} {
		r := ok
		r.Hash = sha256.Sum256([]byte(name))
		if mod == nil {
			r.ExpiresAt = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
			if err := s.Rotate(ctx, r); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		mod(&r)
		err := s.Rotate(ctx, r)
		if err == nil || !strings.HasPrefix(err.Error(), "pgstore: rotate: ") {
			t.Errorf("%s: Rotate = %v, want a pgstore: rotate: error", name, err)
		}
	}
	// User IDs are exact: no case folding or trailing spaces dropped, and
	// quotes and backslashes are data.
	ids := []string{"user", "User", "user ", "üser", `user\`, "o'user", `"user"`}
	for i, id := range ids {
		r := ok
		r.UserID, r.Hash = id, sha256.Sum256([]byte(fmt.Sprint("id", i)))
		r.Email = fmt.Sprintf("o'%d\\@example.com", i)
		if err := s.Rotate(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range ids {
		got, err := s.Lookup(ctx, sha256.Sum256([]byte(fmt.Sprint("id", i))))
		if err != nil || got.UserID != id || got.Email != fmt.Sprintf("o'%d\\@example.com", i) {
			t.Fatalf("user %q: Lookup = %+v, %v", id, got, err)
		}
	}
	for _, id := range []string{"", "u\x00", "\xff"} {
		if err := s.RevokeAll(ctx, id); err != nil {
			t.Fatalf("RevokeAll(%q): %v", id, err)
		}
	}
}

// TestPruneBatches prunes 20,000 of 40,000 token rows and 500 of 1,000
// cooldowns in batches of 5,000.
func TestPruneBatches(t *testing.T) {
	db := openDB(t, testDSN(t))
	s := newStore(t, db, pgstore.Options{})
	ctx := t.Context()
	const rows, batch = 40_000, 5_000
	ins := func(q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// Odd rows live, even rows expired.
	ins(fmt.Sprintf("INSERT INTO %s (user_id, token_hash, email, created_at, expires_at)"+
		" SELECT 'bulk-' || i, sha256(('h' || i)::bytea), 'bulk@example.com', '%[2]s'::timestamptz - interval '2 hours',"+
		" '%[2]s'::timestamptz + (CASE WHEN i %% 2 = 1 THEN 1 ELSE -1 END) * interval '1 hour' FROM generate_series(0, %d) i",
		table(s, "tokens"), base.Format(time.RFC3339Nano), rows-1))
	ins(fmt.Sprintf("INSERT INTO %s (cooldown_key, ends_at, nonce)"+
		" SELECT sha256(('c' || i)::bytea), '%[2]s'::timestamptz + (CASE WHEN i %% 2 = 1 THEN 1 ELSE -1 END) * interval '1 minute', '\\x00'"+
		" FROM generate_series(0, 999) i", table(s, "cooldowns"), base.Format(time.RFC3339Nano)))

	var total reset.Pruned
	calls := 0
	for {
		p, err := s.Prune(ctx, base, batch)
		if err != nil {
			t.Fatal(err)
		}
		calls++
		if p.Tokens > batch || p.Cooldowns > batch {
			t.Fatalf("one Prune removed %+v, more than the batch %d", p, batch)
		}
		total.Tokens += p.Tokens
		total.Cooldowns += p.Cooldowns
		if p == (reset.Pruned{}) {
			break
		}
	}
	if total.Tokens != rows/2 || total.Cooldowns != 500 {
		t.Fatalf("pruned %+v in %d calls, want %d tokens and 500 cooldowns", total, calls, rows/2)
	}
	if left := countRows(t, db, s, "tokens"); left != rows/2 {
		t.Fatalf("%d records left, want %d", left, rows/2)
	}
	if left := countRows(t, db, s, "cooldowns"); left != 500 {
		t.Fatalf("%d cooldowns left, want 500", left)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Prune(cctx, base.Add(2*time.Hour), batch); !errors.Is(err, context.Canceled) {
		t.Fatalf("Prune with a cancelled context: %v", err)
	}
}

// TestRoundTrips counts the statements each core operation sends to the
// database, with a bun query hook.
func TestRoundTrips(t *testing.T) {
	s, measure := counted(t)
	svc, _, mailer := newService(t, s, "trips", nil)
	ctx := t.Context()
	measure("first Request (cooldown secret: INSERT + SELECT, once per Service; cooldown, spend: SELECT + INSERT, rotate)", 6, func() error {
		if err := svc.Request(ctx, "trips@example.com", ""); err != nil {
			return err
		}
		_, err := mailer.Wait(ctx, 1)
		return err
	})
	measure("Request with Throttle during the cooldown", 1, func() error {
		_, err := svc.RequestTrusted(ctx, reset.TrustedRequest{Email: "trips@example.com", SkipSend: true, Throttle: true})
		if !errors.Is(err, reset.ErrThrottled) {
			return fmt.Errorf("got %v, want ErrThrottled", err)
		}
		return nil
	})
	var link string
	measure("Request (trusted, rotate)", 1, func() error {
		iss, err := svc.RequestTrusted(ctx, reset.TrustedRequest{Email: "trips@example.com", SkipSend: true})
		link = iss.Link
		return err
	})
	measure("Inspect (lookup)", 1, func() error {
		_, err := svc.Inspect(ctx, resettest.Token(link))
		return err
	})
	measure("Complete (lookup for the password check, DELETE ... RETURNING, then revoke all)", 3, func() error {
		_, err := svc.Complete(ctx, reset.Completion{Token: resettest.Token(link), Password: "new passphrase for tests"})
		return err
	})
	measure("Prune (one statement per kind)", 3, func() error {
		_, err := s.Prune(ctx, time.Now(), 100)
		return err
	})
}

// TestTx checks that a Store made on a transaction works inside it.
func TestTx(t *testing.T) {
	db := openDB(t, testDSN(t))
	s := newStore(t, db, pgstore.Options{})
	ctx := t.Context()
	rec := reset.Record{Hash: sha256.Sum256([]byte("tx")), UserID: "tx", Email: "tx@example.com", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		ts, err := pgstore.New(tx, pgstore.Options{TablePrefix: s.TablePrefix()})
		if err != nil {
			return err
		}
		if err := ts.Migrate(ctx); err != nil {
			return err
		}
		if err := ts.Rotate(ctx, rec); err != nil {
			return err
		}
		_, err = ts.Consume(ctx, rec.Hash)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, rec.Hash); !errors.Is(err, reset.ErrNotFound) {
		t.Fatalf("Lookup after the transaction: %v", err)
	}
}

// TestOlderProgramOnNewSchema writes a token as a program of schema
// version 3 does (no stamp column named) into tables at the current
// version: the row is accepted, and this version reads it as a record
// without a stamp, which the core does not check.
func TestOlderProgramOnNewSchema(t *testing.T) {
	db := openDB(t, testDSN(t))
	prefix := newPrefix(t)
	s := newStore(t, db, pgstore.Options{TablePrefix: prefix})
	ctx := t.Context()
	rec := reset.Record{Hash: reset.Hash{7, 8, 9}, UserID: "older", Email: "older@example.com", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	_, err := db.ExecContext(ctx, `INSERT INTO "`+prefix+`tokens" AS t (user_id, token_hash, email, created_at, expires_at)`+
		` VALUES (?, ?, ?, CAST(? AS timestamptz), CAST(? AS timestamptz))`,
		rec.UserID, rec.Hash[:], rec.Email, base.Format("2006-01-02 15:04:05.000000+00"), base.Add(time.Hour).Format("2006-01-02 15:04:05.000000+00"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Lookup(ctx, rec.Hash)
	if err != nil || got.UserID != rec.UserID || got.Stamp != (reset.Hash{}) || !got.ExpiresAt.Equal(rec.ExpiresAt) {
		t.Fatalf("Lookup of an older program's token = %+v, %v", got, err)
	}
}
