// Command mysql-resend is passreset's production wiring: tokens, the
// shared cooldown and the durable outbox in MySQL or MariaDB (package
// mysqlstore), mail through Resend (package resendmailer), the
// application's own users table with bcrypt hashes, and the HTTP API and
// hosted page (package httpadapter) mounted under /api/directory.
//
// It is configured from the environment:
//
//	PASSRESET_MYSQL_DSN  required: e.g. app:secret@tcp(db:3306)/app?parseTime=true
//	RESEND_API_KEY       required: the Resend API key
//	MAIL_FROM            required: e.g. "Acme <security@acme.example>" (a verified domain)
//	PUBLIC_URL           required: the app's external URL, e.g. https://acme.example
//	OUTBOX_KEY           required: base64 of 32 random bytes sealing queued mail
//	                     (make one with: head -c32 /dev/urandom | base64)
//	OUTBOX_KEY_ID        name of that key (default k1)
//	LISTEN_ADDR          default 127.0.0.1:8080
//	CLIENT_ID, CLIENT_SECRET  HTTP Basic credentials of trusted back ends (optional)
//	ALLOWED_LINKS        comma-separated URL prefixes callers' links may use (optional)
//	TOKEN_KEY            base64 key for HMAC token hashes (optional)
//	RESEND_BASE_URL      another Resend endpoint, for tests (optional)
//	SEED_EMAIL, SEED_PASSWORD  create this user at start if it does not exist (optional)
//	WORKERS              outbox workers in this process (default 2; 0 runs none)
//
// Run as many instances as you like against one database: the outbox's
// leases keep their workers apart, and the cooldown is shared.
package main

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"
	"golang.org/x/crypto/bcrypt"

	"github.com/passreset/passreset/httpadapter"
	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/store/mysqlstore"
)

const mount = "/api/directory"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mysql-resend:", err)
		os.Exit(1)
	}
}

// config is what run reads from the environment.
type config struct {
	dsn, apiKey, from, publicURL, listen, clientID, clientSecret, resendURL string
	seedEmail, seedPassword                                                 string
	allowed                                                                 []string
	outboxKey, tokenKey                                                     []byte
	outboxKeyID                                                             string
	workers                                                                 int
}

func readConfig(getenv func(string) string) (config, error) {
	c := config{
		dsn: getenv("PASSRESET_MYSQL_DSN"), apiKey: getenv("RESEND_API_KEY"), from: getenv("MAIL_FROM"),
		publicURL: strings.TrimRight(getenv("PUBLIC_URL"), "/"), listen: getenv("LISTEN_ADDR"),
		clientID: getenv("CLIENT_ID"), clientSecret: getenv("CLIENT_SECRET"), resendURL: getenv("RESEND_BASE_URL"),
		seedEmail: getenv("SEED_EMAIL"), seedPassword: getenv("SEED_PASSWORD"), outboxKeyID: getenv("OUTBOX_KEY_ID"),
		workers: 2,
	}
	var problems []string
	for name, v := range map[string]string{"PASSRESET_MYSQL_DSN": c.dsn, "RESEND_API_KEY": c.apiKey, "MAIL_FROM": c.from, "PUBLIC_URL": c.publicURL} {
		if v == "" {
			problems = append(problems, name+" is required")
		}
	}
	var err error
	if c.outboxKey, err = base64.StdEncoding.DecodeString(getenv("OUTBOX_KEY")); err != nil || len(c.outboxKey) != 32 {
		problems = append(problems, "OUTBOX_KEY must be the base64 of 32 random bytes (head -c32 /dev/urandom | base64)")
	}
	if v := getenv("TOKEN_KEY"); v != "" {
		if c.tokenKey, err = base64.StdEncoding.DecodeString(v); err != nil || len(c.tokenKey) < 32 {
			problems = append(problems, "TOKEN_KEY must be the base64 of at least 32 random bytes")
		}
	}
	if v := getenv("WORKERS"); v != "" {
		if c.workers, err = strconv.Atoi(v); err != nil || c.workers < 0 {
			problems = append(problems, "WORKERS must be a whole number")
		}
	}
	if (c.clientID == "") != (c.clientSecret == "") {
		problems = append(problems, "CLIENT_ID and CLIENT_SECRET go together")
	}
	if (c.seedEmail == "") != (c.seedPassword == "") {
		problems = append(problems, "SEED_EMAIL and SEED_PASSWORD go together")
	}
	if v := getenv("ALLOWED_LINKS"); v != "" {
		c.allowed = strings.Split(v, ",")
	}
	if c.listen == "" {
		c.listen = "127.0.0.1:8080"
	}
	if c.outboxKeyID == "" {
		c.outboxKeyID = "k1"
	}
	if len(problems) > 0 {
		return c, errors.New(strings.Join(problems, "; "))
	}
	return c, nil
}

