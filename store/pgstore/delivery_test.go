package pgstore_test

import (
	"testing"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/pgstore"
)

func TestLeaseRenewerConformance(t *testing.T) {
	db := openDB(t, testDSN(t))
	resettest.TestLeaseRenewer(t, func(t *testing.T) resettest.RenewingStore {
		return newStore(t, db, pgstore.Options{})
	})
}

func TestBudgeterConformance(t *testing.T) {
	db := openDB(t, testDSN(t))
	s := newStore(t, db, pgstore.Options{})
	resettest.TestBudgeter(t, func(*testing.T) reset.Budgeter { return s })
}
