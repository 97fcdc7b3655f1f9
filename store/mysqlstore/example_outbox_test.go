package mysqlstore_test

import (
	"context"
	"database/sql"
	"encoding/hex"
	"log"
	"os"
	"os/signal"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"

	"github.com/passreset/passreset/mailer/logmailer"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/store/mysqlstore"
)

// Example_outbox queues mail in the durable outbox: queued mail survives
// a crash, and every instance of the application that runs the outbox
// drains it. It needs a server, so it is compiled but not run.
func Example_outbox() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	sqldb, err := sql.Open("mysql", os.Getenv("PASSRESET_MYSQL_DSN"))
	if err != nil {
		log.Fatal(err)
	}
	db := bun.NewDB(sqldb, mysqldialect.New(mysqldialect.WithTimeLocation("UTC")))
	store, err := mysqlstore.New(db, mysqlstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil { // creates <prefix>outbox too
		log.Fatal(err)
	}

	// 32 random bytes from your secret store, the same in every instance:
	// queued messages are sealed with it. Put a new key first to rotate.
	key, err := hex.DecodeString(os.Getenv("PASSRESET_OUTBOX_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	ob, err := outbox.New(store, outbox.Options{Keys: []outbox.SealKey{{ID: "2026-01", Key: key}}})
	if err != nil {
		log.Fatal(err)
	}
	svc, err := reset.New(reset.Config{
		KeepSessions: true,
		Store:        store, Users: reset.UsersFuncs{ /* your users table */ },
		Mailer:   logmailer.New(os.Stderr), // resendmailer in production
		ResetURL: "https://app.example.com/reset",
		Queue:    ob,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Shutdown(context.Background())

	// Serve HTTP with package httpadapter: a public password-lost request
	// is now one INSERT into the outbox. The workers run in this instance,
	// and in as many others as you like, until ctx ends.
	if err := ob.Run(ctx); err != nil {
		log.Print(err)
	}
}
