package pgstore_test

import (
	"context"
	"log"
	"os"

	"github.com/passreset/passreset/mailer/logmailer"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/store/pgstore"
)

// Example wires the store into a Service. It needs a server, so it is
// compiled but not run.
func Example() {
	ctx := context.Background()

	// Connect with pgx, build bun with pgdialect and migrate the tables
	// (passreset_* in the current schema). Without Migrate, Open only
	// checks the schema: migrate from a deployment step (passreset schema
	// migrate, or the goose or golang-migrate files). To use your own
	// *bun.DB, call pgstore.New(db, pgstore.Options{}) and store.Migrate(ctx).
	store, db, err := pgstore.Open(ctx, os.Getenv("DATABASE_URL"), pgstore.Options{Migrate: true}) // e.g. "postgres://app:secret@db:5432/app"
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	svc, err := reset.New(reset.Config{
		KeepSessions: true,
		Store:        store, // also the shared cooldown, across every instance
		Users: reset.UsersFuncs{
			Lookup: func(ctx context.Context, email string) (reset.User, error) {
				// Look the account up in your users table, through db.
				return reset.User{}, reset.ErrUnknownUser
			},
			Set: func(ctx context.Context, userID, password string) error {
				// Hash the password and store it.
				return nil
			},
		},
		Mailer:   logmailer.New(os.Stderr),
		ResetURL: "https://app.example.com/reset",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Shutdown(ctx)

	// Serve HTTP with package httpadapter, and run svc.Prune now and then
	// (or run a reset/outbox Outbox, which prunes too).
}
