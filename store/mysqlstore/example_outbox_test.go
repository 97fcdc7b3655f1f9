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

	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/store/mysqlstore"
)

// Example_outbox turns on the durable outbox: queued mail survives a
// crash, and every instance of the application that runs RunOutbox drains
// it. It needs a server, so it is compiled but not run.
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
	mailer, err := resendmailer.New(resendmailer.Options{
		APIKey: os.Getenv("RESEND_API_KEY"), From: "Example <no-reply@example.com>",
	})
	if err != nil {
		log.Fatal(err)
	}
	svc, err := reset.New(reset.Config{
		Store: store, Users: reset.UsersFuncs{ /* your users table */ }, Mailer: mailer,
		ResetURL: "https://app.example.com/reset",
		Outbox:   &reset.OutboxOptions{Keys: []reset.SealKey{{ID: "2026-01", Key: key}}},
	})
	if err != nil {
		log.Fatal(err)
	}

	// Workers: in this instance, and in as many others as you like. They
	// stop when ctx ends, after finishing the messages in hand.
	done := make(chan error, 1)
	go func() { done <- svc.RunOutbox(ctx) }()

	// Serve HTTP with package httpadapter: a public password-lost
	// request is now one INSERT into the outbox...

	<-done
}
