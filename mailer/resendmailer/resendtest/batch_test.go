package resendtest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
)

// batchBody returns a batch of n valid emails to a0@example.com, ...;
// the recipients in bad get an invalid address instead.
func batchBody(n int, bad ...int) string {
	items := make([]string, n)
	for i := range items {
		to := fmt.Sprintf("a%d@example.com", i)
		for _, b := range bad {
			if b == i {
				to = "not-an-address"
			}
		}
		items[i] = fmt.Sprintf(`{"from":"Acme <a@acme.example>","to":[%q],"subject":"Hi","text":"hello %d"}`, to, i)
	}
	return "[" + strings.Join(items, ",") + "]"
}

// ids reads the ids of a batch answer.
func ids(t *testing.T, a answer) []string {
	t.Helper()
	data, ok := a.body["data"].([]any)
	if !ok {
		t.Fatalf("answer %d %v has no data array", a.status, a.body)
	}
	var out []string
	for _, d := range data {
		id, _ := d.(map[string]any)["id"].(string)
		if id == "" {
			t.Fatalf("data entry %v has no id", d)
		}
		out = append(out, id)
	}
	return out
}

func TestBatchSendsEveryEmail(t *testing.T) {
	srv := resendtest.NewServer()
	defer srv.Close()
	a := post(t, srv, "POST", "/emails/batch", map[string]string{"Idempotency-Key": "batch/1"}, batchBody(3))
	got := ids(t, a)
	if a.status != 200 || len(got) != 3 || a.body["errors"] != nil {
		t.Fatalf("answered %d %v, want 200 with 3 ids and no errors", a.status, a.body)
	}
	emails, err := srv.WaitEmails(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range emails {
		if e.ID != got[i] || e.To[0] != fmt.Sprintf("a%d@example.com", i) || !e.Batch || e.IdempotencyKey != "batch/1" {
			t.Errorf("email %d = %+v, want id %s to a%d@example.com from the batch", i, e, got[i], i)
		}
	}
	if r := srv.Requests()[0]; r.Path != "/emails/batch" || len(r.EmailIDs) != 3 || r.EmailID != "" {
		t.Errorf("request = %+v", r)
	}
}

func TestBatchStrictRefusesTheWholeBatch(t *testing.T) {
	srv := resendtest.NewServer()
	defer srv.Close()
	for _, mode := range []string{"-", "strict"} {
		a := post(t, srv, "POST", "/emails/batch", map[string]string{"X-Batch-Validation": mode}, batchBody(3, 1))
		if a.status != 422 || a.body["name"] != "validation_error" || !strings.Contains(a.body["message"].(string), "emails[1]") {
			t.Errorf("mode %s: answered %d %v, want 422 validation_error naming emails[1]", mode, a.status, a.body)
		}
	}
	if n := len(srv.Emails()); n != 0 {
		t.Errorf("%d emails, want 0", n)
	}
}

func TestBatchPermissiveSendsTheValidOnes(t *testing.T) {
	srv := resendtest.NewServer()
	defer srv.Close()
	srv.SetRejectRecipient(func(to string) bool { return strings.HasPrefix(to, "a3@") })
	a := post(t, srv, "POST", "/emails/batch", map[string]string{"X-Batch-Validation": "permissive"}, batchBody(5, 1))
	got := ids(t, a)
	errs, _ := a.body["errors"].([]any)
	if a.status != 200 || len(got) != 3 || len(errs) != 2 {
		t.Fatalf("answered %d %v, want 200 with 3 ids and 2 errors", a.status, a.body)
	}
	for i, want := range []float64{1, 3} {
		e := errs[i].(map[string]any)
		if e["index"] != want || e["message"] == "" {
			t.Errorf("errors[%d] = %v, want index %v with a message", i, e, want)
		}
	}
	var to []string
	for _, e := range srv.Emails() {
		to = append(to, e.To[0])
	}
	if strings.Join(to, " ") != "a0@example.com a2@example.com a4@example.com" {
		t.Errorf("sent to %v", to)
	}
	if r := srv.Requests()[0]; r.Errors != 2 {
		t.Errorf("request notes %d errors, want 2", r.Errors)
	}
	// The hook refuses single sends too.
	one := `{"from":"a@acme.example","to":"a3@example.com","subject":"Hi","text":"x"}`
	if a := post(t, srv, "POST", "/emails", nil, one); a.status != 422 {
		t.Errorf("single send to a refused recipient answered %d", a.status)
	}
}

func TestBatchRejectsBadBatches(t *testing.T) {
	srv := resendtest.NewServer()
	defer srv.Close()
	tests := []struct {
		name, body, mode string
		status           int
	}{
		{"object", `{"from":"a@acme.example"}`, "", 400},
		{"empty", `[]`, "", 422},
		{"too many", batchBody(101), "", 422},
		{"bad mode", batchBody(1), "lenient", 422},
	}
	for _, tt := range tests {
		h := map[string]string{}
		if tt.mode != "" {
			h["X-Batch-Validation"] = tt.mode
		}
		if a := post(t, srv, "POST", "/emails/batch", h, tt.body); a.status != tt.status {
			t.Errorf("%s: answered %d %v, want %d", tt.name, a.status, a.body, tt.status)
		}
	}
	if a := post(t, srv, "POST", "/emails/batch", nil, batchBody(100)); a.status != 200 {
		t.Errorf("100 emails answered %d %v", a.status, a.body)
	}
}

func TestBatchIdempotency(t *testing.T) {
	srv := resendtest.NewServer()
	defer srv.Close()
	h := map[string]string{"Idempotency-Key": "batch/7", "X-Batch-Validation": "permissive"}
	first := post(t, srv, "POST", "/emails/batch", h, batchBody(3, 2))
	again := post(t, srv, "POST", "/emails/batch", h, batchBody(3, 2))
	if again.status != 200 || fmt.Sprint(again.body) != fmt.Sprint(first.body) {
		t.Errorf("replay answered %d %v, want the first answer %v", again.status, again.body, first.body)
	}
	if n := len(srv.Emails()); n != 2 {
		t.Errorf("%d emails after the replay, want 2", n)
	}
	for _, other := range []struct {
		path, body, mode string
	}{
		{"/emails/batch", batchBody(4, 2), "permissive"}, // another body
		{"/emails", validBody, ""},                       // another endpoint
	} {
		h := map[string]string{"Idempotency-Key": "batch/7", "X-Batch-Validation": other.mode}
		if other.mode == "" {
			h["X-Batch-Validation"] = "-"
		}
		a := post(t, srv, "POST", other.path, h, other.body)
		if a.status != 409 || a.body["name"] != "invalid_idempotent_request" {
			t.Errorf("%s %s: answered %d %v, want 409 invalid_idempotent_request", other.path, other.mode, a.status, a.body)
		}
	}
	if n := len(srv.Emails()); n != 2 {
		t.Errorf("%d emails, want 2", n)
	}
}

func TestBatchConcurrentSameKey(t *testing.T) {
	srv := resendtest.NewServer()
	defer srv.Close()
	first, again := sameKeyInProgress(t, srv, "/emails/batch", batchBody(2))
	if again.status != 200 || fmt.Sprint(ids(t, again)) != fmt.Sprint(ids(t, first)) {
		t.Errorf("after the first finished: %d %v, want the first answer %v", again.status, again.body, first.body)
	}
	if n := srv.Stats().Emails; n%2 != 0 {
		t.Errorf("%d emails: a batch was split", n)
	}
}

func TestDropClosesTheConnectionAfterSending(t *testing.T) {
	srv := resendtest.NewServer()
	defer srv.Close()
	srv.SetHook(func(r resendtest.Request) resendtest.Fault { return resendtest.Fault{Drop: r.N == 1} })
	req, _ := http.NewRequest("POST", srv.URL+"/emails/batch", strings.NewReader(batchBody(2)))
	req.Header.Set("Authorization", "Bearer "+resendtest.APIKey)
	req.Header.Set("Idempotency-Key", "drop/1")
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("answered %d %s, want a lost connection", resp.StatusCode, b)
	}
	if n := len(srv.Emails()); n != 2 {
		t.Errorf("%d emails, want 2: Drop sends before it drops", n)
	}
	again := post(t, srv, "POST", "/emails/batch", map[string]string{"Idempotency-Key": "drop/1"}, batchBody(2))
	if again.status != 200 || len(srv.Emails()) != 2 {
		t.Errorf("retry answered %d with %d emails, want a replay", again.status, len(srv.Emails()))
	}
	if r := srv.Requests()[0]; !r.Abandoned {
		t.Errorf("dropped request = %+v, want Abandoned", r)
	}
}

