package mysqlstore_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/store/mysqlstore"
)

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
	if err := s.Check(ctx); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("schema version 1, this program needs %d: run `passreset schema migrate`", mysqlstore.SchemaVersion)) {
		t.Fatalf("Check of a version 1 schema: %v, want an error asking for Migrate", err)
	}
	// A token written by a version 1 program (no stamp column).
	rec := reset.Record{Hash: reset.Hash{1, 2, 3}, UserID: "kept", Email: "kept@example.com", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	if _, err := db.ExecContext(ctx, "INSERT INTO `"+prefix+"tokens` (user_id, token_hash, email, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
		[]byte(rec.UserID), rec.Hash[:], []byte(rec.Email), base.Format("2006-01-02 15:04:05.000000"), base.Add(time.Hour).Format("2006-01-02 15:04:05.000000")); err != nil {
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
	if got, err := s.Lookup(ctx, rec.Hash); err != nil || got.UserID != "kept" || got.Stamp != (reset.Hash{}) {
		t.Fatalf("token after the upgrade: %+v, %v", got, err)
	}
	e := outbox.Envelope{ID: "after-upgrade", Kind: outbox.KindRequest, Sealed: []byte("sealed"), KeyID: "k", CreatedAt: base, NotBefore: base}
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
