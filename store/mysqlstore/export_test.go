package mysqlstore

import "fmt"

// SchemaAt returns the statements that create the schema at an older
// version, for the tests of upgrades.
func SchemaAt(prefix string, version int) []string {
	out := []string{fmt.Sprintf(createVersionTable, prefix)}
	for i, m := range migrations[:version] {
		for _, stmt := range m {
			out = append(out, fmt.Sprintf(stmt, prefix))
		}
		out = append(out, fmt.Sprintf(recordVersion, prefix, i+1))
	}
	return out
}

// UsePortableConsume makes s consume without DELETE ... RETURNING, as on
// MySQL, for the tests of that path on MariaDB.
func UsePortableConsume(s *Store) { s.returning.Store(false) }
