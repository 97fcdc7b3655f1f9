// Command basic is the one-command passreset demo: an HTTP server with the
// password reset API and hosted page, an in-memory user with an argon2id
// password, and emails printed to standard output instead of sent.
//
//	go run ./examples/basic
//
// It prints the seeded users' passwords and ready-to-paste curl commands.
// The second seeded user, mfa@anywhere.com, has a TOTP second factor
// (github.com/pquerna/otp): its secret is printed too, and completing its
// reset, on the hosted page or through the API's "secondFactorCode",
// needs a current code from an authenticator app given that secret (or
// `oathtool --totp -b <secret>`).
// Flags:
//
//	-addr           address to listen on (default 127.0.0.1:8080)
//	-public-url     URL that emailed links start with (default http://<addr>)
//	-client-id      HTTP Basic user of the trusted caller (default demo-client)
//	-client-secret  HTTP Basic password of the trusted caller (default demo-secret)
//
// The API is mounted under /api/directory, so PingOne's path
// /api/directory/users/password-lost works unchanged. POST /login with
// {"email", "password"} answers 200 with a session cookie or 401, to
// prove a reset worked; GET /me answers 200 while that session lasts. A
// completed reset ends the user's sessions unless the person unticks
// "sign out of all devices" (or the API caller sends "endSessions":
// "disabled").
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pquerna/otp/totp"
	"golang.org/x/time/rate"

	"github.com/passreset/passreset/httpadapter"
	"github.com/passreset/passreset/mailer/logmailer"
	"github.com/passreset/passreset/passhash"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/store/memstore"
)

// mount is where the handler lives, as in PingOne's /api/directory/users/...
const mount = "/api/directory"

// seedEmail is the user from PingOne's example request; mfaEmail is the
// user with a TOTP second factor.
const (
	seedEmail = "jborder@anywhere.com"
	mfaEmail  = "mfa@anywhere.com"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "basic:", err)
		os.Exit(1)
	}
}

