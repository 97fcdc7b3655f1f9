package memstore_test

import (
	"testing"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

func TestConformance(t *testing.T) {
	resettest.TestStore(t, func(*testing.T) reset.Store { return memstore.New() })
}

func TestConformanceShared(t *testing.T) {
	s := memstore.New()
	resettest.TestStore(t, func(*testing.T) reset.Store { return s })
}

func TestOutboxConformance(t *testing.T) {
	resettest.TestOutboxStore(t, func(*testing.T) reset.OutboxStore { return memstore.New() })
}

func TestLeaseRenewerConformance(t *testing.T) {
	resettest.TestLeaseRenewer(t, func(*testing.T) resettest.RenewingStore { return memstore.New() })
}

func TestBudgeterConformance(t *testing.T) {
	s := memstore.New()
	resettest.TestBudgeter(t, func(*testing.T) reset.Budgeter { return s })
}
