package pgstore_test

import (
	"testing"

	"github.com/passreset/passreset/store/pgstore"
)

// TestMigrateLegacyVersionTable upgrades a version table made before it
// had the oldest column: Check accepts it as it is, Migrate adds the
// column, and a newer expand-only row is then read.
func TestMigrateLegacyVersionTable(t *testing.T) {
	db := openDB(t, testDSN(t))
	s := newStore(t, db, pgstore.Options{})
	ctx := t.Context()
	vt := table(s, "schema_version")
	if _, err := db.ExecContext(ctx, "ALTER TABLE "+vt+" DROP COLUMN oldest"); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check of a current schema whose version table has no oldest column: %v", err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO "+vt+" (version, oldest) VALUES (?, ?)", pgstore.SchemaVersion+1, pgstore.SchemaVersion); err != nil {
		t.Fatalf("the oldest column after Migrate: %v", err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, db, s, "schema_version"); n != pgstore.SchemaVersion+1 {
		t.Fatalf("%d version rows", n)
	}
}
