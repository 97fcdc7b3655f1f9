package pgstore

import "github.com/passreset/passreset/internal/sqlstore"

// Migrations returns the migrations this build knows, for the tests of
// their shape.
func Migrations() []sqlstore.Migration { return migrations }
