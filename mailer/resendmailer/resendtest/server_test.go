package resendtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
)

var _ http.Handler = (*resendtest.Server)(nil)

const validBody = `{"from":"Acme <a@acme.example>","to":["ada@example.com"],"subject":"Hi","text":"hello"}`

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func post(t *testing.T, srv *resendtest.Server, method, path string, header map[string]string, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+resendtest.APIKey)
	for k, v := range header {
		if v == "-" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("answer %d is not a JSON object: %q", resp.StatusCode, raw)
	}
	if resp.StatusCode != 200 {
		if a.body["statusCode"] != float64(resp.StatusCode) || a.body["name"] == "" || a.body["message"] == "" {
			t.Errorf("error body %s lacks statusCode, name or message", raw)
		}
	}
	return a
}

func TestRejectsWhatResendRejects(t *testing.T) {
	tests := []struct {
		name   string
		method string
		path   string
		header map[string]string
		body   string
		status int
		ename  string
	}{
		{"other path", "POST", "/email", nil, validBody, 404, "not_found"},
		{"other method", "PUT", "/emails", nil, validBody, 405, "method_not_allowed"},
		{"no auth", "POST", "/emails", map[string]string{"Authorization": "-"}, validBody, 401, "missing_api_key"},
		{"not bearer", "POST", "/emails", map[string]string{"Authorization": "Basic eDp5"}, validBody, 401, "missing_api_key"},
		{"wrong key", "POST", "/emails", map[string]string{"Authorization": "Bearer re_nope"}, validBody, 403, "invalid_api_key"},
		{"empty idempotency key", "POST", "/emails", map[string]string{"Idempotency-Key": ""}, validBody, 400, "invalid_idempotency_key"},
		{"long idempotency key", "POST", "/emails", map[string]string{"Idempotency-Key": strings.Repeat("k", 257)}, validBody, 400, "invalid_idempotency_key"},
		{"not JSON", "POST", "/emails", nil, `from=a`, 400, "validation_error"},
		{"JSON array", "POST", "/emails", nil, `[]`, 400, "validation_error"},
		{"no from", "POST", "/emails", nil, `{"to":"ada@example.com","subject":"s","text":"t"}`, 422, "missing_required_field"},
		{"no to", "POST", "/emails", nil, `{"from":"a@acme.example","subject":"s","text":"t"}`, 422, "missing_required_field"},
		{"no subject", "POST", "/emails", nil, `{"from":"a@acme.example","to":"ada@example.com","text":"t"}`, 422, "missing_required_field"},
		{"no content", "POST", "/emails", nil, `{"from":"a@acme.example","to":"ada@example.com","subject":"s"}`, 422, "missing_required_field"},
		{"unknown field", "POST", "/emails", nil, `{"from":"a@acme.example","to":"ada@example.com","subject":"s","text":"t","body":"x"}`, 422, "validation_error"},
		{"bad from", "POST", "/emails", nil, `{"from":"Acme","to":"ada@example.com","subject":"s","text":"t"}`, 422, "invalid_from_address"},
		{"bad to", "POST", "/emails", nil, `{"from":"a@acme.example","to":["ada"],"subject":"s","text":"t"}`, 422, "validation_error"},
		{"empty to", "POST", "/emails", nil, `{"from":"a@acme.example","to":[],"subject":"s","text":"t"}`, 422, "validation_error"},
		{"to with CRLF", "POST", "/emails", nil, `{"from":"a@acme.example","to":"ada@example.com\r\nBcc: x@example.com","subject":"s","text":"t"}`, 422, "validation_error"},
		{"51 recipients", "POST", "/emails", nil, `{"from":"a@acme.example","to":[` + strings.Repeat(`"a@example.com",`, 50) + `"a@example.com"],"subject":"s","text":"t"}`, 422, "validation_error"},
		{"bad reply_to", "POST", "/emails", nil, `{"from":"a@acme.example","to":"ada@example.com","reply_to":"x","subject":"s","text":"t"}`, 422, "validation_error"},
		{"bad tag", "POST", "/emails", nil, `{"from":"a@acme.example","to":"ada@example.com","subject":"s","text":"t","tags":[{"name":"a b","value":"c"}]}`, 422, "validation_error"},
		{"bad attachment", "POST", "/emails", nil, `{"from":"a@acme.example","to":"ada@example.com","subject":"s","text":"t","attachments":[{"filename":"a.txt"}]}`, 422, "invalid_attachment"},
		{"template and text", "POST", "/emails", nil, `{"from":"a@acme.example","to":"ada@example.com","subject":"s","text":"t","template":{"id":"x"}}`, 422, "validation_error"},
		{"wrong type", "POST", "/emails", nil, `{"from":"a@acme.example","to":"ada@example.com","subject":5,"text":"t"}`, 422, "validation_error"},
	}
	srv := resendtest.NewServer()
	defer srv.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := post(t, srv, tt.method, tt.path, tt.header, tt.body)
			if a.status != tt.status || a.body["name"] != tt.ename {
				t.Errorf("answer %d %v, want %d %s", a.status, a.body["name"], tt.status, tt.ename)
			}
		})
	}
	if n := len(srv.Emails()); n != 0 {
		t.Errorf("%d emails recorded, want 0", n)
	}
	if got, want := len(srv.Requests()), len(tests); got != want {
		t.Errorf("%d requests logged, want %d", got, want)
	}
}

