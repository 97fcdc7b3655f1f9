package mysqlstore_test

import (
	"testing"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/mysqlstore"
)

func TestLeaseRenewerConformance(t *testing.T) {
	db := openDB(t, testDSN(t))
	resettest.TestLeaseRenewer(t, func(t *testing.T) resettest.RenewingStore {
		return newStore(t, db, mysqlstore.Options{})
	})
}

func TestBudgeterConformance(t *testing.T) {
	db := openDB(t, testDSN(t))
	s := newStore(t, db, mysqlstore.Options{})
	resettest.TestBudgeter(t, func(*testing.T) reset.Budgeter { return s })
}
