package main

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/passreset/passreset/feedback"
	"github.com/passreset/passreset/httpadapter"
	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/smtpmailer"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/store/mysqlstore"
	"github.com/passreset/passreset/store/pgstore"
)

// exampleMount is where examples/mysql-resend mounts the handler: the
// reset link base is PUBLIC_URL + exampleMount + httpadapter.PagePath
// unless RESET_URL says otherwise.
const exampleMount = "/api/directory"

// store is the configured database: the passreset tables in it, and the
// handle that reaches it.
type store struct {
	db      *bun.DB
	outbox  outbox.Store
	fb      feedback.Store
	check   func(context.Context) error // the store's Check: reachable, usable, schema current
	migrate func(context.Context) error
	version func(context.Context) (int, error) // the installed schema version, 0 for none; read-only
	want    int                                // the schema version this build needs
}

// dialect says which database the environment names: "mysql",
// "postgres", or an error that says what to set.
func dialect(getenv func(string) string) (string, error) {
	my, pg := getenv("PASSRESET_MYSQL_DSN"), getenv("PASSRESET_PG_DSN")
	switch {
	case my != "" && pg != "":
		return "", usageError{errors.New("set only one of PASSRESET_MYSQL_DSN and PASSRESET_PG_DSN")}
	case my != "":
		return "mysql", nil
	case pg != "":
		return "postgres", nil
	}
	return "", usageError{errors.New("PASSRESET_MYSQL_DSN or PASSRESET_PG_DSN is required")}
}

// openStore connects to the configured database. It never migrates and
// writes nothing.
func openStore(getenv func(string) string) (*store, error) {
	d, err := dialect(getenv)
	if err != nil {
		return nil, err
	}
	prefix := getenv("PASSRESET_TABLE_PREFIX")
	if d == "postgres" {
		cfg, err := pgx.ParseConfig(getenv("PASSRESET_PG_DSN"))
		if err != nil {
			return nil, usageError{fmt.Errorf("PASSRESET_PG_DSN: %w", err)}
		}
		db := bun.NewDB(stdlib.OpenDB(*cfg), pgdialect.New())
		s, err := pgstore.New(db, pgstore.Options{TablePrefix: prefix})
		if err != nil {
			db.Close()
			return nil, usageError{err}
		}
		return &store{db: db, outbox: s, fb: s, check: s.Check, migrate: s.Migrate, version: s.Version, want: pgstore.SchemaVersion}, nil
	}
	mcfg, err := mysql.ParseDSN(getenv("PASSRESET_MYSQL_DSN"))
	if err != nil {
		return nil, usageError{fmt.Errorf("PASSRESET_MYSQL_DSN: %w", err)}
	}
	mcfg.ParseTime = true
	connector, err := mysql.NewConnector(mcfg)
	if err != nil {
		return nil, usageError{fmt.Errorf("PASSRESET_MYSQL_DSN: %w", err)}
	}
	db := bun.NewDB(sql.OpenDB(connector), mysqldialect.New(mysqldialect.WithTimeLocation("UTC")))
	s, err := mysqlstore.New(db, mysqlstore.Options{TablePrefix: prefix})
	if err != nil {
		db.Close()
		return nil, usageError{err}
	}
	return &store{db: db, outbox: s, fb: s, check: s.Check, migrate: s.Migrate, version: s.Version, want: mysqlstore.SchemaVersion}, nil
}

// schemaSQL returns the schema for the configured (or named) dialect.
func schemaSQL(d, prefix string) (string, int, error) {
	if d == "postgres" {
		s, err := pgstore.SchemaSQL("", prefix)
		return s, pgstore.SchemaVersion, err
	}
	s, err := mysqlstore.SchemaSQL(prefix)
	return s, mysqlstore.SchemaVersion, err
}

// migrationFiles returns the migration files of tool for dialect d.
func migrationFiles(d, tool, prefix string) (map[string]string, error) {
	if d == "postgres" {
		return pgstore.MigrationFiles(tool, "", prefix)
	}
	return mysqlstore.MigrationFiles(tool, prefix)
}

// sealKeys reads OUTBOX_KEY and OUTBOX_KEY_ID as the example does.
func sealKeys(getenv func(string) string) ([]outbox.SealKey, error) {
	raw := getenv("OUTBOX_KEY")
	if raw == "" {
		return nil, usageError{errors.New("OUTBOX_KEY is required for this (the base64 of 32 random bytes; passreset key makes one)")}
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) != 32 {
		return nil, usageError{errors.New("OUTBOX_KEY must be the base64 of 32 random bytes (passreset key makes one)")}
	}
	id := getenv("OUTBOX_KEY_ID")
	if id == "" {
		id = "k1"
	}
	return []outbox.SealKey{{ID: id, Key: key}}, nil
}

// mailerConfig builds the configured mailer as the example does: SMTP_URL
// if set, otherwise Resend with RESEND_API_KEY. close releases it.
func newMailer(getenv func(string) string) (m reset.Mailer, close func(), err error) {
	from := getenv("MAIL_FROM")
	if from == "" {
		return nil, nil, usageError{errors.New(`MAIL_FROM is required, e.g. "Acme <security@acme.example>"`)}
	}
	if u := getenv("SMTP_URL"); u != "" {
		sm, err := smtpmailer.NewFromURL(u, smtpmailer.Options{From: from})
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("SMTP_URL: %w", err)}
		}
		return sm, func() { sm.Close() }, nil
	}
	if getenv("RESEND_API_KEY") == "" {
		return nil, nil, usageError{errors.New("RESEND_API_KEY (or SMTP_URL) is required")}
	}
	rm, err := resendmailer.New(resendmailer.Options{APIKey: getenv("RESEND_API_KEY"), From: from, BaseURL: getenv("RESEND_BASE_URL")})
	if err != nil {
		return nil, nil, usageError{err}
	}
	return rm, func() {}, nil
}

// resetURL is the link base the emails carry.
func resetURL(getenv func(string) string) (string, error) {
	if u := getenv("RESET_URL"); u != "" {
		return u, nil
	}
	pub := strings.TrimRight(getenv("PUBLIC_URL"), "/")
	if pub == "" {
		return "", usageError{errors.New("PUBLIC_URL (or RESET_URL) is required")}
	}
	return pub + exampleMount + httpadapter.PagePath, nil
}
