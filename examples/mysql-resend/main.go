// Command mysql-resend is passreset's production wiring: tokens, the
// shared cooldown and the durable outbox in MySQL or MariaDB (package
// mysqlstore) or PostgreSQL (package pgstore), mail through Resend
// (package resendmailer) or any SMTP provider (package smtpmailer), the
// application's own users table with argon2id hashes, and the HTTP API and
// hosted page (package httpadapter) mounted under /api/directory.
//
// It is configured from the environment:
//
//	PASSRESET_MYSQL_DSN  the MySQL or MariaDB database, e.g. app:secret@tcp(db:3306)/app?parseTime=true
//	PASSRESET_PG_DSN     or the PostgreSQL one, e.g. postgres://app:secret@db:5432/app
//	                     (exactly one of the two is required)
//	RESEND_API_KEY       the Resend API key (required unless SMTP_URL is set)
//	SMTP_URL             send through SMTP instead of Resend, e.g.
//	                     smtps://user:pass@smtp.example.com:465 or
//	                     smtp://user:pass@smtp.example.com:587 (STARTTLS required)
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
//	RESEND_TIMEOUT       how long one Resend API call may take (default 10s)
//	OUTBOX_RATE          API calls per second the mail account accepts, shared by
//	                     every instance through the database (default: the mailer's
//	                     advertised rate, Resend's limit for Resend, none for SMTP;
//	                     "none" turns the shared budget off)
//	OUTBOX_BATCH         envelopes one worker claims at once, and with Resend the
//	                     emails of one batch call (default 100 for Resend, 4 for SMTP)
//	OUTBOX_LEASE         how long a claim lasts without renewal: a crashed instance's
//	                     mail waits at most this long (default 10s; at least 1s)
//	SIGN_IN_URL          where the success page links to (default PUBLIC_URL/)
//	OPS_ADDR             serve /livez, /readyz and /metrics (Prometheus) on this
//	                     internal address, e.g. 127.0.0.1:9090 (optional)
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
	"math"
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
	"golang.org/x/time/rate"

	"github.com/passreset/passreset/httpadapter"
	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/smtpmailer"
	"github.com/passreset/passreset/passhash"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/store/mysqlstore"
	"github.com/passreset/passreset/store/pgstore"
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
	smtpURL, pgDSN, opsAddr                                                 string
	seedEmail, seedPassword                                                 string
	allowed                                                                 []string
	outboxKey, tokenKey                                                     []byte
	outboxKeyID, signIn                                                     string
	workers                                                                 int
	resendTimeout                                                           time.Duration
	outboxRate                                                              float64 // 0: the mailer's; -1: none
	outboxBatch                                                             int
	outboxLease                                                             time.Duration
}