// run starts the demo server and serves until ctx ends, then shuts down
// gracefully. Everything it prints goes to stdout; the first line is
// "listening on <URL>" once the server accepts connections.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	out := &syncWriter{w: stdout}
	fs := flag.NewFlagSet("basic", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	publicURL := fs.String("public-url", "", "URL that emailed links start with (default http://<addr>)")
	clientID := fs.String("client-id", "demo-client", "HTTP Basic user of the trusted caller")
	clientSecret := fs.String("client-secret", "demo-secret", "HTTP Basic password of the trusted caller")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *clientID == "" || *clientSecret == "" || strings.Contains(*clientID, ":") {
		return errors.New("-client-id (without a colon) and -client-secret must not be empty")
	}

	base := strings.TrimRight(*publicURL, "/")
	if base != "" {
		u, err := url.Parse(base)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("-public-url %q: want an absolute http(s) URL without query or fragment", *publicURL)
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	listenURL := "http://" + ln.Addr().String()
	if base == "" {
		base = listenURL
	}

	logger := slog.New(slog.NewTextHandler(out, nil))
	password, err := randomPassword()
	if err != nil {
		return err
	}
	users := &users{}
	if err := users.add("u1", seedEmail, password); err != nil {
		return err
	}
	mfaPassword, err := randomPassword()
	if err != nil {
		return err
	}
	if err := users.add("u2", mfaEmail, mfaPassword); err != nil {
		return err
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "passreset demo", AccountName: mfaEmail})
	if err != nil {
		return err
	}
	users.byID["u2"].totp = key.Secret()
	svc, err := reset.New(reset.Config{
		Store:        memstore.New(),
		Users:        users,
		Mailer:       logmailer.New(out),
		ResetURL:     base + mount + httpadapter.PagePath,
		AllowedLinks: []string{"https://anywhere.com/", base + "/"},
		Product:      "passreset demo",
		Logger:       logger,
		// A completed reset signs the user out everywhere, unless the
		// person chooses otherwise on the form.
		EndSessions: users.EndSessions,
	})
	if err != nil {
		return err
	}
	auth, err := httpadapter.BasicAuth(*clientID, *clientSecret)
	if err != nil {
		return err
	}
	h, err := httpadapter.New(svc, httpadapter.Options{Authorize: auth})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(mount+"/", http.StripPrefix(mount, h))
	// Each login costs an argon2id comparison: limit them.
	mux.Handle("POST /login", limitLogins(loginHandler(users), rate.Limit(5), 10))
	mux.Handle("GET /me", meHandler(users))
	srv := newServer(mux, logger)

	fmt.Fprintf(out, "listening on %s\n", listenURL)
	mfa := fmt.Sprintf("Second-factor user: %s  password: %s  TOTP secret: %s\n  (a code: oathtool --totp -b %[3]s, or add %s to an authenticator app)\n",
		mfaEmail, mfaPassword, key.Secret(), key.URL())
	printBanner(out, base, *clientID, *clientSecret, password, mfa)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(out, "shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	return errors.Join(err, svc.Shutdown(sctx))
}

// newServer returns the HTTP server with timeouts for every phase, so that
// slow clients cannot hold connections: 5 s for the headers, 15 s for the
// whole request (bodies here are a few kilobytes at most), 30 s to write
// the answer, 2 minutes idle between requests on a kept-alive connection.
func newServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// printBanner prints the seeded password and the curl commands.
func printBanner(w io.Writer, base, clientID, secret, password, mfa string) {
	api := base + mount + httpadapter.PasswordLostPath
	creds := shellQuote(clientID + ":" + secret)
	fmt.Fprintf(w, `
Seeded user: %[1]s  password: %[2]s
%[10]sTrusted caller (HTTP Basic): client ID %[3]q, secret %[4]q
Emailed links point to %[5]s

PingOne's example request (trusted; the emailed link points to https://anywhere.com/reset):
  curl -i -u %[6]s -H 'Content-Type: application/json' -d '{"email": "%[1]s", "link": "https://anywhere.com/reset", "skipSend": "disabled"}' %[7]s

The same without "link": the email links to this demo's reset page; open it in a browser:
  curl -i -u %[6]s -H 'Content-Type: application/json' -d '{"email": "%[1]s"}' %[7]s

A public "forgot password" request (no credentials; the same 202 answer for every address):
  curl -i -H 'Content-Type: application/json' -d '{"email": "%[1]s"}' %[7]s
  or in a browser: %[8]s

Then sign in with the new password (200), or the old one (401):
  curl -i -H 'Content-Type: application/json' -d '{"email": "%[1]s", "password": "%[2]s"}' %[9]s

Emails are printed below. Stop with Ctrl-C.

`, seedEmail, password, clientID, secret, base+mount+httpadapter.PagePath, creds, shellQuote(api),
		base+mount+httpadapter.ForgotPath, shellQuote(base+"/login"), mfa)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// randomPassword returns 16 random letters and digits.
func randomPassword() (string, error) {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 16)
	for i := range b {
		var r [1]byte
		for {
			if _, err := rand.Read(r[:]); err != nil {
				return "", err
			}
			if int(r[0]) < 256-256%len(alphabet) { // no modulo bias
				break
			}
		}
		b[i] = alphabet[int(r[0])%len(alphabet)]
	}
	return string(b), nil
}

// users is an in-memory user table with argon2id password hashes, as a real
// application would keep them. It implements [reset.Users].
type users struct {
	mu       sync.RWMutex
	byEmail  map[string]*account // by lower-case address
	byID     map[string]*account
	sessions map[string]string // user ID by session ID
}

type account struct {
	id, email string
	hash      string // passhash: argon2id
	totp      string // TOTP secret, base32; empty without a second factor
	lastCode  string // the last TOTP code used, refused a second time
}

var (
	_ reset.Users        = (*users)(nil)
	_ reset.SecondFactor = (*users)(nil)
)

// HasSecondFactor implements [reset.SecondFactor].
func (u *users) HasSecondFactor(_ context.Context, id string) (bool, error) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	a, ok := u.byID[id]
	return ok && a.totp != "", nil
}