func TestAcceptsWhatTheSpecAllows(t *testing.T) {
	srv := resendtest.NewServer()
	defer srv.Close()
	bodies := []string{
		validBody,
		`{"from":"a@acme.example","to":"ada@example.com","subject":"s","html":"<p>h</p>"}`,
		`{"from":"a@acme.example","to":"ada@example.com","subject":"s","template":{"id":"tpl_1","variables":{"n":1}}}`,
		`{"from":"a@acme.example","to":"ada@example.com","cc":["b@example.com"],"bcc":"c@example.com","reply_to":["d@example.com","e@example.com"],
		  "subject":"s","text":"t","headers":{"X-Entity-Ref-ID":"1"},"scheduled_at":"in 1 min","tags":[{"name":"a","value":"b"}],
		  "attachments":[{"filename":"a.txt","content":"aGk="}],"topic_id":"t1"}`,
	}
	for _, b := range bodies {
		a := post(t, srv, "POST", "/emails", nil, b)
		if a.status != 200 || len(a.body["id"].(string)) != 36 {
			t.Errorf("POST %s = %d %v, want 200 with a UUID", b, a.status, a.body)
		}
	}
	emails := srv.Emails()
	if len(emails) != len(bodies) {
		t.Fatalf("%d emails, want %d", len(emails), len(bodies))
	}
	last := emails[3]
	if len(last.To) != 1 || len(last.Cc) != 1 || len(last.Bcc) != 1 || len(last.ReplyTo) != 2 ||
		last.Headers["X-Entity-Ref-ID"] != "1" || last.ScheduledAt != "in 1 min" || len(last.Tags) != 1 {
		t.Errorf("recorded %+v", last)
	}
}

func TestIdempotency(t *testing.T) {
	srv := resendtest.NewServer()
	defer srv.Close()
	key := map[string]string{"Idempotency-Key": "password_reset/abc"}
	first := post(t, srv, "POST", "/emails", key, validBody)
	// The same body with other whitespace and key order is the same request.
	same := `{ "to": ["ada@example.com"], "from": "Acme <a@acme.example>", "text": "hello", "subject": "Hi" }`
	again := post(t, srv, "POST", "/emails", key, same)
	if first.status != 200 || again.status != 200 || again.body["id"] != first.body["id"] {
		t.Errorf("replay answered %d %v, want 200 with id %v", again.status, again.body, first.body["id"])
	}
	other := post(t, srv, "POST", "/emails", key, strings.Replace(validBody, "hello", "bye", 1))
	if other.status != 409 || other.body["name"] != "invalid_idempotent_request" {
		t.Errorf("other body answered %d %v, want 409 invalid_idempotent_request", other.status, other.body)
	}
	if n := len(srv.Emails()); n != 1 {
		t.Errorf("%d emails, want 1", n)
	}
	if k := srv.Emails()[0].IdempotencyKey; k != "password_reset/abc" {
		t.Errorf("recorded key %q", k)
	}
}

func TestConcurrentSameKey(t *testing.T) {
	srv := resendtest.NewServer()
	defer srv.Close()
	first, again := sameKeyInProgress(t, srv, "/emails", validBody)
	if again.status != 200 || again.body["id"] != first.body["id"] {
		t.Errorf("after the first finished: %d %v, want 200 with id %v", again.status, again.body, first.body["id"])
	}
}

