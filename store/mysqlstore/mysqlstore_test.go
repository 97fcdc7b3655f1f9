package mysqlstore_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the time-zone tests need zones on any machine

	"github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/mysqldialect"

	"github.com/passreset/passreset/internal/sqlstore"
	"github.com/passreset/passreset/internal/sqlstore/sqlstoretest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/mysqlstore"
)

// base is the tests' reference time, with microseconds.
var base = sqlstoretest.Base

// TestConformancePortableConsume runs the suite with the Consume that
// MySQL gets (no DELETE ... RETURNING).
func TestConformancePortableConsume(t *testing.T) {
	db := openDB(t, testDSN(t))
	s := newStore(t, db, mysqlstore.Options{})
	mysqlstore.UsePortableConsume(s)
	resettest.TestStore(t, func(*testing.T) reset.Store { return s })
}

func TestMigrateIdempotent(t *testing.T) {
	db := openDB(t, testDSN(t))
	s := newStore(t, db, mysqlstore.Options{})
	ctx := t.Context()
	// Concurrent migrations from several "instances" of the same tables.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			s2, err := mysqlstore.New(db, mysqlstore.Options{TablePrefix: s.TablePrefix()})
			if err == nil {
				err = s2.Migrate(ctx)
			}
			if err != nil {
				t.Errorf("Migrate: %v", err)
			}
		})
	}
	wg.Wait()
	if n := countRows(t, db, s, "schema_version"); n != mysqlstore.SchemaVersion {
		t.Errorf("schema_version has %d rows, want %d", n, mysqlstore.SchemaVersion)
	}
	// A newer schema than the package knows is refused.
	q := fmt.Sprintf("INSERT INTO `%sschema_version` (version) VALUES (%d)", s.TablePrefix(), mysqlstore.SchemaVersion+1)
	if _, err := db.ExecContext(ctx, q); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Migrate over a newer schema: %v, want an error", err)
	}
}