// VerifySecondFactor implements [reset.SecondFactor]: code must be the
// current TOTP code (or the one before or after it, for clock skew), and
// not the one used last.
func (u *users) VerifySecondFactor(_ context.Context, id, code string) (bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	a, ok := u.byID[id]
	if !ok || a.totp == "" || code == a.lastCode || !totp.Validate(code, a.totp) {
		return false, nil
	}
	a.lastCode = code
	return true, nil
}

// EndSessions ends every session of id: it is the demo's
// [reset.Config.EndSessions].
func (u *users) EndSessions(_ context.Context, id string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	for sid, uid := range u.sessions {
		if uid == id {
			delete(u.sessions, sid)
		}
	}
	return nil
}

func (u *users) add(id, email, password string) error {
	hash, err := passhash.Hash(password)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.byEmail == nil {
		u.byEmail, u.byID = map[string]*account{}, map[string]*account{}
	}
	a := &account{id: id, email: email, hash: hash}
	u.byEmail[strings.ToLower(email)], u.byID[id] = a, a
	return nil
}

// LookupEmail implements [reset.Users].
func (u *users) LookupEmail(_ context.Context, email string) (reset.User, error) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	a, ok := u.byEmail[strings.ToLower(email)]
	if !ok {
		return reset.User{}, reset.ErrUnknownUser
	}
	return reset.User{ID: a.id, Email: a.email}, nil
}

// SetPassword implements [reset.Users]: it stores an argon2id hash
// (package passhash), which takes passwords of any length and script.
func (u *users) SetPassword(_ context.Context, id, password string) error {
	hash, err := passhash.Hash(password)
	if err != nil {
		return fmt.Errorf("hashing password: %w", err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	a, ok := u.byID[id]
	if !ok {
		return fmt.Errorf("no user %q", id)
	}
	a.hash = hash
	return nil
}

// dummyHash is compared against for unknown addresses, so that a login
// takes as long whether or not the address has an account.
var dummyHash, _ = passhash.Hash("not a password")

// check reports whether password is the password of email's account.
func (u *users) check(email, password string) bool {
	u.mu.RLock()
	hash := dummyHash
	a, ok := u.byEmail[strings.ToLower(email)]
	if ok {
		hash = a.hash
	}
	u.mu.RUnlock()
	match, err := passhash.Verify(password, hash)
	return match && err == nil && ok
}

// session starts a session for email's account and returns its ID.
func (u *users) session(email string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.sessions == nil {
		u.sessions = map[string]string{}
	}
	sid := rand.Text()
	u.sessions[sid] = u.byEmail[strings.ToLower(email)].id
	return sid
}

// meHandler serves GET /me: 200 while the "session" cookie names a
// session, 401 otherwise.
func meHandler(u *users) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		ok := false
		if c, err := r.Cookie("session"); err == nil {
			u.mu.RLock()
			_, ok = u.sessions[c.Value]
			u.mu.RUnlock()
		}
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintln(w, `{"message":"not signed in"}`)
			return
		}
		fmt.Fprintln(w, `{"message":"signed in"}`)
	})
}

// loginHandler serves POST /login {"email", "password"}: 200 with a
// session cookie when they match, 401 otherwise.
func loginHandler(u *users) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Email    string `json:"email"`
			Password string `json:"password"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
		dec.DisallowUnknownFields()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := dec.Decode(&in); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": `send {"email", "password"}: ` + err.Error()})
			return
		}
		if !u.check(in.Email, in.Password) {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintln(w, `{"message":"wrong email or password"}`)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "session", Value: u.session(in.Email), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		fmt.Fprintln(w, `{"message":"signed in"}`)
	})
}

// limitLogins lets through at most r logins per second with bursts of
// burst, process-wide, and answers 429 beyond: each login is an argon2id
// comparison, and an unlimited endpoint lets anyone keep the CPU busy. A
// real application would also limit per client and per account.
func limitLogins(next http.Handler, r rate.Limit, burst int) http.Handler {
	lim := rate.NewLimiter(r, burst)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !lim.Allow() {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprintln(w, `{"message":"too many sign-in attempts; try again in a second"}`)
			return
		}
		next.ServeHTTP(w, req)
	})
}

// syncWriter serialises writes from the logger, the mailer and the banner.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
