package httpadapter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/password"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

// The seed's own example body, with its missing comma after "link".
const seedBody = `{
  "email": "jborder@anywhere.com",
  "link": "https://anywhere.com/reset"
  "skipSend": "disabled"
}`

const seedBodyFixed = `{
  "email": "jborder@anywhere.com",
  "link": "https://anywhere.com/reset",
  "skipSend": "disabled"
}`

func TestSeedBody(t *testing.T) {
	e := newEnv(t)
	w := e.post(trusted, PasswordLostPath, seedBody)
	er := wantError(t, w, 400, CodeInvalidData, "body")
	if msg := er.Details[0].Message; !strings.Contains(msg, "byte offset 78") || !strings.Contains(msg, "line 4, column 3") {
		t.Errorf("message %q does not give the offset", msg)
	}
	if e.store.Len() != 0 {
		t.Fatal("a malformed request stored a token")
	}

	w = e.post(trusted, PasswordLostPath, seedBodyFixed)
	if w.Code != 200 {
		t.Fatalf("corrected body: %d %s", w.Code, w.Body)
	}
	link := decodeJSON[map[string]string](t, w)["link"]
	if !strings.HasPrefix(link, "https://anywhere.com/reset?token=") {
		t.Fatalf("link %q", link)
	}
	msgs, err := e.mail.Wait(waitCtx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].To != knownEmail || !strings.Contains(msgs[0].Text, link) {
		t.Errorf("mail to %q, text %q; want the link %q", msgs[0].To, msgs[0].Text, link)
	}
}

