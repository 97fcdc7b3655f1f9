package memstore_test

import (
	"testing"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
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

func TestZeroValueConformance(t *testing.T) {
	resettest.TestStore(t, func(*testing.T) reset.Store { return new(memstore.Store) })
	resettest.TestOutboxStore(t, func(*testing.T) outbox.Store { return new(memstore.Store) })
}

func TestOutboxConformance(t *testing.T) {
	resettest.TestOutboxStore(t, func(*testing.T) outbox.Store { return memstore.New() })
}
