package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/internal/opstest"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
)

// TestOpsEndpoints runs the program with OPS_ADDR against the test MariaDB
// and a local Resend, sends one email, and scrapes the metrics and probes.
func TestOpsEndpoints(t *testing.T) {
	dsn := opstest.Env(t, "PASSRESET_MYSQL_DSN")
	fake := resendtest.NewServer()
	defer fake.Close()
	email := fmt.Sprintf("ops-%d@example.com", time.Now().UnixNano())
	env := map[string]string{
		"PASSRESET_MYSQL_DSN": dsn, "RESEND_API_KEY": resendtest.APIKey, "RESEND_BASE_URL": fake.URL,
		"MAIL_FROM": "Acme <security@acme.example>", "PUBLIC_URL": "https://acme.example",
		"OUTBOX_KEY":  base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")),
		"LISTEN_ADDR": "127.0.0.1:0", "OPS_ADDR": "127.0.0.1:0", "CLIENT_ID": "backend", "CLIENT_SECRET": "s3cret",
		"SEED_EMAIL": email, "SEED_PASSWORD": "old password",
	}
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, pw); pw.Close() }()
	lines := bufio.NewScanner(pr)
	var base, ops string
	for base == "" && lines.Scan() {
		if u, ok := strings.CutPrefix(lines.Text(), "ops on "); ok {
			ops = u
		}
		if u, ok := strings.CutPrefix(lines.Text(), "listening on "); ok {
			base = u
		}
	}
	if base == "" || ops == "" {
		t.Fatalf("the program did not start with its ops address: %v", <-done)
	}
	go io.Copy(io.Discard, pr)
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	req, _ := http.NewRequest("POST", base+"/api/directory/users/password-lost", strings.NewReader(`{"email": "`+email+`"}`))
	req.SetBasicAuth("backend", "s3cret")
	req.Header.Set("Content-Type", "application/json")
	do(t, req, http.StatusOK)
	wctx, wcancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer wcancel()
	if _, err := fake.WaitEmails(wctx, 1); err != nil {
		t.Fatal(err)
	}

	live, _ := http.NewRequest("GET", ops+"/livez", nil)
	do(t, live, http.StatusOK)

	// The workers sent the email, so they run; the shared test database
	// may hold other tests' old envelopes, so only these checks count.
	resp, err := http.Get(ops + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Checks []struct {
			Name string
			OK   bool
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ready.Checks {
		if (c.Name == "store" || c.Name == "outbox workers") && !c.OK {
			t.Errorf("readyz: %s fails: %+v", c.Name, ready)
		}
	}
	if len(ready.Checks) != 3 {
		t.Errorf("readyz checks: %+v", ready)
	}

	// The sent email is counted by the time the mailer returns; the
	// worker may still be recording it when the fake has it, so scrape
	// until it shows (each scrape is a real request, not a sleep).
	metricsReq, _ := http.NewRequest("GET", ops+"/metrics", nil)
	var metrics string
	for !strings.Contains(metrics, `passreset_mail_messages_total{`) {
		metrics = do(t, metricsReq, http.StatusOK)
		if wctx.Err() != nil {
			t.Fatalf("no mail count in the metrics:\n%s", metrics)
		}
	}
	for _, want := range []string{
		"# TYPE passreset_outbox_pending gauge",
		"# TYPE passreset_outbox_oldest_age_seconds gauge",
		`passreset_mail_messages_total{otel_scope_name="github.com/passreset/passreset/telemetry"`,
		`passreset_mail_outcome="sent"`,
		"passreset_mail_call_duration_seconds_count{",
		`passreset_events_total{`,
		`passreset_event="requested"`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(metrics, email) || strings.Contains(metrics, "@") {
		t.Error("an address reached the metrics")
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", metrics)
	}
}
