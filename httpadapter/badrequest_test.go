package httpadapter

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBadRequestsChangeNothing sends each bad request to a fresh service
// holding one live token, and checks the answer (status, code, target) and
// that nothing changed: the same single token still works, no mail was
// sent, no password changed.
func TestBadRequestsChangeNothing(t *testing.T) {
	const tok = "{{TOKEN}}" // replaced by the live token
	const unknownTok = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	lost, rst, chk := PasswordLostPath, PasswordResetPath, CheckPath
	cases := []struct {
		name   string
		who    caller
		method string // default POST
		path   string
		ctype  string // default application/json
		body   string
		status int
		code   string
		target string
	}{
		// Malformed bodies.
		{name: "seed body missing comma", who: trusted, path: lost, body: seedBody, status: 400, code: CodeInvalidData, target: "body"},
		{name: "seed body missing comma, public", who: public, path: lost, body: seedBody, status: 400, code: CodeInvalidData, target: "body"},
		{name: "empty body", who: trusted, path: lost, body: "", status: 400, code: CodeInvalidData, target: "body"},
		{name: "whitespace body", who: trusted, path: lost, body: " \n\t ", status: 400, code: CodeInvalidData, target: "body"},
		{name: "array", who: trusted, path: lost, body: `[{"email":"jborder@anywhere.com"}]`, status: 400, code: CodeInvalidData, target: "body"},
		{name: "string", who: trusted, path: lost, body: `"jborder@anywhere.com"`, status: 400, code: CodeInvalidData, target: "body"},
		{name: "truncated", who: trusted, path: lost, body: `{"email": "jborder@`, status: 400, code: CodeInvalidData, target: "body"},
		{name: "missing closing brace", who: trusted, path: lost, body: `{"email": "jborder@anywhere.com"`, status: 400, code: CodeInvalidData, target: "body"},
		{name: "trailing garbage", who: trusted, path: lost, body: `{"email":"jborder@anywhere.com"} x`, status: 400, code: CodeInvalidData, target: "body"},
		{name: "second object", who: trusted, path: lost, body: `{"email":"jborder@anywhere.com"}{"email":"other@example.com"}`, status: 400, code: CodeInvalidData, target: "body"},
		{name: "trailing comma", who: trusted, path: lost, body: `{"email":"jborder@anywhere.com",}`, status: 400, code: CodeInvalidData, target: "body"},
		{name: "single quotes", who: trusted, path: lost, body: `{'email':'jborder@anywhere.com'}`, status: 400, code: CodeInvalidData, target: "body"},
		{name: "invalid UTF-8", who: trusted, path: lost, body: "{\"email\":\"jborder\xff@anywhere.com\"}", status: 400, code: CodeInvalidData, target: "body"},
		// Types and enums.
		{name: "skipSend boolean", who: trusted, path: lost, body: `{"email":"jborder@anywhere.com","skipSend":true}`, status: 400, code: CodeInvalidData, target: "skipSend"},
		{name: "skipSend yes", who: trusted, path: lost, body: `{"email":"jborder@anywhere.com","skipSend":"yes"}`, status: 400, code: CodeInvalidData, target: "skipSend"},
		{name: "skipSend wrong case", who: trusted, path: lost, body: `{"email":"jborder@anywhere.com","skipSend":"ENABLED"}`, status: 400, code: CodeInvalidData, target: "skipSend"},
		{name: "skipSend empty", who: trusted, path: lost, body: `{"email":"jborder@anywhere.com","skipSend":""}`, status: 400, code: CodeInvalidData, target: "skipSend"},
		{name: "email number", who: trusted, path: lost, body: `{"email":42}`, status: 400, code: CodeInvalidData, target: "email"},
		{name: "email array", who: trusted, path: lost, body: `{"email":["jborder@anywhere.com"]}`, status: 400, code: CodeInvalidData, target: "email"},
		{name: "link object", who: trusted, path: lost, body: `{"email":"jborder@anywhere.com","link":{"href":"https://anywhere.com/"}}`, status: 400, code: CodeInvalidData, target: "link"},
		// Missing and invalid values.
		{name: "email missing", who: trusted, path: lost, body: `{}`, status: 400, code: CodeInvalidData, target: "email"},
		{name: "email empty", who: trusted, path: lost, body: `{"email":""}`, status: 400, code: CodeInvalidData, target: "email"},
		{name: "email null", who: public, path: lost, body: `{"email":null}`, status: 400, code: CodeInvalidData, target: "email"},
		{name: "email not an address", who: trusted, path: lost, body: `{"email":"jborder"}`, status: 400, code: CodeInvalidData, target: "email"},
		{name: "email with display name", who: public, path: lost, body: `{"email":"J Border <jborder@anywhere.com>"}`, status: 400, code: CodeInvalidData, target: "email"},
		{name: "email too long", who: trusted, path: lost, body: `{"email":"` + strings.Repeat("a", 250) + `@anywhere.com"}`, status: 400, code: CodeInvalidData, target: "email"},
		{name: "email CRLF header injection", who: public, path: lost, body: `{"email":"jborder@anywhere.com\r\nBcc: x@evil.example"}`, status: 400, code: CodeInvalidData, target: "email"},
		{name: "email LF", who: trusted, path: lost, body: `{"email":"jborder@anywhere.com\n"}`, status: 400, code: CodeInvalidData, target: "email"},
		{name: "link LF", who: trusted, path: lost, body: `{"email":"jborder@anywhere.com","link":"https://anywhere.com/\nx"}`, status: 400, code: CodeInvalidData, target: "link"},
		{name: "skipSend CR", who: trusted, path: lost, body: `{"email":"jborder@anywhere.com","skipSend":"enabled\r"}`, status: 400, code: CodeInvalidData, target: "skipSend"},
		{name: "link not allowed", who: trusted, path: lost, body: `{"email":"jborder@anywhere.com","link":"https://evil.example/reset"}`, status: 400, code: CodeInvalidData, target: "link"},
		{name: "link not allowed, public", who: public, path: lost, body: `{"email":"jborder@anywhere.com","link":"https://evil.example/reset"}`, status: 400, code: CodeInvalidData, target: "link"},
		{name: "link http", who: trusted, path: lost, body: `{"email":"jborder@anywhere.com","link":"http://anywhere.com/reset"}`, status: 400, code: CodeInvalidData, target: "link"},
		{name: "link userinfo", who: trusted, path: lost, body: `{"email":"jborder@anywhere.com","link":"https://anywhere.com@evil.example/"}`, status: 400, code: CodeInvalidData, target: "link"},
		{name: "link dot segments", who: trusted, path: lost, body: `{"email":"jborder@anywhere.com","link":"https://anywhere.com/../x"}`, status: 400, code: CodeInvalidData, target: "link"},
		{name: "link fragment", who: public, path: lost, body: `{"email":"jborder@anywhere.com","link":"https://anywhere.com/r#x"}`, status: 400, code: CodeInvalidData, target: "link"},
		// Unknown and repeated fields.
		{name: "unknown field", who: trusted, path: lost, body: `{"email":"jborder@anywhere.com","password":"x"}`, status: 400, code: CodeInvalidData, target: "password"},
		{name: "field name case", who: trusted, path: lost, body: `{"Email":"jborder@anywhere.com"}`, status: 400, code: CodeInvalidData, target: "Email"},
		{name: "repeated field", who: trusted, path: lost, body: `{"email":"other@example.com","email":"jborder@anywhere.com"}`, status: 400, code: CodeInvalidData, target: "email"},
		// Callers.
		{name: "skipSend enabled, public", who: public, path: lost, body: `{"email":"jborder@anywhere.com","skipSend":"enabled"}`, status: 403, code: CodeForbidden, target: "skipSend"},
		{name: "wrong credentials", who: wrongCreds, path: lost, body: `{"email":"jborder@anywhere.com"}`, status: 401, code: CodeAccessFailed},
		{name: "unknown email, trusted", who: trusted, path: lost, body: `{"email":"nobody@anywhere.com"}`, status: 404, code: CodeNotFound, target: "email"},
		// Transport.
		{name: "GET", who: trusted, method: "GET", path: lost, status: 405, code: CodeMethodNotAllowed},
		{name: "form content type", who: trusted, path: lost, ctype: "application/x-www-form-urlencoded", body: "email=jborder%40anywhere.com", status: 415, code: CodeUnsupportedMediaType, target: "Content-Type"},
		{name: "too large", who: trusted, path: lost, body: `{"email":"jborder@anywhere.com","link":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, status: 413, code: CodeRequestTooLarge, target: "body"},
		// password-reset.
		{name: "reset: token missing", path: rst, body: `{"newPassword":"a new long password"}`, status: 400, code: CodeInvalidData, target: "confirmationToken"},
		{name: "reset: password missing", path: rst, body: `{"confirmationToken":"` + tok + `"}`, status: 400, code: CodeInvalidData, target: "newPassword"},
		{name: "reset: password empty", path: rst, body: `{"confirmationToken":"` + tok + `","newPassword":""}`, status: 400, code: CodeInvalidData, target: "newPassword"},
		{name: "reset: password too short", path: rst, body: `{"confirmationToken":"` + tok + `","newPassword":"short"}`, status: 400, code: CodeInvalidData, target: "newPassword"},
		{name: "reset: password LF", path: rst, body: `{"confirmationToken":"` + tok + `","newPassword":"a new long\npassword"}`, status: 400, code: CodeInvalidData, target: "newPassword"},
		{name: "reset: password number", path: rst, body: `{"confirmationToken":"` + tok + `","newPassword":12345678}`, status: 400, code: CodeInvalidData, target: "newPassword"},
		{name: "reset: malformed token", path: rst, body: `{"confirmationToken":"abc","newPassword":"a new long password"}`, status: 400, code: CodeInvalidToken, target: "confirmationToken"},
		{name: "reset: unknown token", path: rst, body: `{"confirmationToken":"` + unknownTok + `","newPassword":"a new long password"}`, status: 400, code: CodeInvalidToken, target: "confirmationToken"},
		{name: "reset: token of another id", path: rst, body: `{"confirmationToken":"` + tok + `","newPassword":"a new long password","id":"u2"}`, status: 400, code: CodeInvalidToken, target: "confirmationToken"},
		{name: "reset: unknown field", path: rst, body: `{"confirmationToken":"` + tok + `","password":"a new long password"}`, status: 400, code: CodeInvalidData, target: "password"},
		{name: "reset: malformed JSON", path: rst, body: `{"confirmationToken":"` + tok + `" "newPassword":"a new long password"}`, status: 400, code: CodeInvalidData, target: "body"},
		{name: "reset: text/plain", path: rst, ctype: "text/plain", body: `{"confirmationToken":"` + tok + `","newPassword":"a new long password"}`, status: 415, code: CodeUnsupportedMediaType, target: "Content-Type"},
		// check.
		{name: "check: token missing", path: chk, body: `{}`, status: 400, code: CodeInvalidData, target: "confirmationToken"},
		{name: "check: token array", path: chk, body: `{"confirmationToken":["` + tok + `"]}`, status: 400, code: CodeInvalidData, target: "confirmationToken"},
		{name: "check: unknown token", path: chk, body: `{"confirmationToken":"` + unknownTok + `"}`, status: 400, code: CodeInvalidToken, target: "confirmationToken"},
		{name: "check: GET with query", path: chk + "?confirmationToken=" + tok, method: "GET", status: 405, code: CodeMethodNotAllowed},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			token := e.issue()
			method, ctype := c.method, c.ctype
			if method == "" {
				method = http.MethodPost
			}
			if ctype == "" {
				ctype = "application/json"
			}
			path := strings.ReplaceAll(c.path, tok, token)
			r := httptest.NewRequest(method, path, strings.NewReader(strings.ReplaceAll(c.body, tok, token)))
			r.Header.Set("Content-Type", ctype)
			w := e.do(c.who, r)
			wantError(t, w, c.status, c.code, c.target)

			e.shutdown() // let any background work finish before looking
			if n := e.store.Len(); n != 1 {
				t.Errorf("store holds %d tokens, want 1", n)
			}
			if _, err := e.svc.Inspect(context.Background(), token); err != nil {
				t.Errorf("the live token stopped working: %v", err)
			}
			if msgs := e.mail.Messages(); len(msgs) != 0 {
				t.Errorf("%d messages sent", len(msgs))
			}
			if e.users.Password("u1") != oldPassword || e.users.Password("u2") != otherOld {
				t.Error("a password changed")
			}
		})
	}
}