func TestCheckWithoutTables(t *testing.T) {
	db := openDB(t, testDSN(t))
	s, err := mysqlstore.New(db, mysqlstore.Options{TablePrefix: newPrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Check(t.Context())
	if err == nil || !errors.Is(err, sqlstore.ErrNoTables) || !strings.Contains(err.Error(), "run `passreset schema migrate` or Store.Migrate") {
		t.Fatalf("Check without tables: %v, want an error telling to run passreset schema migrate", err)
	}
	_, err = s.Lookup(t.Context(), reset.Hash{})
	if err == nil || errors.Is(err, reset.ErrNotFound) || !strings.HasPrefix(err.Error(), "mysqlstore: lookup: ") {
		t.Fatalf("Lookup without tables: %v, want a wrapped server error", err)
	}
}

// TestSchemaSQL checks that SchemaSQL applied by hand gives tables that
// Check accepts, and that the package documentation shows the same SQL.
func TestSchemaSQL(t *testing.T) {
	def, err := mysqlstore.SchemaSQL("")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "//\t"+strings.ReplaceAll(strings.TrimSuffix(def, "\n"), "\n", "\n//\t")+"\n") {
		t.Errorf("doc.go does not show the current SchemaSQL(\"\"):\n%s", def)
	}
	for _, bad := range []string{"a-b", "x;", "`", strings.Repeat("p", 51)} {
		if _, err := mysqlstore.SchemaSQL(bad); err == nil {
			t.Errorf("SchemaSQL(%q) accepted", bad)
		}
	}

	db := openDB(t, testDSN(t))
	prefix := newPrefix(t)
	dropTables(t, db, prefix)
	script, err := mysqlstore.SchemaSQL(prefix)
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
	s, err := mysqlstore.New(db, mysqlstore.Options{TablePrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("Check after applying SchemaSQL: %v", err)
	}
}

// offlineDialect is bun's MySQL dialect under any name, without the
// version query that Init sends, so that New can be tested without a
// server.
type offlineDialect struct {
	*mysqldialect.Dialect
	name dialect.Name
}

func (offlineDialect) Init(*sql.DB)         {}
func (d offlineDialect) Name() dialect.Name { return d.name }

func TestNew(t *testing.T) {
	pg := bun.NewDB(nil, offlineDialect{mysqldialect.New(), dialect.PG})
	my := bun.NewDB(nil, offlineDialect{mysqldialect.New(), dialect.MySQL})
	var nilDB *bun.DB
	for _, c := range []struct {
		name string
		db   bun.IDB
		opts mysqlstore.Options
		want string
	}{
		{"nil", nil, mysqlstore.Options{}, "db is nil"},
		{"nil *bun.DB", nilDB, mysqlstore.Options{}, "nil *bun.DB"},
		{"postgres", pg, mysqlstore.Options{}, "mysqldialect"},
		{"bad prefix", my, mysqlstore.Options{TablePrefix: "a b"}, "TablePrefix"},
		{"negative", my, mysqlstore.Options{MaxAttempts: -1}, "negative"},
	} {
		if _, err := mysqlstore.New(c.db, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New: %v, want an error containing %q", c.name, err, c.want)
		}
	}
	s, err := mysqlstore.New(my, mysqlstore.Options{})
	if err != nil || s.TablePrefix() != mysqlstore.DefaultTablePrefix {
		t.Fatalf("New with zero Options: %v, %v", s, err)
	}
}

func TestRotateLimits(t *testing.T) {
	db := openDB(t, testDSN(t))
	s := newStore(t, db, mysqlstore.Options{})
	ctx := t.Context()
	ok := reset.Record{UserID: "u", Email: "a@example.com", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	for name, mod := range map[string]func(*reset.Record){
		"empty user":   func(r *reset.Record) { r.UserID = "" },
		"long user":    func(r *reset.Record) { r.UserID = strings.Repeat("u", mysqlstore.MaxUserIDLen+1) },
		"long email":   func(r *reset.Record) { r.Email = strings.Repeat("e", mysqlstore.MaxEmailLen+1) },
		"bad email":    func(r *reset.Record) { r.Email = "\xff@example.com" },
		"zero time":    func(r *reset.Record) { r.CreatedAt = time.Time{} },
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
		if err == nil || !strings.HasPrefix(err.Error(), "mysqlstore: rotate: ") {
			t.Errorf("%s: Rotate = %v, want a mysqlstore: rotate: error", name, err)
		}
	}
	// User IDs are exact bytes: no case folding, trailing spaces or NUL
	// bytes dropped, so none of these replace each other's tokens.
	ids := []string{"user", "User", "user ", "user\x00", "üser", "user\\"}
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
	if err := s.RevokeAll(ctx, ""); err != nil {
		t.Fatal(err)
	}
}

// TestPruneLargeTable prunes 50,000 of 100,000 records and 500 of 1,000
// cooldowns through the Service, in batches of Outbox.PruneBatch rows.
func TestPruneLargeTable(t *testing.T) {
	db := openDB(t, testDSN(t))
	s := newStore(t, db, mysqlstore.Options{})
	ctx := t.Context()
	const rows, chunk = 100_000, 10_000
	start := time.Now()
	for c := 0; c < rows; c += chunk {
		var b strings.Builder
		fmt.Fprintf(&b, "INSERT INTO `%stokens` (user_id, token_hash, email, created_at, expires_at) VALUES ", s.TablePrefix())
		for i := c; i < c+chunk; i++ {
			exp := base.Add(time.Duration(i%2*2-1) * time.Hour) // odd rows live, even rows expired
			if i > c {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "('bulk-%d', X'%x', 'bulk@example.com', '%s', '%s')", i, sha256.Sum256(fmt.Append(nil, i)),
				base.Add(-2*time.Hour).Format("2006-01-02 15:04:05.000000"), exp.Format("2006-01-02 15:04:05.000000"))
		}
		if _, err := db.ExecContext(ctx, b.String()); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO `%scooldowns` (cooldown_key, ends_at, nonce) VALUES ", s.TablePrefix())
	for i := range 1000 {
		ends := base.Add(time.Duration(i%2*2-1) * time.Minute) // odd rows running, even rows ended
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "(X'%x', '%s', X'00000000000000000000000000000000')", sha256.Sum256(fmt.Append(nil, "cool", i)), ends.Format("2006-01-02 15:04:05.000000"))
	}
	if _, err := db.ExecContext(ctx, b.String()); err != nil {
		t.Fatal(err)
	}
	t.Logf("inserted %d records and 1000 cooldowns in %v", rows, time.Since(start))

	// One call removes at most the batch of each kind.
	if n, err := s.Prune(ctx, base, 300); err != nil || n != (reset.Pruned{Tokens: 300, Cooldowns: 300}) {
		t.Fatalf("Prune(limit 300) = %+v, %v; want 300 tokens and 300 cooldowns", n, err)
	}
	svc, _, _ := newService(t, s, "prune", resettest.NewClock(base))
	start = time.Now()
	n, err := svc.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pruned %+v in %v", n, time.Since(start))
	if n != (reset.Pruned{Tokens: rows/2 - 300, Cooldowns: 200}) {
		t.Fatalf("Prune removed %+v, want %d tokens and 200 cooldowns", n, rows/2-300)
	}
	if left := countRows(t, db, s, "tokens"); left != rows/2 {
		t.Fatalf("%d records left, want %d", left, rows/2)
	}
	if left := countRows(t, db, s, "cooldowns"); left != 500 {
		t.Fatalf("%d cooldowns left, want 500", left)
	}
	if n, err := svc.Prune(ctx); err != nil || n != (reset.Pruned{}) {
		t.Fatalf("second Prune = %+v, %v; want nothing", n, err)
	}
	// A cancelled context stops pruning.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Prune(cctx, base.Add(2*time.Hour), 1000); !errors.Is(err, context.Canceled) {
		t.Fatalf("Prune with a cancelled context: %v", err)
	}
}

// TestRoundTrips counts the statements each core operation sends to the
// database, with a bun query hook.
func TestRoundTrips(t *testing.T) {
	counted, measure := harness.Counted(t)
	s := counted.(*mysqlstore.Store)
	ctx := t.Context()
	if err := s.Check(ctx); err != nil { // learns that the server has DELETE ... RETURNING
		t.Fatal(err)
	}
	svc, _, mailer := newService(t, s, "trips", nil)
	// The public password-lost request: cooldown, then rotation.
	measure("first Request (cooldown secret: INSERT IGNORE + SELECT, once per Service; cooldown, spend: SELECT + INSERT, rotate)", 6, func() error {
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
	// Complete first reads the token's row (the password policy checks
	// the password for its account before anything changes); its floor
	// then is one conditional DELETE that returns the row; the core then
	// revokes every token of the user (one issued while the
	// password changed, too).
	measure("Complete (lookup for the password check, consume = delete returning, then revoke all)", 3, func() error {
		_, err := svc.Complete(ctx, reset.Completion{Token: resettest.Token(link), Password: "new passphrase for tests"})
		return err
	})
	// Without RETURNING (MySQL), Consume reads, then deletes.
	mysqlstore.UsePortableConsume(s)
	iss, err := svc.RequestTrusted(ctx, reset.TrustedRequest{Email: "trips@example.com", SkipSend: true})
	if err != nil {
		t.Fatal(err)
	}
	measure("Complete without RETURNING (lookup for the password check, select + delete, then revoke all)", 4, func() error {
		_, err := svc.Complete(ctx, reset.Completion{Token: resettest.Token(iss.Link), Password: "newer passphrase for tests"})
		return err
	})
	measure("Prune (one DELETE per kind)", 3, func() error {
		_, err := s.Prune(ctx, time.Now(), 100)
		return err
	})
}

// TestTimeSettings runs the store on connections whose time settings
// differ from the documented setup: no parseTime, a non-UTC loc (with a
// wall-clock time that does not exist there), a dialect that writes local
// times. Stored values must stay UTC and read back exactly. clientFoundRows
// is refused with an error naming it.
func TestTimeSettings(t *testing.T) {
	dsn := testDSN(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	variant := func(f func(c *mysql.Config)) string {
		c := cfg.Clone()
		f(c)
		return c.FormatDSN()
	}
	for _, c := range []struct {
		name    string
		dsn     string
		dialect []mysqldialect.DialectOption
	}{
		{"documented", dsn, nil},
		{"no parseTime", variant(func(c *mysql.Config) { c.ParseTime = false }), nil},
		{"loc=America/New_York", variant(func(c *mysql.Config) { c.ParseTime, c.Loc = true, ny }), nil},
		{"dialect in Asia/Tokyo", dsn, []mysqldialect.DialectOption{mysqldialect.WithTimeLocation("Asia/Tokyo")}},
		{"dialect without location", variant(func(c *mysql.Config) { c.ParseTime, c.Loc = true, time.Local }), []mysqldialect.DialectOption{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := c.dialect
			if opts != nil && len(opts) == 0 {
				opts = []mysqldialect.DialectOption{func(*mysqldialect.Dialect) {}}
			}
			db := openDB(t, c.dsn, opts...)
			s := newStore(t, db, mysqlstore.Options{})
			ctx := t.Context()
			// 02:30 on 2026-03-08 does not exist in New York (DST starts).
			created := time.Date(2026, 3, 8, 2, 30, 0, 654321000, time.UTC)
			rec := reset.Record{Hash: sha256.Sum256([]byte(c.name)), UserID: "tz", Email: "tz@example.com",
				CreatedAt: created.In(ny), ExpiresAt: created.Add(time.Hour)}
			if err := s.Rotate(ctx, rec); err != nil {
				t.Fatal(err)
			}
			var raw string
			q := fmt.Sprintf("SELECT CONCAT(CAST(created_at AS CHAR), '|', CAST(expires_at AS CHAR)) FROM `%stokens`", s.TablePrefix())
			if err := db.QueryRowContext(ctx, q).Scan(&raw); err != nil {
				t.Fatal(err)
			}
			if want := "2026-03-08 02:30:00.654321|2026-03-08 03:30:00.654321"; raw != want {
				t.Errorf("stored %s, want UTC %s", raw, want)
			}
			got, err := s.Lookup(ctx, rec.Hash)
			if err != nil {
				t.Fatal(err)
			}
			if !got.CreatedAt.Equal(created) || !got.ExpiresAt.Equal(rec.ExpiresAt) || got.CreatedAt.Location() != time.UTC {
				t.Errorf("read back %v, %v; want %v, %v in UTC", got.CreatedAt, got.ExpiresAt, created, rec.ExpiresAt)
			}
			if got, err := s.Consume(ctx, rec.Hash); err != nil || !got.ExpiresAt.Equal(rec.ExpiresAt) {
				t.Errorf("Consume = %v, %v", got.ExpiresAt, err)
			}
			key := sha256.Sum256([]byte("tz"))
			for _, step := range []struct {
				now  time.Time
				want bool
			}{{created, true}, {created.Add(time.Minute - time.Microsecond), false}, {created.Add(time.Minute), true}} {
				if ok, err := s.Cooldown(ctx, key, "", step.now.In(ny), step.now.Add(time.Minute)); err != nil || ok != step.want {
					t.Errorf("Cooldown at %v = %v, %v; want %v", step.now, ok, err, step.want)
				}
			}
		})
	}

	t.Run("clientFoundRows refused", func(t *testing.T) {
		db := openDB(t, variant(func(c *mysql.Config) { c.ClientFoundRows = true }))
		s, err := mysqlstore.New(db, mysqlstore.Options{TablePrefix: newPrefix(t)})
		if err != nil {
			t.Fatal(err)
		}
		dropTables(t, db, s.TablePrefix())
		if err := s.Migrate(t.Context()); err == nil || !strings.Contains(err.Error(), "clientFoundRows=true") {
			t.Fatalf("Migrate with clientFoundRows: %v, want an error naming clientFoundRows", err)
		}
		if err := s.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "clientFoundRows") {
			t.Fatalf("Check with clientFoundRows: %v, want an error naming clientFoundRows", err)
		}
	})
}

// TestTx checks that a Store made on a transaction works inside it.
func TestTx(t *testing.T) {
	db := openDB(t, testDSN(t))
	s := newStore(t, db, mysqlstore.Options{})
	ctx := t.Context()
	rec := reset.Record{Hash: sha256.Sum256([]byte("tx")), UserID: "tx", Email: "tx@example.com", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		ts, err := mysqlstore.New(tx, mysqlstore.Options{TablePrefix: s.TablePrefix()})
		if err != nil {
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
