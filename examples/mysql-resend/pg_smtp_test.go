package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/reset/resettest"
)

// needEnv returns the variable, skipping (failing under CI) without it.
func needEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set under CI: run scripts/test.sh", name)
		}
		t.Skipf("%s is not set: run scripts/test.sh, which starts what the test needs", name)
	}
	return v
}

// TestPostgresAndSMTPWiring runs the program on PostgreSQL, mailing
// through a real SMTP server (Mailpit): a trusted request, the mail
// through the durable outbox and SMTP, a completed reset, a login.
func TestPostgresAndSMTPWiring(t *testing.T) {
	pgDSN := needEnv(t, "PASSRESET_PG_DSN")
	smtpAddr := needEnv(t, "PASSRESET_MAILPIT_SMTP")
	api := needEnv(t, "PASSRESET_MAILPIT_API")
	email := fmt.Sprintf("pg-smtp-%d@example.com", time.Now().UnixNano())
	env := map[string]string{
		"PASSRESET_PG_DSN": pgDSN, "SMTP_URL": "smtp+plain://" + smtpAddr,
		"MAIL_FROM": "Acme <security@acme.example>", "PUBLIC_URL": "https://acme.example",
		"OUTBOX_KEY":  base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")),
		"LISTEN_ADDR": "127.0.0.1:0", "CLIENT_ID": "backend", "CLIENT_SECRET": "s3cret",
		"SEED_EMAIL": email, "SEED_PASSWORD": "old password",
	}
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, pw); pw.Close() }()
	lines := bufio.NewScanner(pr)
	var base string
	for lines.Scan() {
		if u, ok := strings.CutPrefix(lines.Text(), "listening on "); ok {
			base = u
			break
		}
	}
	if base == "" {
		t.Fatalf("the program did not start: %v", <-done)
	}
	// The program logs "email sent" once SMTP accepted a message: wait on
	// its output instead of polling the mail server.
	sent := make(chan string, 8)
	go func() {
		for lines.Scan() {
			if l := lines.Text(); strings.Contains(l, `msg="email sent"`) {
				sent <- l
			}
		}
		io.Copy(io.Discard, pr)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	waitSent := func(kind string) {
		t.Helper()
		select {
		case l := <-sent:
			if !strings.Contains(l, "kind="+kind) {
				t.Fatalf("sent %s, want %s", l, kind)
			}
		case <-time.After(time.Minute):
			t.Fatalf("no %s email within a minute", kind)
		}
	}

	req, _ := http.NewRequest("POST", base+"/api/directory/users/password-lost",
		strings.NewReader(`{"email": "`+email+`", "skipSend": "disabled"}`))
	req.SetBasicAuth("backend", "s3cret")
	req.Header.Set("Content-Type", "application/json")
	body := do(t, req, http.StatusOK)
	waitSent("password_reset")

	// Read the mail back from Mailpit.
	var found struct {
		Messages []struct{ ID string }
	}
	getJSON(t, api+"/api/v1/search?query="+url.QueryEscape(`to:"`+email+`"`), &found)
	if len(found.Messages) != 1 {
		t.Fatalf("Mailpit holds %d messages to %s, want 1", len(found.Messages), email)
	}
	var msg struct{ Text, HTML string }
	getJSON(t, api+"/api/v1/message/"+found.Messages[0].ID, &msg)
	token := resettest.Token(msg.Text)
	if token == "" || !strings.Contains(body, token) {
		t.Fatalf("the mailed link is not the returned one:\n%s\n%s", body, msg.Text)
	}
	complete, _ := http.NewRequest("POST", base+"/api/directory/users/password-reset",
		strings.NewReader(`{"confirmationToken": "`+token+`", "newPassword": "a brand new password"}`))
	complete.Header.Set("Content-Type", "application/json")
	do(t, complete, http.StatusOK)
	for pw, want := range map[string]int{"a brand new password": 200, "old password": 401} {
		login, _ := http.NewRequest("POST", base+"/login", strings.NewReader(`{"email":"`+strings.ToUpper(email)+`","password":"`+pw+`"}`))
		do(t, login, want)
	}
	waitSent("password_changed")
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
