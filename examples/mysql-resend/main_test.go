package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset/resettest"
)

func TestConfigNamesEveryMissingVariable(t *testing.T) {
	_, err := readConfig(func(string) string { return "" })
	for _, name := range []string{"PASSRESET_MYSQL_DSN", "RESEND_API_KEY", "MAIL_FROM", "PUBLIC_URL", "OUTBOX_KEY"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}

// TestProductionWiring runs the program against the test MariaDB and a
// local Resend: a trusted request, the mail through the durable outbox,
// the hosted form, and a login with the new password.
func TestProductionWiring(t *testing.T) {
	dsn := os.Getenv("PASSRESET_MYSQL_DSN")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("PASSRESET_MYSQL_DSN is not set under CI: run scripts/test.sh")
		}
		t.Skip("PASSRESET_MYSQL_DSN is not set: run scripts/test.sh, which starts a MariaDB")
	}
	fake := resendtest.NewServer()
	defer fake.Close()
	// waitMail waits until the local Resend has recorded n emails.
	waitMail := func(n int) []resendtest.Email {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		msgs, err := fake.WaitEmails(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		return msgs
	}
	email := fmt.Sprintf("wiring-%d@example.com", time.Now().UnixNano())
	env := map[string]string{
		"PASSRESET_MYSQL_DSN": dsn, "RESEND_API_KEY": resendtest.APIKey, "RESEND_BASE_URL": fake.URL,
		"MAIL_FROM": "Acme <security@acme.example>", "PUBLIC_URL": "https://acme.example",
		"OUTBOX_KEY":  base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")),
		"LISTEN_ADDR": "127.0.0.1:0", "CLIENT_ID": "backend", "CLIENT_SECRET": "s3cret",
		"SEED_EMAIL": email, "SEED_PASSWORD": "old password",
		"OUTBOX_RATE": "5", "OUTBOX_BATCH": "10", "OUTBOX_LEASE": "5s",
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
	go io.Copy(io.Discard, pr)
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	req, _ := http.NewRequest("POST", base+"/api/directory/users/password-lost",
		strings.NewReader(`{"email": "`+email+`", "skipSend": "disabled"}`))
	req.SetBasicAuth("backend", "s3cret")
	req.Header.Set("Content-Type", "application/json")
	body := do(t, req, http.StatusOK)
	if !strings.Contains(body, `"link":"https://acme.example/api/directory/reset?token=`) {
		t.Fatalf("answer %s", body)
	}
	msgs := waitMail(1)
	// One email alone goes to Resend's single endpoint under its own
	// idempotency key (several at once go in one batch call).
	if len(msgs) != 1 || msgs[0].To[0] != email || msgs[0].Batch || !strings.HasPrefix(msgs[0].IdempotencyKey, "password_reset/") {
		t.Fatalf("emails %+v", msgs)
	}
	token := resettest.Token(msgs[0].Text)
	if !strings.Contains(body, token) {
		t.Fatal("the mailed link is not the returned link")
	}

	page, _ := http.NewRequest("GET", base+"/api/directory/reset?token="+token, nil)
	if b := do(t, page, http.StatusOK); !strings.Contains(b, `autocomplete="new-password"`) {
		t.Fatalf("page %s", b)
	}
	form := url.Values{"token": {token}, "newPassword": {"a brand new password"}, "confirmPassword": {"a brand new password"}}
	post, _ := http.NewRequest("POST", base+"/api/directory/reset", strings.NewReader(form.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	do(t, post, http.StatusOK)

	for pw, want := range map[string]int{"a brand new password": 200, "old password": 401} {
		login, _ := http.NewRequest("POST", base+"/login", strings.NewReader(`{"email":"`+email+`","password":"`+pw+`"}`))
		do(t, login, want)
	}
	again, _ := http.NewRequest("POST", base+"/api/directory/reset", strings.NewReader(form.Encode()))
	again.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if b := do(t, again, http.StatusBadRequest); !strings.Contains(b, "This link does not work") {
		t.Errorf("a used link was not refused clearly: %s", b)
	}
	// The "password changed" notice goes out too.
	if msgs := waitMail(2); !slices.Contains(msgs[1].Tags, resendtest.Tag{Name: "kind", Value: "password_changed"}) {
		t.Errorf("second email %+v, want the password-changed notice", msgs[1])
	}
}

// browser keeps cookies, as a browser does: the reset page moves the
// link's token into a cookie and redirects to a clean address.
var browser = func() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		panic(err)
	}
	return &http.Client{Jar: jar}
}()

func do(t *testing.T, req *http.Request, want int) string {
	t.Helper()
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, b)
	}
	return string(b)
}