// run serves until ctx ends. The first line it prints is "listening on
// <URL>" once the server accepts connections.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := readConfig(getenv)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stdout, nil))

	// The application's database handle, shared by its own tables and
	// passreset's. UTC keeps bun from shifting times.
	mcfg, err := mysql.ParseDSN(cfg.dsn)
	if err != nil {
		return fmt.Errorf("PASSRESET_MYSQL_DSN: %w", err)
	}
	mcfg.ParseTime = true
	connector, err := mysql.NewConnector(mcfg)
	if err != nil {
		return err
	}
	db := bun.NewDB(sql.OpenDB(connector), mysqldialect.New(mysqldialect.WithTimeLocation("UTC")))
	defer db.Close()

	store, err := mysqlstore.New(db, mysqlstore.Options{})
	if err != nil {
		return err
	}
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	users := &userTable{db: db}
	if err := users.migrate(ctx); err != nil {
		return err
	}
	if cfg.seedEmail != "" {
		if err := users.create(ctx, cfg.seedEmail, cfg.seedPassword); err != nil {
			return err
		}
	}

	mailer, err := resendmailer.New(resendmailer.Options{
		APIKey: cfg.apiKey, From: cfg.from, BaseURL: cfg.resendURL, Logger: logger,
		// The outbox retries with its own backoff and survives restarts, so
		// one attempt per claim is enough here.
		MaxAttempts: 1,
	})
	if err != nil {
		return err
	}
	svc, err := reset.New(reset.Config{
		Store: store, Users: users, Mailer: mailer,
		ResetURL:     cfg.publicURL + mount + httpadapter.PagePath,
		AllowedLinks: append(cfg.allowed, cfg.publicURL+"/"),
		TokenKey:     cfg.tokenKey,
		PasswordPolicy: func(pw string) error {
			if len(pw) > 72 { // bcrypt reads no more
				return &reset.PasswordError{Reason: "must be at most 72 bytes long"}
			}
			return reset.DefaultPasswordPolicy(pw)
		},
		Outbox: &reset.OutboxOptions{Keys: []reset.SealKey{{ID: cfg.outboxKeyID, Key: cfg.outboxKey}}},
		Logger: logger,
	})
	if err != nil {
		return err
	}
	var opts httpadapter.Options
	if cfg.clientID != "" {
		if opts.Authorize, err = httpadapter.BasicAuth(cfg.clientID, cfg.clientSecret); err != nil {
			return err
		}
	}
	h, err := httpadapter.New(svc, opts)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(mount+"/", http.StripPrefix(mount, h))
	mux.Handle("POST /login", users.loginHandler())

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())

	var wg sync.WaitGroup
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	if cfg.workers > 0 {
		wg.Go(func() { svc.RunOutbox(workCtx) })
	}
	wg.Go(func() { prune(workCtx, svc, logger) })

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = errors.Join(err, srv.Shutdown(sctx), svc.Shutdown(sctx))
	stopWork()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// prune removes expired tokens and cooldowns every hour.
func prune(ctx context.Context, svc *reset.Service, logger *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := svc.Prune(ctx); err != nil {
				logger.Error("pruning", "err", err)
			}
		}
	}
}

// userTable is the application's own users table. It implements
// [reset.Users]; passreset never reads the password hashes.
type userTable struct{ db *bun.DB }

type appUser struct {
	bun.BaseModel `bun:"table:app_users"`
	ID            int64  `bun:"id,pk,autoincrement"`
	Email         string `bun:"email,notnull,unique"`
	PasswordHash  []byte `bun:"password_hash,notnull,type:varbinary(60)"`
}

var _ reset.Users = (*userTable)(nil)

func (u *userTable) migrate(ctx context.Context) error {
	// utf8mb4_unicode_ci makes the address match case-insensitively.
	_, err := u.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS app_users (
		id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
		email VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL UNIQUE,
		password_hash VARBINARY(60) NOT NULL
	) ENGINE=InnoDB`)
	return err
}

func (u *userTable) create(ctx context.Context, email, password string) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	_, err = u.db.NewInsert().Model(&appUser{Email: email, PasswordHash: hash}).Ignore().Exec(ctx)
	return err
}

// LookupEmail implements [reset.Users].
func (u *userTable) LookupEmail(ctx context.Context, email string) (reset.User, error) {
	var a appUser
	err := u.db.NewSelect().Model(&a).Column("id", "email").Where("email = ?", email).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return reset.User{}, reset.ErrUnknownUser
	}
	if err != nil {
		return reset.User{}, err
	}
	return reset.User{ID: strconv.FormatInt(a.ID, 10), Email: a.Email}, nil
}

// SetPassword implements [reset.Users].
func (u *userTable) SetPassword(ctx context.Context, userID, password string) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	res, err := u.db.NewUpdate().Model((*appUser)(nil)).Set("password_hash = ?", hash).Where("id = ?", userID).Exec(ctx)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("no user %s", userID)
	}
	return nil
}

// dummyHash is compared against for unknown addresses, so that a login
// takes as long whether or not the address has an account.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.DefaultCost)

// loginHandler serves POST /login {"email", "password"} with 200 or 401.
// A real application would start a session here.
func (u *userTable) loginHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Email, Password string }
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&in); err != nil {
			http.Error(w, `{"message":"send {\"email\", \"password\"}"}`, http.StatusBadRequest)
			return
		}
		var a appUser
		err := u.db.NewSelect().Model(&a).Where("email = ?", in.Email).Scan(r.Context())
		hash := dummyHash
		if err == nil {
			hash = a.PasswordHash
		} else if !errors.Is(err, sql.ErrNoRows) {
			http.Error(w, `{"message":"try again later"}`, http.StatusServiceUnavailable)
			return
		}
		if bcrypt.CompareHashAndPassword(hash, []byte(in.Password)) != nil || err != nil {
			http.Error(w, `{"message":"wrong email or password"}`, http.StatusUnauthorized)
			return
		}
		fmt.Fprintln(w, `{"message":"signed in"}`)
	})
}
