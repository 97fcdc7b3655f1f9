package mysqlstore

import (
	"fmt"

	"github.com/passreset/passreset/internal/sqlstore"
)

// SchemaAt returns the statements that create the schema at an older
// version, for the tests of upgrades, with the version table as programs
// made it before it had the oldest column.
func SchemaAt(prefix string, version int) []string {
	out := []string{fmt.Sprintf("CREATE TABLE IF NOT EXISTS `%[1]sschema_version` (\n"+
		"  version INT UNSIGNED NOT NULL,\n"+
		"  PRIMARY KEY (version)\n"+
		") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin", prefix)}
	for i, m := range migrations[:version] {
		for _, stmt := range m.SQL {
			out = append(out, fmt.Sprintf(stmt, prefix))
		}
		out = append(out, fmt.Sprintf("INSERT IGNORE INTO `%sschema_version` (version) VALUES (%d)", prefix, i+1))
	}
	return out
}

// Migrations returns the migrations this build knows, for the tests of
// their shape.
func Migrations() []sqlstore.Migration { return migrations }

// UsePortableConsume makes s consume without DELETE ... RETURNING, as on
// MySQL, for the tests of that path on MariaDB.
func UsePortableConsume(s *Store) { s.returning.Store(false) }