func TestRateLimitIsPerKeyAndCounted(t *testing.T) {
	srv := resendtest.NewServer()
	defer srv.Close()
	srv.AddAPIKey("re_team2")
	srv.SetRateLimit(2, time.Hour) // one long window
	team2 := map[string]string{"Authorization": "Bearer re_team2"}
	var got []int
	for range 3 {
		got = append(got, post(t, srv, "POST", "/emails/batch", nil, batchBody(2)).status)
	}
	got = append(got, post(t, srv, "POST", "/emails", team2, validBody).status)
	if fmt.Sprint(got) != "[200 200 429 200]" {
		t.Errorf("statuses %v, want [200 200 429 200]: the limit is per key", got)
	}
	st := srv.Stats()
	if st.Calls != 4 || st.RateLimited != 1 || st.Emails != 5 || st.MaxPerWindow != 3 {
		t.Errorf("stats = %+v, want 4 calls, 1 refused, 5 emails, 3 per window", st)
	}
	if k := st.PerKey[resendtest.APIKey]; k != (resendtest.KeyStats{Calls: 3, RateLimited: 1, Emails: 4, MaxPerWindow: 3}) {
		t.Errorf("first key: %+v", k)
	}
	if k := st.PerKey["re_team2"]; k != (resendtest.KeyStats{Calls: 1, Emails: 1, MaxPerWindow: 1}) {
		t.Errorf("second key: %+v", k)
	}
}

// The fake is safe to hit from many goroutines at once.
func TestBatchConcurrentClients(t *testing.T) {
	srv := resendtest.NewServer()
	defer srv.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			post(t, srv, "POST", "/emails/batch", map[string]string{"Idempotency-Key": "c/" + strconv.Itoa(i%4)}, batchBody(10))
		})
	}
	wg.Wait()
	st := srv.Stats()
	// Keys c/0..c/3 each sent once; the second request with a key was a
	// replay or a 409.
	if st.Emails != 40 || st.Calls != 8 {
		t.Errorf("stats = %+v, want 40 emails in 8 calls", st)
	}
}
