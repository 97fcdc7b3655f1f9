package sqlstore

import (
	"strings"
	"testing"
)

// CheckExpandOnly refuses a migration marked expand-only that takes
// something away or deletes rows, and lets one through that is marked
// contracting.
func TestCheckExpandOnly(t *testing.T) {
	for _, stmt := range []string{
		"ALTER TABLE t DROP COLUMN email",
		"alter table t drop column email",
		"DROP TABLE IF EXISTS t",
		"ALTER TABLE t RENAME TO u",
		"ALTER TABLE t RENAME COLUMN a TO b",
		"ALTER TABLE t MODIFY sealed MEDIUMBLOB NOT NULL",
		"ALTER TABLE t CHANGE COLUMN a b INT",
		"ALTER TABLE t ALTER COLUMN a SET NOT NULL",
		"DELETE FROM `outbox` WHERE sealed IS NULL",
		"TRUNCATE t",
		"DROP INDEX i",
		"SET @v = (SELECT IF(COUNT(*) = 0, 'DO 0',\n  'ALTER TABLE t DROP COLUMN email'))",
	} {
		ms := []Migration{{Name: "ok", SQL: []string{"CREATE TABLE IF NOT EXISTS t (a int)"}}, {Name: "bad", SQL: []string{stmt}}}
		if err := CheckExpandOnly(ms); err == nil || !strings.Contains(err.Error(), "migration 2 (bad)") {
			t.Errorf("%q: %v, want it refused", stmt, err)
		}
		ms[1].Oldest = 2
		if err := CheckExpandOnly(ms); err != nil {
			t.Errorf("%q marked contracting: %v", stmt, err)
		}
	}
	for _, stmt := range []string{
		"CREATE TABLE IF NOT EXISTS t (dropped_at int, renamed bool)",
		"ALTER TABLE t ADD COLUMN IF NOT EXISTS stamp bytea",
		"CREATE INDEX IF NOT EXISTS i ON t (a)",
		"INSERT INTO v (version, oldest) VALUES (2, 1)",
	} {
		if err := CheckExpandOnly([]Migration{{Name: "ok", SQL: []string{stmt}}}); err != nil {
			t.Errorf("%q: %v, want it accepted", stmt, err)
		}
	}
}

// Compatible accepts the program's own version and a newer expand-only
// one, and says what to do otherwise.
func TestCompatible(t *testing.T) {
	for _, c := range []struct {
		want, have, oldest int
		err                string
	}{
		{6, 6, 3, ""},
		{5, 6, 3, ""},
		{5, 7, 5, ""},
		{6, 0, 0, "passreset schema migrate"},
		{6, 5, 3, "this program needs 6: run `passreset schema migrate`"},
		{5, 7, 6, "needs a program of schema version 6 or newer (this one is 5)"},
		{5, 6, -1, "do not say"},
	} {
		err := Compatible("p_", c.want, c.have, c.oldest)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("Compatible(want %d, have %d, oldest %d) = %v, want %q", c.want, c.have, c.oldest, err, c.err)
		}
	}
	if _, err := (Script{}).Files("flyway"); err == nil {
		t.Error("Files of an unknown tool: no error")
	}
}