// sameKeyInProgress sends a request to path whose first attempt is slow,
// and the same request with the same key while the first is in
// progress, which must be told to come back (409
// concurrent_idempotent_requests). The second may take the key before
// the first holds it; then it is the first that is told to come back, and
// the two swap roles. In the rare run where the second finishes before
// the first holds the key, both succeed with one send, and it tries again
// with a new key. It returns the answer of the request that was served
// and that of a third request sent after both finished.
func sameKeyInProgress(t *testing.T, srv *resendtest.Server, path, body string) (first, again answer) {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]bool{}
	arrived := make(chan struct{}, 1)
	srv.SetHook(func(r resendtest.Request) resendtest.Fault {
		mu.Lock()
		defer mu.Unlock()
		if seen[r.IdempotencyKey] {
			return resendtest.Fault{}
		}
		seen[r.IdempotencyKey] = true
		arrived <- struct{}{}
		return resendtest.Fault{Delay: 300 * time.Millisecond}
	})
	defer srv.SetHook(nil)
	for try := range 5 {
		key := map[string]string{"Idempotency-Key": "k" + strconv.Itoa(try)}
		done := make(chan answer)
		go func() { done <- post(t, srv, "POST", path, key, body) }()
		<-arrived
		a := post(t, srv, "POST", path, key, body)
		first := <-done
		if first.status == 200 && a.status == 200 {
			continue // overtaken: both are 200 with one send
		}
		// The hook runs before the server takes the key, so the second
		// request may take it first, between the hook and the key, and
		// the first then meets it in progress: the same meeting.
		if first.status != 200 {
			first, a = a, first
		}
		if first.status != 200 {
			t.Fatalf("neither request answered 200: %d %v, %d %v", first.status, first.body, a.status, a.body)
		}
		if a.status != 409 || a.body["name"] != "concurrent_idempotent_requests" {
			t.Errorf("the other request answered %d %v, want 409 concurrent_idempotent_requests", a.status, a.body)
		}
		return first, post(t, srv, "POST", path, key, body)
	}
	t.Fatal("the second request never met the first in progress")
	return
}

func TestRateLimit(t *testing.T) {
	srv := resendtest.NewServer()
	defer srv.Close()
	srv.SetRateLimit(2, time.Hour) // one long window: no reset during the test
	for i := range 3 {
		a := post(t, srv, "POST", "/emails", nil, validBody)
		if got := a.header.Get("Ratelimit-Limit"); got != "2" {
			t.Errorf("request %d: ratelimit-limit %q", i, got)
		}
		if got, want := a.header.Get("Ratelimit-Remaining"), strconv.Itoa(max(1-i, 0)); got != want {
			t.Errorf("request %d: ratelimit-remaining %q, want %q", i, got, want)
		}
		if i < 2 {
			if a.status != 200 {
				t.Errorf("request %d: %d", i, a.status)
			}
			continue
		}
		if a.status != 429 || a.body["name"] != "rate_limit_exceeded" {
			t.Errorf("third request answered %d %v, want 429 rate_limit_exceeded", a.status, a.body)
		}
		ra, err := strconv.Atoi(a.header.Get("Retry-After"))
		reset, _ := strconv.Atoi(a.header.Get("Ratelimit-Reset"))
		if err != nil || ra < 1 || ra > 3600 || reset != ra {
			t.Errorf("retry-after %q, ratelimit-reset %q", a.header.Get("Retry-After"), a.header.Get("Ratelimit-Reset"))
		}
	}
	if srv.RateLimited() != 1 || srv.MaxPerWindow() != 3 {
		t.Errorf("RateLimited %d, MaxPerWindow %d; want 1, 3", srv.RateLimited(), srv.MaxPerWindow())
	}
}

func TestFail(t *testing.T) {
	srv := resendtest.NewServer()
	defer srv.Close()
	srv.Fail(2, 503, "")
	for i, want := range []int{503, 503, 200} {
		if a := post(t, srv, "POST", "/emails", nil, validBody); a.status != want {
			t.Errorf("request %d answered %d, want %d", i, a.status, want)
		}
	}
	srv.Fail(-1, 429, "daily_quota_exceeded")
	for range 3 {
		a := post(t, srv, "POST", "/emails", nil, validBody)
		if a.status != 429 || a.body["name"] != "daily_quota_exceeded" || a.header.Get("Retry-After") == "" {
			t.Errorf("answered %d %v", a.status, a.body)
		}
	}
	srv.Fail(0, 0, "")
	if a := post(t, srv, "POST", "/emails", nil, validBody); a.status != 200 {
		t.Errorf("after Fail(0) answered %d", a.status)
	}
	if n := len(srv.Emails()); n != 2 {
		t.Errorf("%d emails, want 2", n)
	}
}

func TestSetAPIKey(t *testing.T) {
	srv := resendtest.NewServer()
	defer srv.Close()
	srv.SetAPIKey("re_other")
	if a := post(t, srv, "POST", "/emails", nil, validBody); a.status != 403 {
		t.Errorf("old key answered %d, want 403", a.status)
	}
	if a := post(t, srv, "POST", "/emails", map[string]string{"Authorization": "Bearer re_other"}, validBody); a.status != 200 {
		t.Errorf("new key answered %d, want 200", a.status)
	}
}