func readConfig(getenv func(string) string) (config, error) {
	c := config{
		dsn: getenv("PASSRESET_MYSQL_DSN"), apiKey: getenv("RESEND_API_KEY"), from: getenv("MAIL_FROM"),
		publicURL: strings.TrimRight(getenv("PUBLIC_URL"), "/"), listen: getenv("LISTEN_ADDR"),
		clientID: getenv("CLIENT_ID"), clientSecret: getenv("CLIENT_SECRET"), resendURL: getenv("RESEND_BASE_URL"),
		smtpURL: getenv("SMTP_URL"), pgDSN: getenv("PASSRESET_PG_DSN"), opsAddr: getenv("OPS_ADDR"),
		seedEmail: getenv("SEED_EMAIL"), seedPassword: getenv("SEED_PASSWORD"), outboxKeyID: getenv("OUTBOX_KEY_ID"),
		signIn: getenv("SIGN_IN_URL"), workers: 2, resendTimeout: resendmailer.DefaultTimeout,
	}
	var problems []string
	required := map[string]string{"MAIL_FROM": c.from, "PUBLIC_URL": c.publicURL}
	switch {
	case c.dsn == "" && c.pgDSN == "":
		problems = append(problems, "PASSRESET_MYSQL_DSN or PASSRESET_PG_DSN is required")
	case c.dsn != "" && c.pgDSN != "":
		problems = append(problems, "set only one of PASSRESET_MYSQL_DSN and PASSRESET_PG_DSN")
	}
	if c.smtpURL == "" {
		required["RESEND_API_KEY (or SMTP_URL)"] = c.apiKey
	}
	for name, v := range required {
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
	if v := getenv("RESEND_TIMEOUT"); v != "" {
		if c.resendTimeout, err = time.ParseDuration(v); err != nil || c.resendTimeout <= 0 {
			problems = append(problems, "RESEND_TIMEOUT must be a positive duration such as 10s")
		}
	}
	if v := getenv("OUTBOX_RATE"); v == "none" {
		c.outboxRate = -1
	} else if v != "" {
		if c.outboxRate, err = strconv.ParseFloat(v, 64); err != nil || !(c.outboxRate > 0) || math.IsInf(c.outboxRate, 0) {
			problems = append(problems, `OUTBOX_RATE must be a positive number of calls per second, or "none"`)
		}
	}
	if v := getenv("OUTBOX_BATCH"); v != "" {
		if c.outboxBatch, err = strconv.Atoi(v); err != nil || c.outboxBatch <= 0 {
			problems = append(problems, "OUTBOX_BATCH must be a positive whole number")
		}
	}
	if v := getenv("OUTBOX_LEASE"); v != "" {
		if c.outboxLease, err = time.ParseDuration(v); err != nil || c.outboxLease < time.Second {
			problems = append(problems, "OUTBOX_LEASE must be a duration of at least 1s, such as 15s")
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
	if c.signIn == "" {
		c.signIn = c.publicURL + "/"
	}
	if len(problems) > 0 {
		return c, errors.New(strings.Join(problems, "; "))
	}
	return c, nil
}

// outboxOptions are the durable outbox's settings. Rate 0 paces every
// instance together a margin below the mailer's advertised rate
// (Resend's limit, for Resend); -1 turns the budget off.
func (c config) outboxOptions() outbox.Options {
	return outbox.Options{
		Keys:    []outbox.SealKey{{ID: c.outboxKeyID, Key: c.outboxKey}},
		Workers: max(c.workers, 1), // Run runs only when WORKERS > 0
		Rate:    c.outboxRate,
		Batch:   c.outboxBatch,
		Lease:   c.outboxLease,
	}
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
	// passreset's.
	var db *bun.DB
	var store interface {
		reset.Store
		outbox.Store
	}
	if cfg.pgDSN != "" {
		pg, pgdb, err := pgstore.Open(ctx, cfg.pgDSN, pgstore.Options{Migrate: true})
		if err != nil {
			return fmt.Errorf("PASSRESET_PG_DSN: %w", err)
		}
		db, store = pgdb, pg
	} else {
		mcfg, err := mysql.ParseDSN(cfg.dsn)
		if err != nil {
			return fmt.Errorf("PASSRESET_MYSQL_DSN: %w", err)
		}
		mcfg.ParseTime = true
		connector, err := mysql.NewConnector(mcfg)
		if err != nil {
			return err
		}
		// UTC keeps bun from shifting times.
		db = bun.NewDB(sql.OpenDB(connector), mysqldialect.New(mysqldialect.WithTimeLocation("UTC")))
		my, err := mysqlstore.New(db, mysqlstore.Options{})
		if err != nil {
			db.Close()
			return err
		}
		if err := my.Migrate(ctx); err != nil {
			db.Close()
			return err
		}
		store = my
	}
	defer db.Close()
	users := &userTable{db: db, pg: cfg.pgDSN != ""}
	if err := users.migrate(ctx); err != nil {
		return err
	}
	if cfg.seedEmail != "" {
		if err := users.create(ctx, cfg.seedEmail, cfg.seedPassword); err != nil {
			return err
		}
	}

	// A mailer makes one attempt per call and says what happened; the
	// outbox retries, paces and survives restarts.
	var mailer reset.Mailer
	if cfg.smtpURL != "" {
		m, err := smtpmailer.NewFromURL(cfg.smtpURL, smtpmailer.Options{From: cfg.from, Logger: logger})
		if err != nil {
			return fmt.Errorf("SMTP_URL: %w", err)
		}
		defer m.Close()
		mailer = m
	} else {
		m, err := resendmailer.New(resendmailer.Options{
			APIKey: cfg.apiKey, From: cfg.from, BaseURL: cfg.resendURL, Logger: logger,
			Timeout: cfg.resendTimeout,
		})
		if err != nil {
			return err
		}
		mailer = m
	}
	// Metrics and probes (ops.go): the mailer measured, the events counted.
	o, err := newOps(cfg.opsAddr, store, cfg.workers)
	if err != nil {
		return err
	}
	mailer = o.metrics.Mailer(mailer)
	ob, err := outbox.New(store, cfg.outboxOptions())
	if err != nil {
		return err
	}
	svc, err := reset.New(reset.Config{
		Store: store, Users: users, Mailer: mailer, Queue: ob,
		ResetURL:     cfg.publicURL + mount + httpadapter.PagePath,
		AllowedLinks: append(cfg.allowed, cfg.publicURL+"/"),
		TokenKey:     cfg.tokenKey,
		Logger:       logger,
		OnEvent:      o.metrics.OnEvent,
		// This example signs nobody in, so it has no sessions to end; an
		// application with sessions sets EndSessions instead (README,
		// "Sessions").
		KeepSessions: true,
	})
	if err != nil {
		return err
	}
	opts := httpadapter.Options{SignInURL: cfg.signIn}
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

	if o.handler != nil {
		oln, err := net.Listen("tcp", cfg.opsAddr)
		if err != nil {
			return err
		}
		osrv := &http.Server{Handler: o.handler, ReadHeaderTimeout: 5 * time.Second}
		defer osrv.Close()
		go osrv.Serve(oln)
		fmt.Fprintf(stdout, "ops on http://%s\n", oln.Addr())
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	// Timeouts for every phase, so that slow clients cannot hold connections.
	srv := &http.Server{Handler: mux,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())

	var wg sync.WaitGroup
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	if cfg.workers > 0 {
		// The workers also prune expired tokens, ended cooldowns and old
		// dead envelopes.
		wg.Go(func() { o.workers.Run(workCtx, ob.Run) })
	}

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

// userTable is the application's own users table. It implements
// [reset.Users]; passreset never reads the password hashes.
type userTable struct {
	db *bun.DB
	pg bool // PostgreSQL rather than MySQL
}

type appUser struct {
	bun.BaseModel `bun:"table:app_users"`
	ID            int64  `bun:"id,pk,autoincrement"`
	Email         string `bun:"email,notnull,unique"`
	PasswordHash  []byte `bun:"password_hash,notnull,type:varbinary(255)"`
}

var _ reset.Users = (*userTable)(nil)

func (u *userTable) migrate(ctx context.Context) error {
	if u.pg {
		// A unique index on lower(email), and lookups by lower(email),
		// make the address match case-insensitively.
		_, err := u.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS app_users (
			id BIGSERIAL PRIMARY KEY,
			email TEXT NOT NULL,
			password_hash BYTEA NOT NULL
		);
		CREATE UNIQUE INDEX IF NOT EXISTS app_users_email ON app_users (lower(email))`)
		return err
	}
	// utf8mb4_unicode_ci makes the address match case-insensitively.
	_, err := u.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS app_users (
		id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
		email VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL UNIQUE,
		password_hash VARBINARY(255) NOT NULL
	) ENGINE=InnoDB`)
	if err != nil {
		return err
	}
	// Tables created when the example stored bcrypt hashes (60 bytes) are
	// widened for argon2id's; their bcrypt hashes keep verifying.
	_, err = u.db.ExecContext(ctx, `ALTER TABLE app_users MODIFY password_hash VARBINARY(255) NOT NULL`)
	return err
}

func (u *userTable) create(ctx context.Context, email, password string) error {
	hash, err := passhash.Hash(password)
	if err != nil {
		return err
	}
	q := u.db.NewInsert().Model(&appUser{Email: email, PasswordHash: []byte(hash)})
	if u.pg {
		q = q.On("CONFLICT DO NOTHING")
	} else {
		q = q.Ignore()
	}
	_, err = q.Exec(ctx)
	return err
}

// byEmail is the condition that finds an address, case-insensitively.
func (u *userTable) byEmail() string {
	if u.pg {
		return "lower(email) = lower(?)"
	}
	return "email = ?" // the column's collation ignores case
}

// LookupEmail implements [reset.Users].
func (u *userTable) LookupEmail(ctx context.Context, email string) (reset.User, error) {
	var a appUser
	err := u.db.NewSelect().Model(&a).Column("id", "email").Where(u.byEmail(), email).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return reset.User{}, reset.ErrUnknownUser
	}
	if err != nil {
		return reset.User{}, err
	}
	return reset.User{ID: strconv.FormatInt(a.ID, 10), Email: a.Email}, nil
}

// SetPassword implements [reset.Users]: it stores an argon2id hash
// (package passhash), which takes passwords of any length and script.
func (u *userTable) SetPassword(ctx context.Context, userID, password string) error {
	hash, err := passhash.Hash(password)
	if err != nil {
		return err
	}
	res, err := u.db.NewUpdate().Model((*appUser)(nil)).Set("password_hash = ?", []byte(hash)).Where("id = ?", userID).Exec(ctx)
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
var dummyHash, _ = passhash.Hash("not a password")

// loginHandler serves POST /login {"email", "password"} with 200 or 401.
// A real application would start a session here.
func (u *userTable) loginHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Email, Password string }
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !logins.Allow() { // each login is an argon2id comparison
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusTooManyRequests, "too many sign-in attempts; try again in a second")
			return
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&in); err != nil {
			writeJSON(w, http.StatusBadRequest, `send {"email", "password"}`)
			return
		}
		var a appUser
		err := u.db.NewSelect().Model(&a).Where(u.byEmail(), in.Email).Scan(r.Context())
		hash := dummyHash
		if err == nil {
			hash = string(a.PasswordHash) // argon2id, or bcrypt from before: both verify
		} else if !errors.Is(err, sql.ErrNoRows) {
			writeJSON(w, http.StatusServiceUnavailable, "try again later")
			return
		}
		if ok, herr := passhash.Verify(in.Password, hash); !ok || herr != nil || err != nil {
			writeJSON(w, http.StatusUnauthorized, "wrong email or password")
			return
		}
		writeJSON(w, http.StatusOK, "signed in")
	})
}

// logins bounds the password comparisons of /login, process-wide. A real
// application would also limit per client and per account.
var logins = rate.NewLimiter(5, 10)

// writeJSON answers {"message": msg} with status as JSON.
func writeJSON(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}
