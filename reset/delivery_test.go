package reset_test

import (
	"github.com/passreset/passreset/reset"
)

// fixedLeases is a Store whose outbox cannot renew leases (nor keep a
// budget): only the Store, OutboxStore and Cooldowner methods show.
type fixedLeases struct {
	reset.Store
	reset.OutboxStore
	reset.Cooldowner
}

func withoutRenewal(s reset.Store) reset.Store {
	return fixedLeases{s, s.(reset.OutboxStore), s.(reset.Cooldowner)}
}
