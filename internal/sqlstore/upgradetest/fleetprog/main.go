// Command fleetprog is one instance of an application on passreset's SQL
// stores, for the upgrade tests: built plainly it is the current version;
// built with the passreset_oldschema tag it is the previous schema
// version's program. It runs one step and exits:
//
//	fleetprog -dialect mysql|postgres -prefix P migrate
//	fleetprog ... version            prints "<installed> <this program's>"
//	fleetprog ... request EMAIL      queues a reset request in the outbox
//	fleetprog ... drain              sends what is queued; prints "TOKEN <to> <token>"
//	fleetprog ... complete TOKEN     sets a new password with the token
//
// Every step but migrate first checks the schema, as an instance does at
// start-up, and exits with status 3 when the store refuses it. The DSN is
// PASSRESET_MYSQL_DSN or PASSRESET_PG_DSN.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/mysqlstore"
	"github.com/passreset/passreset/store/pgstore"
)

// store is what the program needs of either store.
type store interface {
	reset.Store
	outbox.Store
	Migrate(context.Context) error
	Check(context.Context) error
	Version(context.Context) (int, error)
}

func main() {
	dialect := flag.String("dialect", "", "mysql or postgres")
	prefix := flag.String("prefix", "", "table prefix")
	flag.Parse()
	if err := run(context.Background(), *dialect, *prefix, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "fleetprog:", err)
		if _, ok := err.(checkError); ok {
			os.Exit(3)
		}
		os.Exit(1)
	}
}

// checkError is a schema the store refuses at start-up.
type checkError struct{ error }

func open(dialect, prefix string) (store, *bun.DB, int, error) {
	if dialect == "postgres" {
		cfg, err := pgx.ParseConfig(os.Getenv("PASSRESET_PG_DSN"))
		if err != nil {
			return nil, nil, 0, err
		}
		db := bun.NewDB(stdlib.OpenDB(*cfg), pgdialect.New())
		s, err := pgstore.New(db, pgstore.Options{TablePrefix: prefix})
		return s, db, pgstore.SchemaVersion, err
	}
	cfg, err := mysql.ParseDSN(os.Getenv("PASSRESET_MYSQL_DSN"))
	if err != nil {
		return nil, nil, 0, err
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, nil, 0, err
	}
	db := bun.NewDB(sql.OpenDB(conn), mysqldialect.New(mysqldialect.WithTimeLocation("UTC")))
	s, err := mysqlstore.New(db, mysqlstore.Options{TablePrefix: prefix})
	return s, db, mysqlstore.SchemaVersion, err
}

func run(ctx context.Context, dialect, prefix string, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("no step given")
	}
	s, db, want, err := open(dialect, prefix)
	if err != nil {
		return err
	}
	defer db.Close()
	if args[0] == "migrate" {
		return s.Migrate(ctx)
	}
	if err := s.Check(ctx); err != nil {
		return checkError{err}
	}
	if args[0] == "version" {
		v, err := s.Version(ctx)
		if err != nil {
			return err
		}
		fmt.Println(v, want)
		return nil
	}
	ob, err := outbox.New(s, outbox.Options{Keys: []outbox.SealKey{{ID: "k1", Key: bytes.Repeat([]byte{9}, 32)}}})
	if err != nil {
		return err
	}
	// Every address is an account, with a credential stamp (a column of
	// the newest migration).
	users := reset.UsersFuncs{
		Lookup: func(_ context.Context, email string) (reset.User, error) {
			return reset.User{ID: email, Email: email, Stamp: "stamp 1"}, nil
		},
		Set: func(_ context.Context, userID, _ string) error {
			fmt.Println("SET", userID)
			return nil
		},
	}
	mailer := &resettest.Mailer{}
	svc, err := reset.New(reset.Config{KeepSessions: true, Store: s, Users: users, Mailer: mailer, Queue: ob,
		ResetURL: "https://app.example/reset", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer svc.Shutdown(ctx)
	switch {
	case args[0] == "request" && len(args) == 2:
		return svc.Request(ctx, args[1], "")
	case args[0] == "drain" && len(args) == 1:
		if _, err := ob.Drain(ctx); err != nil {
			return err
		}
		for _, m := range mailer.Messages() {
			fmt.Println("TOKEN", m.To, resettest.Token(m.Text))
		}
		return nil
	case args[0] == "complete" && len(args) == 2:
		_, err := svc.Complete(ctx, reset.Completion{Token: args[1], Password: "violet harbour lantern 1"})
		return err
	}
	return fmt.Errorf("unknown step %q", args)
}
