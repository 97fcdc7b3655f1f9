package storetest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
)

// Store is what the shared token tests need of a store.
type Store interface {
	reset.Store
	reset.Pruner
	reset.Cooldowner
}

// Base is the tests' reference time, with microseconds.
var Base = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

// NewService returns a Service on store with one known user, id, whose
// address is id@example.com, on clock when it is not nil, and shuts it
// down when tb ends.
func NewService(tb testing.TB, store reset.Store, id string, clock *resettest.Clock) (*reset.Service, *resettest.Users, *resettest.Mailer) {
	tb.Helper()
	users, mailer := &resettest.Users{}, &resettest.Mailer{}
	users.Add(id, id+"@example.com", "old password")
	cfg := reset.Config{
		Store: store, Users: users, Mailer: mailer,
		ResetURL: "https://app.example.com/reset",
		Logger:   slog.New(slog.DiscardHandler),
	}
	if clock != nil {
		cfg.Now = clock.Now
	}
	svc, err := reset.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { svc.Shutdown(context.Background()) })
	return svc, users, mailer
}
