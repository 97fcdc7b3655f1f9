package httpadapter

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

const (
	testResetURL = "https://app.example.com/auth/reset"
	knownEmail   = "jborder@anywhere.com"
	otherEmail   = "other@example.com"
	oldPassword  = "old-password-1"
	otherOld     = "other-password-2"
	clientID     = "backend"
	clientSecret = "s3cret-for-tests"
)

// env is one service and handler over in-memory back ends.
type env struct {
	t     *testing.T
	store *memstore.Store
	users *resettest.Users
	mail  *resettest.Mailer
	clock *resettest.Clock
	svc   *reset.Service
	h     *Handler
	logs  *syncBuffer
	srv   http.Handler // what requests go to: h, unless a test wraps it
}

type envOption func(*reset.Config, *Options)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	e := &env{
		t:     t,
		store: memstore.New(),
		users: &resettest.Users{},
		mail:  &resettest.Mailer{},
		clock: resettest.NewClock(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)),
		logs:  &syncBuffer{},
	}
	e.users.Add("u1", knownEmail, oldPassword)
	e.users.Add("u2", otherEmail, otherOld)
	cfg := reset.Config{
		KeepSessions: true,
		Store:        e.store,
		Users:        e.users,
		Mailer:       e.mail,
		ResetURL:     testResetURL,
		AllowedLinks: []string{"https://anywhere.com/"},
		Now:          e.clock.Now,
		Logger:       slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	auth, err := BasicAuth(clientID, clientSecret)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Authorize: auth}
	for _, f := range opts {
		f(&cfg, &o)
	}
	svc, err := reset.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	t.Cleanup(func() { e.shutdown() })
	h, err := New(svc, o)
	if err != nil {
		t.Fatal(err)
	}
	e.h, e.srv = h, h
	return e
}

// shutdown drains the service's queue, so that everything a request
// started in the background has happened.
func (e *env) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.svc.Shutdown(ctx); err != nil {
		e.t.Errorf("Shutdown: %v", err)
	}
}

// issue makes a token for knownEmail without mail and returns it.
func (e *env) issue() string {
	e.t.Helper()
	return e.issueFor(knownEmail)
}

func (e *env) issueFor(email string) string {
	e.t.Helper()
	iss, err := e.svc.RequestTrusted(context.Background(), reset.TrustedRequest{Email: email, SkipSend: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return resettest.Token(iss.Link)
}

// caller says who sends a request.
type caller int

const (
	public caller = iota
	trusted
	wrongCreds
)

// post sends body as JSON to path.
func (e *env) post(who caller, path, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return e.do(who, r)
}

func (e *env) do(who caller, r *http.Request) *httptest.ResponseRecorder {
	e.t.Helper()
	switch who {
	case trusted:
		r.SetBasicAuth(clientID, clientSecret)
	case wrongCreds:
		r.SetBasicAuth(clientID, "wrong")
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	return w
}

// errorOf decodes an error response.
func errorOf(t *testing.T, w *httptest.ResponseRecorder) ErrorResponse {
	t.Helper()
	var er ErrorResponse
	if err := json.Unmarshal(w.Body.Bytes(), &er); err != nil {
		t.Fatalf("error body %q: %v", w.Body, err)
	}
	if er.ID == "" || er.ID != w.Header().Get("Correlation-Id") {
		t.Errorf("id %q, Correlation-Id %q", er.ID, w.Header().Get("Correlation-Id"))
	}
	return er
}

// wantError checks status, code and the first detail's target ("" for none).
func wantError(t *testing.T, w *httptest.ResponseRecorder, status int, code, target string) ErrorResponse {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body)
	}
	er := errorOf(t, w)
	if er.Code != code {
		t.Errorf("code %q, want %q; body %s", er.Code, code, w.Body)
	}
	got := ""
	if len(er.Details) > 0 {
		got = er.Details[0].Target
	}
	if got != target {
		t.Errorf("target %q, want %q; body %s", got, target, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	return er
}

func decodeJSON[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	return v
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var _ io.Writer = (*syncBuffer)(nil)

var errFake = errorString("users backend: connection refused (secret detail)")

type errorString string

func (e errorString) Error() string { return string(e) }