func TestTrustedDefaultLink(t *testing.T) {
	e := newEnv(t)
	w := e.post(trusted, PasswordLostPath, `{"email":"JBorder@anywhere.com"}`)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if got := w.Body.String(); !strings.HasPrefix(got, `{"link":"`+testResetURL+`?token=`) {
		t.Fatalf("body %s", got)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	msgs, err := e.mail.Wait(waitCtx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].To != knownEmail {
		t.Errorf("mail went to %q, not the account's address", msgs[0].To)
	}
}

func TestTrustedSkipSend(t *testing.T) {
	e := newEnv(t)
	w := e.post(trusted, PasswordLostPath, `{"email":"jborder@anywhere.com","skipSend":"enabled"}`)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	tok := resettest.Token(decodeJSON[map[string]string](t, w)["link"])
	if _, err := e.svc.Inspect(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	e.shutdown()
	if n := len(e.mail.Messages()); n != 0 {
		t.Fatalf("skipSend enabled sent %d messages", n)
	}
}

func TestTrustedUnknownEmail(t *testing.T) {
	e := newEnv(t)
	wantError(t, e.post(trusted, PasswordLostPath, `{"email":"nobody@anywhere.com"}`), 404, CodeNotFound, "email")
}

func TestWrongCredentials(t *testing.T) {
	e := newEnv(t)
	for _, auth := range []string{"Basic d3Jvbmc6d3Jvbmc=", "Basic !!!", "Bearer abc", ""} {
		r := httptest.NewRequest("POST", PasswordLostPath, strings.NewReader(`{"email":"jborder@anywhere.com"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header["Authorization"] = []string{auth}
		w := e.do(public, r)
		wantError(t, w, 401, CodeAccessFailed, "")
		if got := w.Header().Get("WWW-Authenticate"); got != DefaultAuthChallenge {
			t.Errorf("WWW-Authenticate %q", got)
		}
	}
	wantError(t, e.post(wrongCreds, PasswordLostPath, `{"email":"jborder@anywhere.com"}`), 401, CodeAccessFailed, "")
	e.shutdown()
	if e.store.Len() != 0 || len(e.mail.Messages()) != 0 {
		t.Fatal("a request with wrong credentials did something")
	}
}

func TestAuthorizerFailure(t *testing.T) {
	e := newEnv(t, func(_ *reset.Config, o *Options) {
		o.Authorize = func(*http.Request) (bool, error) { return false, errors.New("client DB down") }
	})
	er := wantError(t, e.post(public, PasswordLostPath, `{"email":"jborder@anywhere.com"}`), 503, CodeServiceUnavailable, "")
	if strings.Contains(er.Message, "DB") {
		t.Errorf("internal detail in %q", er.Message)
	}
	if !strings.Contains(e.logs.String(), "client DB down") {
		t.Errorf("cause not logged: %s", e.logs)
	}
}

// TestPublicSameAnswer compares the public answers for a known address, an
// unknown one and a throttled one byte for byte.
func TestPublicSameAnswer(t *testing.T) {
	e := newEnv(t)
	send := func(email string) *httptest.ResponseRecorder {
		return e.post(public, PasswordLostPath, `{"email":"`+email+`","skipSend":"disabled"}`)
	}
	known := send(knownEmail)
	if _, err := e.mail.Wait(waitCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	unknown := send("nobody@anywhere.com")
	throttled := send(knownEmail) // within the cooldown
	if known.Code != http.StatusAccepted {
		t.Fatalf("status %d %s", known.Code, known.Body)
	}
	for name, w := range map[string]*httptest.ResponseRecorder{"unknown": unknown, "throttled": throttled} {
		if w.Code != known.Code || w.Body.String() != known.Body.String() {
			t.Errorf("%s: %d %q; known: %d %q", name, w.Code, w.Body, known.Code, known.Body)
		}
		if fmt.Sprint(w.Header()) != fmt.Sprint(known.Header()) {
			t.Errorf("%s headers %v; known %v", name, w.Header(), known.Header())
		}
	}
	if strings.Contains(known.Body.String(), "token") || strings.Contains(known.Body.String(), "http") {
		t.Errorf("public answer carries a link: %s", known.Body)
	}
	want := `{"message":"` + PublicMessage + `"}` + "\n"
	if known.Body.String() != want {
		t.Errorf("body %q, want %q", known.Body, want)
	}
	e.shutdown()
	if n := len(e.mail.Messages()); n != 1 {
		t.Errorf("%d messages; want 1 (the throttled request sends none)", n)
	}
	if e.store.Len() != 1 {
		t.Errorf("store has %d tokens, want 1", e.store.Len())
	}
}

func TestPublicSkipSendForbidden(t *testing.T) {
	e := newEnv(t)
	wantError(t, e.post(public, PasswordLostPath, `{"email":"jborder@anywhere.com","skipSend":"enabled"}`), 403, CodeForbidden, "skipSend")
}

func TestLinkAllowlist(t *testing.T) {
	e := newEnv(t)
	for _, who := range []caller{public, trusted} {
		wantError(t, e.post(who, PasswordLostPath, `{"email":"jborder@anywhere.com","link":"https://evil.example/reset"}`), 400, CodeInvalidData, "link")
	}
	w := e.post(public, PasswordLostPath, `{"email":"jborder@anywhere.com","link":"https://anywhere.com/welcome/reset?lang=en"}`)
	if w.Code != 202 {
		t.Fatalf("allowed link from public: %d %s", w.Code, w.Body)
	}
	msgs, err := e.mail.Wait(waitCtx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msgs[0].Text, "https://anywhere.com/welcome/reset?lang=en&token=") {
		t.Errorf("mail text %q", msgs[0].Text)
	}
}

func TestPasswordReset(t *testing.T) {
	e := newEnv(t)
	tok := e.issue()
	body := `{"confirmationToken":"` + tok + `","newPassword":"a new long password"}`
	w := e.post(public, PasswordResetPath, body)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if got := e.users.Password("u1"); got != "a new long password" {
		t.Fatalf("password %q", got)
	}
	if len(w.Result().Cookies()) != 0 {
		t.Error("completing a reset set a cookie")
	}
	wantError(t, e.post(public, PasswordResetPath, body), 400, CodeInvalidToken, "confirmationToken")
	msgs, err := e.mail.Wait(waitCtx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].Kind != reset.KindChanged {
		t.Errorf("mail kind %q", msgs[0].Kind)
	}
}

func TestPasswordResetWithID(t *testing.T) {
	e := newEnv(t)
	tok := e.issue()
	wantError(t, e.post(public, PasswordResetPath, `{"confirmationToken":"`+tok+`","newPassword":"a new long password","id":"u2"}`),
		400, CodeInvalidToken, "confirmationToken")
	w := e.post(public, PasswordResetPath, `{"confirmationToken":"`+tok+`","newPassword":"a new long password","id":"u1"}`)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestReplacedAndExpiredTokens(t *testing.T) {
	e := newEnv(t)
	first := e.issue()
	second := e.issue()
	for _, path := range []string{PasswordResetPath, CheckPath} {
		body := `{"confirmationToken":"` + first + `"}`
		if path == PasswordResetPath {
			body = `{"confirmationToken":"` + first + `","newPassword":"a new long password"}`
		}
		wantError(t, e.post(public, path, body), 400, CodeInvalidToken, "confirmationToken")
	}
	e.clock.Advance(time.Hour)
	wantError(t, e.post(public, CheckPath, `{"confirmationToken":"`+second+`"}`), 400, CodeExpiredToken, "confirmationToken")
	wantError(t, e.post(public, PasswordResetPath, `{"confirmationToken":"`+second+`","newPassword":"a new long password"}`),
		400, CodeExpiredToken, "confirmationToken")
	if got := e.users.Password("u1"); got != oldPassword {
		t.Fatalf("password changed to %q", got)
	}
}

func TestCheck(t *testing.T) {
	e := newEnv(t)
	tok := e.issue()
	for range 2 {
		w := e.post(public, CheckPath, `{"confirmationToken":"`+tok+`"}`)
		if w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		res := decodeJSON[CheckResult](t, w)
		if !res.Valid || !res.ExpiresAt.Equal(e.clock.Now().Add(time.Hour)) {
			t.Fatalf("result %+v", res)
		}
	}
	if _, err := e.svc.Inspect(context.Background(), tok); err != nil {
		t.Fatalf("check consumed the token: %v", err)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{PasswordLostPath, PasswordResetPath, CheckPath} {
		w := e.do(trusted, httptest.NewRequest(http.MethodGet, path, nil))
		wantError(t, w, 405, CodeMethodNotAllowed, "")
		if got := w.Header().Get("Allow"); got != "POST" {
			t.Errorf("%s: Allow %q", path, got)
		}
	}
	for _, path := range []string{PagePath, ForgotPath} {
		w := e.do(public, httptest.NewRequest(http.MethodPut, path, nil))
		if w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD, POST" {
			t.Errorf("%s: %d Allow %q", path, w.Code, w.Header().Get("Allow"))
		}
	}
}

func TestNotFoundPath(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/users/password-lost/", "/nope", "/auth/", "/resetx"} {
		er := wantError(t, e.post(trusted, p, `{}`), 404, CodeNotFound, "")
		if strings.Contains(er.Message, "StripPrefix") {
			t.Errorf("%s: hint %q", p, er.Message)
		}
	}
}

// TestNotFoundHintsAtPrefix: mounted without stripping its prefix (as
// chi's Mount does), the handler's 404 says how to mount it.
func TestNotFoundHintsAtPrefix(t *testing.T) {
	e := newEnv(t)
	mux := http.NewServeMux()
	mux.Handle("/auth/", e.h) // forgot http.StripPrefix
	e.srv = mux
	for path, prefix := range map[string]string{
		"/auth/users/password-lost":        "/auth",
		"/auth/users/password-reset/check": "/auth",
		"/auth/reset":                      "/auth",
	} {
		er := wantError(t, e.post(trusted, path, `{"email":"jborder@anywhere.com"}`), 404, CodeNotFound, "")
		if want := `http.StripPrefix("` + prefix + `", handler)`; !strings.Contains(er.Message, want) {
			t.Errorf("%s: message %q does not say %s", path, er.Message, want)
		}
	}
}

func TestTooLarge(t *testing.T) {
	e := newEnv(t)
	big := `{"email":"jborder@anywhere.com","link":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
	wantError(t, e.post(trusted, PasswordLostPath, big), 413, CodeRequestTooLarge, "body")
	// Without a Content-Length, the limit is found while reading.
	r := httptest.NewRequest("POST", PasswordLostPath, struct{ *strings.Reader }{strings.NewReader(big)})
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/json")
	wantError(t, e.do(trusted, r), 413, CodeRequestTooLarge, "body")
	if e.store.Len() != 0 {
		t.Fatal("stored a token")
	}
}

func TestUnsupportedMediaType(t *testing.T) {
	e := newEnv(t)
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1", "application/jsonx"} {
		r := httptest.NewRequest("POST", PasswordLostPath, strings.NewReader(`{"email":"jborder@anywhere.com"}`))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		wantError(t, e.do(trusted, r), 415, CodeUnsupportedMediaType, "Content-Type")
	}
	for _, ct := range []string{"application/json", "application/json; charset=UTF-8", "application/vnd.pingidentity.password.sendrecoverycode+json"} {
		r := httptest.NewRequest("POST", PasswordLostPath, strings.NewReader(`{"email":"jborder@anywhere.com","skipSend":"enabled"}`))
		r.Header.Set("Content-Type", ct)
		if w := e.do(trusted, r); w.Code != 200 {
			t.Errorf("%q: %d %s", ct, w.Code, w.Body)
		}
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(_ *reset.Config, o *Options) { o.RateLimit = 3 })
	body := `{"email":"nobody@anywhere.com"}`
	for i := range 3 {
		if w := e.post(public, PasswordLostPath, body); w.Code != 202 {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
	}
	w := e.post(public, PasswordLostPath, body)
	wantError(t, w, 429, CodeRequestLimited, "")
	if got := w.Header().Get("Retry-After"); got != "20" {
		t.Errorf("Retry-After %q, want 20 (3 a minute)", got)
	}
	// Wrong credentials count as public; they do not escape the limit.
	wantError(t, e.post(wrongCreds, PasswordLostPath, body), 429, CodeRequestLimited, "")
	// Another client is not affected.
	r := httptest.NewRequest("POST", PasswordLostPath, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.RemoteAddr = "192.0.2.7:4444"
	if w := e.do(public, r); w.Code != 202 {
		t.Errorf("other client: %d", w.Code)
	}
	// Trusted callers are exempt by default.
	for i := range 10 {
		if w := e.post(trusted, PasswordLostPath, `{"email":"jborder@anywhere.com","skipSend":"enabled"}`); w.Code != 200 {
			t.Fatalf("trusted request %d: %d %s", i, w.Code, w.Body)
		}
	}
	e.clock.Advance(20 * time.Second)
	if w := e.post(public, PasswordLostPath, body); w.Code != 202 {
		t.Fatalf("after the refill: %d %s", w.Code, w.Body)
	}
}

func TestRateLimitDefaultAllowsTenAMinute(t *testing.T) {
	e := newEnv(t)
	for i := range 10 {
		if w := e.post(public, CheckPath, `{"confirmationToken":"x"}`); w.Code != 400 {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
		e.clock.Advance(6 * time.Second)
	}
}

func TestRateLimitTrustedWhenConfigured(t *testing.T) {
	e := newEnv(t, func(_ *reset.Config, o *Options) { o.RateLimit, o.LimitTrusted = 1, true })
	body := `{"email":"jborder@anywhere.com","skipSend":"enabled"}`
	if w := e.post(trusted, PasswordLostPath, body); w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	wantError(t, e.post(trusted, PasswordLostPath, body), 429, CodeRequestLimited, "")
}

// failStore is a memstore whose operations can be made to fail.
type failStore struct {
	*memstore.Store
	err error
}

func (s *failStore) Rotate(ctx context.Context, rec reset.Record) error {
	if s.err != nil {
		return s.err
	}
	return s.Store.Rotate(ctx, rec)
}

func (s *failStore) Lookup(ctx context.Context, h reset.Hash) (reset.Record, error) {
	if s.err != nil {
		return reset.Record{}, s.err
	}
	return s.Store.Lookup(ctx, h)
}

func (s *failStore) Consume(ctx context.Context, h reset.Hash) (reset.Record, error) {
	if s.err != nil {
		return reset.Record{}, s.err
	}
	return s.Store.Consume(ctx, h)
}

func TestBackendFailure(t *testing.T) {
	secret := errors.New("dial tcp 10.0.0.5:3306: password=hunter2 refused")
	fs := &failStore{Store: memstore.New()}
	e := newEnv(t, func(c *reset.Config, _ *Options) { c.Store = fs })
	tok := e.issue()
	fs.err = secret
	cases := []struct {
		who        caller
		path, body string
	}{
		{trusted, PasswordLostPath, `{"email":"jborder@anywhere.com"}`},
		{public, PasswordResetPath, `{"confirmationToken":"` + tok + `","newPassword":"a new long password"}`},
		{public, CheckPath, `{"confirmationToken":"` + tok + `"}`},
	}
	for _, c := range cases {
		w := e.post(c.who, c.path, c.body)
		wantError(t, w, 503, CodeServiceUnavailable, "")
		if strings.Contains(w.Body.String(), "hunter2") || strings.Contains(w.Body.String(), "3306") {
			t.Errorf("%s: internal detail in %s", c.path, w.Body)
		}
	}
	fs.err = nil
	e.users.SetErr(secret)
	wantError(t, e.post(trusted, PasswordLostPath, `{"email":"jborder@anywhere.com"}`), 503, CodeServiceUnavailable, "")
	if !strings.Contains(e.logs.String(), "hunter2") {
		t.Errorf("cause not logged: %s", e.logs)
	}
	e.users.SetErr(nil)
	if _, err := e.svc.Inspect(context.Background(), tok); err != nil {
		t.Errorf("the token did not survive the failures: %v", err)
	}
}

// TestQueueFull: when the delivery queue is full, a public request gets
// the same answer, byte for byte, as when it is not (the core drops and
// counts it), and a trusted request gets 503 with Retry-After and changes
// nothing.
func TestQueueFull(t *testing.T) {
	started, release := make(chan struct{}, 1), make(chan struct{})
	dropped := make(chan struct{}, 10)
	e := newEnv(t, func(c *reset.Config, _ *Options) {
		c.QueueSize, c.Workers = 1, 1
		c.Cooldown = -1
		c.Mailer = resettest.MailerFunc(func(ctx context.Context, _ reset.Message) error {
			select {
			case started <- struct{}{}:
			default:
			}
			<-release
			return nil
		})
		c.OnEvent = func(ev reset.Event) {
			if ev.Kind == reset.EventDropped {
				dropped <- struct{}{}
			}
		}
	})
	body := `{"email":"jborder@anywhere.com"}`
	roomy := e.post(public, PasswordLostPath, body) // the public answer with room in the queue
	if roomy.Code != http.StatusAccepted {
		t.Fatalf("%d %s", roomy.Code, roomy.Body)
	}
	<-started // the worker holds the first message
	if w := e.post(trusted, PasswordLostPath, body); w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body) // this one waits in the queue
	}
	before := e.store.Len()
	w := e.post(trusted, PasswordLostPath, body)
	wantError(t, w, 503, CodeServiceUnavailable, "")
	if got := w.Header().Get("Retry-After"); got != "10" {
		t.Errorf("Retry-After %q", got)
	}
	if e.store.Len() != before {
		t.Error("a refused trusted request changed the store")
	}
	full := e.post(public, PasswordLostPath, body)
	if full.Code != roomy.Code || full.Body.String() != roomy.Body.String() || fmt.Sprint(full.Header()) != fmt.Sprint(roomy.Header()) {
		t.Errorf("public answer with a full queue: %d %v %q; with room: %d %v %q",
			full.Code, full.Header(), full.Body, roomy.Code, roomy.Header(), roomy.Body)
	}
	select { // the core drops the public request in the background
	case <-dropped:
	case <-waitCtx(t).Done():
		t.Fatal("the public request was not dropped")
	}
	close(release)
	e.shutdown()
	if n := len(dropped); n != 0 {
		t.Errorf("%d more public requests dropped", n)
	}
}

// refusingUsers is an application's Users whose SetPassword hashes with
// bcrypt, which refuses passwords over 72 bytes: it says so with a
// *password.Error.
type refusingUsers struct{ *resettest.Users }

func (u refusingUsers) SetPassword(ctx context.Context, id, pw string) error {
	if len(pw) > 72 {
		return &password.Error{Reason: "must be at most 72 bytes long"}
	}
	return u.Users.SetPassword(ctx, id, pw)
}

// TestSetPasswordRefusesPassword: a password the policy allows but the
// application's SetPassword refuses is a 400 naming newPassword with the
// reason, never a 503, and the link still works.
func TestSetPasswordRefusesPassword(t *testing.T) {
	e := newEnv(t, func(c *reset.Config, _ *Options) { c.Users = refusingUsers{c.Users.(*resettest.Users)} })
	tok := e.issue()
	long := strings.Repeat("long password ", 6) // 84 bytes: the default policy allows it
	er := wantError(t, e.post(public, PasswordResetPath, `{"confirmationToken":"`+tok+`","newPassword":"`+long+`"}`),
		400, CodeInvalidData, "newPassword")
	if !strings.Contains(er.Details[0].Message, "at most 72 bytes") {
		t.Errorf("message %q does not give the reason", er.Details[0].Message)
	}
	if got := e.users.Password("u1"); got != oldPassword {
		t.Fatalf("password changed to %q", got)
	}
	if w := e.post(public, PasswordResetPath, `{"confirmationToken":"`+tok+`","newPassword":"a new long password"}`); w.Code != 200 {
		t.Fatalf("the link did not survive the refusal: %d %s", w.Code, w.Body)
	}
}

// TestPluggableLimiter: an application's own Limiter gets every request's
// key, its refusal is a 429 with its Retry-After, and its failure is
// logged and does not block the request.
func TestPluggableLimiter(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	var refuse, fail bool
	lim := LimiterFunc(func(ctx context.Context, key string) (bool, time.Duration, error) {
		mu.Lock()
		defer mu.Unlock()
		keys = append(keys, key)
		switch {
		case fail:
			return false, 0, errors.New("shared counter unreachable")
		case refuse:
			return false, 42 * time.Second, nil
		}
		return true, 0, nil
	})
	e := newEnv(t, func(_ *reset.Config, o *Options) { o.Limiter = lim })
	body := `{"email":"nobody@anywhere.com"}`
	if w := e.post(public, PasswordLostPath, body); w.Code != 202 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	refuse = true
	w := e.post(public, PasswordLostPath, body)
	wantError(t, w, 429, CodeRequestLimited, "")
	if got := w.Header().Get("Retry-After"); got != "42" {
		t.Errorf("Retry-After %q", got)
	}
	fail = true
	if w := e.post(public, PasswordLostPath, body); w.Code != 202 {
		t.Fatalf("limiter failure: %d %s", w.Code, w.Body)
	}
	if !strings.Contains(e.logs.String(), "shared counter unreachable") {
		t.Errorf("limiter failure not logged: %s", e.logs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 3 || keys[0] != "192.0.2.1" {
		t.Errorf("keys %q, want three of the client's address", keys)
	}
}

func TestComposition(t *testing.T) {
	e := newEnv(t)
	mux := http.NewServeMux()
	mux.Handle("/api/directory/", http.StripPrefix("/api/directory", http.MaxBytesHandler(e.h, 1<<10)))
	mux.Handle("POST /v2/users/password-lost", http.StripPrefix("/v2", e.h))
	e.srv = mux
	w := e.post(trusted, "/api/directory/users/password-lost", `{"email":"jborder@anywhere.com","skipSend":"enabled"}`)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	w = e.post(trusted, "/v2/users/password-lost", `{"email":"jborder@anywhere.com","skipSend":"enabled"}`)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	// The outer MaxBytesHandler's smaller limit is a 413 too.
	big := `{"email":"jborder@anywhere.com","link":"` + strings.Repeat("a", 2<<10) + `"}`
	wantError(t, e.post(trusted, "/api/directory/users/password-lost", big), 413, CodeRequestTooLarge, "body")
	// The page works under the prefix, with relative form actions.
	tok := e.issue()
	r := httptest.NewRequest("GET", "/api/directory/reset", nil)
	r.AddCookie(&http.Cookie{Name: plainCookieName, Value: tok}) // what the link's redirect set
	w = e.do(public, r)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `action="reset"`) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil || !strings.Contains(err.Error(), "reset.Service") {
		t.Errorf("nil service: %v", err)
	}
	e := newEnv(t)
	for _, o := range []Options{{RateBurst: -1}, {MaxClients: -1}} {
		if h, err := New(e.svc, o); err == nil || h != nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if _, err := New(e.svc, Options{AuthChallenge: "Basic\r\nX: y"}); err == nil {
		t.Error("line break in AuthChallenge accepted")
	}
	h, err := New(e.svc, Options{RateLimit: -1})
	if err != nil || h.lim != nil {
		t.Errorf("RateLimit -1: %v, limiter %v", err, h.lim)
	}
}

// TestRefusedPasswordInRequestLanguage: the API's reason for a refused
// new password is the hosted form's text for its code, in the language
// of Accept-Language (English without one), and the link keeps working.
func TestRefusedPasswordInRequestLanguage(t *testing.T) {
	e := newEnv(t)
	tok := e.issue()
	for _, tc := range []struct {
		lang, password, want string
	}{
		{"", "password1234567", "This password is too common"},
		{"de-DE,de;q=0.9", "password1234567", "Dieses Passwort ist zu verbreitet"},
		{"ja", "short", "新しいパスワードは15文字以上にしてください。"},
		{"fr-CA,en;q=0.5", "jborder likes long walks", "adresse e-mail"},
	} {
		r := httptest.NewRequest(http.MethodPost, PasswordResetPath,
			strings.NewReader(`{"confirmationToken":"`+tok+`","newPassword":"`+tc.password+`"}`))
		r.Header.Set("Content-Type", "application/json")
		if tc.lang != "" {
			r.Header.Set("Accept-Language", tc.lang)
		}
		er := wantError(t, e.do(public, r), 400, CodeInvalidData, "newPassword")
		if !strings.Contains(er.Details[0].Message, tc.want) {
			t.Errorf("Accept-Language %q, password %q: message %q, want it to contain %q", tc.lang, tc.password, er.Details[0].Message, tc.want)
		}
	}
	if got := e.users.Password("u1"); got != oldPassword {
		t.Fatalf("password changed to %q", got)
	}
	if w := e.post(public, PasswordResetPath, `{"confirmationToken":"`+tok+`","newPassword":"a new long password"}`); w.Code != 200 {
		t.Fatalf("the link did not survive the refusals: %d %s", w.Code, w.Body)
	}
}
