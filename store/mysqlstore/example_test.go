package mysqlstore_test

import (
	"context"
	"database/sql"
	"log"
	"os"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"

	"github.com/passreset/passreset/mailer/logmailer"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/store/mysqlstore"
)

// Example wires the store into a Service. It needs a server, so it is
// compiled but not run.
func Example() {
	ctx := context.Background()

	// The application's own database handle. WithTimeLocation("UTC") keeps
	// bun from writing your own tables' times in the local time zone.
	sqldb, err := sql.Open("mysql", os.Getenv("PASSRESET_MYSQL_DSN")) // e.g. "app:secret@tcp(db:3306)/app?parseTime=true"
	if err != nil {
		log.Fatal(err)
	}
	db := bun.NewDB(sqldb, mysqldialect.New(mysqldialect.WithTimeLocation("UTC")))
	defer db.Close()

	store, err := mysqlstore.New(db, mysqlstore.Options{}) // tables passreset_*
	if err != nil {
		log.Fatal(err)
	}
	// Create or upgrade the tables; or apply mysqlstore.SchemaSQL with your
	// migration tool and call store.Check(ctx) here instead.
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	svc, err := reset.New(reset.Config{
		KeepSessions: true,
		Store:        store, // also the shared cooldown, across every instance
		Users: reset.UsersFuncs{
			Lookup: func(ctx context.Context, email string) (reset.User, error) {
				// Look the account up in your users table.
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

	// Remove expired tokens and cooldowns now and then.
	go func() {
		for range time.Tick(time.Hour) {
			if _, err := svc.Prune(ctx); err != nil {
				log.Print(err)
			}
		}
	}()

	// Serve HTTP with package httpadapter...
}
