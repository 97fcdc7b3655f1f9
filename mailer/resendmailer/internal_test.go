package resendmailer

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/resend/resend-go/v2"

	"github.com/passreset/passreset/reset"
)

func TestClassification(t *testing.T) {
	tests := []struct {
		status    int
		name      string
		transient bool
	}{
		{400, "validation_error", false},
		{400, "invalid_idempotency_key", false},
		{401, "missing_api_key", false},
		{401, "restricted_api_key", false},
		{403, "invalid_api_key", false},
		{403, "validation_error", false},
		{404, "not_found", false},
		{405, "method_not_allowed", false},
		{408, "", true},
		{409, "invalid_idempotent_request", false},
		{409, "concurrent_idempotent_requests", true},
		{409, "", false},
		{422, "validation_error", false},
		{422, "missing_required_field", false},
		{422, "invalid_attachment", false},
		{429, "rate_limit_exceeded", true},
		{429, "", true},
		{429, "daily_quota_exceeded", false},
		{429, "monthly_quota_exceeded", false},
		{451, "security_error", false},
		{500, "internal_server_error", true},
		{500, "application_error", true},
		{502, "", true},
		{503, "", true},
		{504, "", true},
	}
	for _, tt := range tests {
		err := error(&Error{StatusCode: tt.status, Name: tt.name})
		if got := errors.Is(err, ErrTransient); got != tt.transient {
			t.Errorf("%d %s: transient = %v, want %v", tt.status, tt.name, got, tt.transient)
		}
		if got := errors.Is(err, ErrPermanent); got == tt.transient {
			t.Errorf("%d %s: permanent = %v, want %v", tt.status, tt.name, got, !tt.transient)
		}
		if got := errors.Is(err, reset.ErrPermanent); got == tt.transient {
			t.Errorf("%d %s: reset.ErrPermanent = %v, want %v", tt.status, tt.name, got, !tt.transient)
		}
	}
}

func TestErrorText(t *testing.T) {
	for _, tt := range []struct {
		e    Error
		want string
	}{
		{Error{422, "validation_error", "Invalid `to` field."}, "resend answered 422 validation_error: Invalid `to` field."},
		{Error{502, "", "Bad Gateway"}, "resend answered 502 Bad Gateway"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"1", time.Second},
		{" 30 ", 30 * time.Second},
		{"0.25", 250 * time.Millisecond},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{"NaN", 0},
		{"Thu, 01 Jan 2026 00:00:10 GMT", 10 * time.Second},
		{"Wed, 31 Dec 2025 23:59:00 GMT", 0},
		{"1e12", 365 * 24 * time.Hour},
	} {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

type fixedRT struct {
	status int
	header http.Header
	body   string
}

func (f fixedRT) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: f.status, Header: f.header, Body: io.NopCloser(strings.NewReader(f.body))}, nil
}

func TestTransportRecordsAndRestoresBody(t *testing.T) {
	body := `{"statusCode":429,"message":"Too many requests.","name":"rate_limit_exceeded"}`
	tr := &transport{base: fixedRT{429, http.Header{"Retry-After": {"2"}, "Ratelimit-Limit": {"5"}}, body}}
	oc := &outcome{}
	req, _ := http.NewRequestWithContext(withOutcome(context.Background(), oc), "POST", "http://x/emails", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	if string(got) != body {
		t.Errorf("body handed on = %q, want %q", got, body)
	}
	if oc.status != 429 || oc.name != "rate_limit_exceeded" || oc.message != "Too many requests." || oc.retryAfter != 2*time.Second || oc.limit != 5 {
		t.Errorf("outcome = %d %q %q %v %d", oc.status, oc.name, oc.message, oc.retryAfter, oc.limit)
	}

	// Without Retry-After, a 429 waits for ratelimit-reset.
	tr = &transport{base: fixedRT{429, http.Header{"Ratelimit-Reset": {"3"}}, body}}
	if _, err := tr.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	if oc.retryAfter != 3*time.Second || oc.limit != 0 {
		t.Errorf("retryAfter = %v, limit %d; want 3s from ratelimit-reset, 0", oc.retryAfter, oc.limit)
	}

	// A long, non-JSON body is handed on whole.
	long := strings.Repeat("x", maxPeek+10)
	tr = &transport{base: fixedRT{502, http.Header{}, long}}
	resp, err = tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	if string(got) != long {
		t.Errorf("long body handed on has %d bytes, want %d", len(got), len(long))
	}
	if oc.status != 502 || oc.name != "" || oc.message != "Bad Gateway" {
		t.Errorf("outcome = %d %q %q", oc.status, oc.name, oc.message)
	}
}

func TestRefusalsRejectsAnswersThatDoNotAddUp(t *testing.T) {
	ids := func(n int) []resend.SendEmailResponse { return make([]resend.SendEmailResponse, n) }
	tests := []struct {
		name string
		resp resend.BatchEmailResponse
		ok   bool
	}{
		{"all sent", resend.BatchEmailResponse{Data: ids(3)}, true},
		{"one refused", resend.BatchEmailResponse{Data: ids(2), Errors: []resend.BatchError{{Index: 1, Message: "bad <ada@example.com>"}}}, true},
		{"too few ids", resend.BatchEmailResponse{Data: ids(2)}, false},
		{"too many ids", resend.BatchEmailResponse{Data: ids(4)}, false},
		{"index out of range", resend.BatchEmailResponse{Data: ids(2), Errors: []resend.BatchError{{Index: 3}}}, false},
		{"negative index", resend.BatchEmailResponse{Data: ids(2), Errors: []resend.BatchError{{Index: -1}}}, false},
		{"index twice", resend.BatchEmailResponse{Data: ids(1), Errors: []resend.BatchError{{Index: 0}, {Index: 0}}}, false},
	}
	for _, tt := range tests {
		refused, err := refusals(&tt.resp, 3)
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v, %v", tt.name, refused, err)
		}
		for _, reason := range refused {
			if strings.Contains(reason, "ada") || strings.Contains(reason, "@") {
				t.Errorf("%s: the reason %q holds the address", tt.name, reason)
			}
		}
	}
}
