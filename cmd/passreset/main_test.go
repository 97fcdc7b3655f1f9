package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/internal/opstest"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/mysqlstore"
	"github.com/passreset/passreset/store/pgstore"
)

// cmd runs the command line with the environment vars and returns its
// exit code and output.
func cmd(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(t.Context(), args, func(k string) string { return vars[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

// decode runs the command with --json and decodes its output into v.
func decode(t *testing.T, vars map[string]string, want int, v any, args ...string) {
	t.Helper()
	code, out, errOut := cmd(t, vars, append([]string{"--json"}, args...)...)
	if code != want {
		t.Fatalf("passreset %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("passreset %s: %v in %q", strings.Join(args, " "), err, out)
	}
}

func TestMariaDB(t *testing.T) {
	s, dsn, prefix := opstest.MariaDB(t)
	vars := map[string]string{"PASSRESET_MYSQL_DSN": dsn, "PASSRESET_TABLE_PREFIX": prefix}
	operate(t, vars, s, mysqlstore.SchemaVersion)
	newerSchema(t, vars, "`"+prefix+"schema_version`", mysqlstore.SchemaVersion)
}

func TestPostgreSQL(t *testing.T) {
	s, dsn, prefix := opstest.PostgreSQL(t)
	vars := map[string]string{"PASSRESET_PG_DSN": dsn, "PASSRESET_TABLE_PREFIX": prefix}
	operate(t, vars, s, pgstore.SchemaVersion)
	newerSchema(t, vars, `"`+prefix+`schema_version"`, pgstore.SchemaVersion)
}

// newerSchema records a newer migration in the migrated tables: schema
// version says this build runs on it while the migration is expand-only,
// and exits 3 once a contracting one follows.
func newerSchema(t *testing.T, vars map[string]string, table string, want int) {
	st, err := openStore(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	defer st.db.Close()
	ctx := t.Context()
	if _, err := st.db.ExecContext(ctx, "INSERT INTO "+table+" (version, oldest) VALUES (?, ?)", want+1, want); err != nil {
		t.Fatal(err)
	}
	code, out, _ := cmd(t, vars, "schema", "version")
	if code != exitOK || !strings.Contains(out, fmt.Sprintf("schema version %d, this build needs %d", want+1, want)) || !strings.Contains(out, "current (newer, every later migration expand-only)") {
		t.Fatalf("schema version on a newer expand-only schema: exit %d, %q", code, out)
	}
	if _, err := st.db.ExecContext(ctx, "INSERT INTO "+table+" (version, oldest) VALUES (?, ?)", want+2, want+2); err != nil {
		t.Fatal(err)
	}
	var sv schemaState
	decode(t, vars, exitProblem, &sv, "schema", "version")
	if sv.Installed != want+2 || sv.Want != want || sv.Current || !strings.Contains(sv.Problem, "contracting migration") {
		t.Fatalf("schema version after a contracting migration: %+v", sv)
	}
}

// operate is what an operator does, against a database of the test's own:
// migrate, see the outbox fill, list what failed, revive it, purge it.
func operate(t *testing.T, vars map[string]string, s interface {
	reset.Store
	outbox.Store
}, want int) {
	ctx := t.Context()

	var sv schemaState
	decode(t, vars, exitProblem, &sv, "schema", "version")
	if sv.Installed != 0 || sv.Want != want || sv.Current {
		t.Fatalf("schema version before migrate: %+v", sv)
	}
	decode(t, vars, exitOK, &sv, "schema", "migrate")
	if sv.Installed != want || !sv.Current {
		t.Fatalf("schema migrate: %+v", sv)
	}
	if code, out, _ := cmd(t, vars, "schema", "version"); code != exitOK || !strings.Contains(out, fmt.Sprintf("schema version %d, this build needs %d (and runs on newer ones until a contracting migration): current", want, want)) {
		t.Fatalf("schema version: exit %d, %q", code, out)
	}

	var st status
	decode(t, vars, exitOK, &st, "outbox", "status")
	if st.Pending != 0 || st.Dead != 0 || st.Oldest != nil || !st.BudgetKnown || st.BudgetPaused {
		t.Fatalf("empty outbox: %+v", st)
	}
	// A rate-limit answer paused the provider budget: status says so.
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if err := s.Pause(ctx, "mail", until); err != nil {
		t.Fatal(err)
	}
	decode(t, vars, exitOK, &st, "outbox", "status")
	if !st.BudgetKnown || !st.BudgetPaused || st.BudgetNextCall == nil || !st.BudgetNextCall.Equal(until) {
		t.Fatalf("outbox status with the budget paused until %v: %+v", until, st)
	}
	if code, out, _ := cmd(t, vars, "outbox", "status"); code != exitOK || !strings.Contains(out, "PAUSED until "+until.Format(time.RFC3339)) {
		t.Fatalf("outbox status with the budget paused: exit %d, %q", code, out)
	}

	// A deployment whose mailer refuses every email for good.
	keyText := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	keys, err := sealKeys(func(k string) string { return map[string]string{"OUTBOX_KEY": keyText}[k] })
	if err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.New(s, outbox.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	users := &resettest.Users{}
	users.Add("1", "alice@example.com", "old")
	users.Add("2", "bob@example.com", "old")
	mailer := &resettest.Mailer{Err: fmt.Errorf("mailbox unavailable: %w", reset.ErrPermanent)}
	svc, err := reset.New(reset.Config{KeepSessions: true, Store: s, Users: users, Mailer: mailer, ResetURL: "https://app.example/reset", Queue: ob})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Request(ctx, "alice@example.com", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := ob.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := svc.Request(ctx, "bob@example.com", ""); err != nil {
		t.Fatal(err)
	}

	// How deep is the outbox and what failed? No key needed.
	decode(t, vars, exitOK, &st, "outbox", "status")
	if st.Pending != 1 || st.Dead != 1 || st.Oldest == nil {
		t.Fatalf("outbox status: %+v", st)
	}
	code, out, _ := cmd(t, vars, "outbox", "status")
	if code != exitOK || !strings.Contains(out, "pending") || !strings.Contains(out, "oldest pending") || !strings.Contains(out, "provider budget") {
		t.Fatalf("outbox status: exit %d, %q", code, out)
	}
	if code, _, _ := cmd(t, vars, "outbox", "status", "--max-age", "1h"); code != exitOK {
		t.Fatalf("outbox status --max-age 1h with a fresh backlog: exit %d", code)
	}
	if code, _, _ := cmd(t, vars, "outbox", "status", "--max-age", "1ns"); code != exitProblem {
		t.Fatalf("outbox status --max-age 1ns with a backlog: exit %d, want %d", code, exitProblem)
	}
	var dead []deadMessage
	decode(t, vars, exitOK, &dead, "outbox", "dead")
	if len(dead) != 1 || !strings.Contains(dead[0].Reason, "mailbox unavailable") || dead[0].Recipients != nil {
		t.Fatalf("outbox dead: %+v", dead)
	}
	code, out, _ = cmd(t, vars, "outbox", "dead")
	if code != exitOK || !strings.Contains(out, dead[0].ID) || strings.Contains(out, "alice") {
		t.Fatalf("outbox dead: exit %d, %q", code, out)
	}
	// Addresses only when asked, and only with the key.
	if code, _, errOut := cmd(t, vars, "outbox", "dead", "--reveal"); code != exitUsage || !strings.Contains(errOut, "OUTBOX_KEY") {
		t.Fatalf("outbox dead --reveal without a key: exit %d, %q", code, errOut)
	}
	withKey := map[string]string{"OUTBOX_KEY": keyText}
	for k, v := range vars {
		withKey[k] = v
	}
	decode(t, withKey, exitOK, &dead, "outbox", "dead", "--reveal")
	if len(dead) != 1 || len(dead[0].Recipients) != 1 || dead[0].Recipients[0] != "alice@example.com" {
		t.Fatalf("outbox dead --reveal: %+v", dead)
	}

	// Revive it.
	if code, _, errOut := cmd(t, vars, "outbox", "revive", "no-such-id"); code != exitNotFound {
		t.Fatalf("revive of an unknown ID: exit %d, %q", code, errOut)
	}
	if code, _, _ := cmd(t, vars, "outbox", "revive"); code != exitUsage {
		t.Fatalf("revive without IDs or --all: exit %d", code)
	}
	var revived struct{ Revived []string }
	decode(t, vars, exitOK, &revived, "outbox", "revive", "--all", "--reason", "no such reason")
	if len(revived.Revived) != 0 {
		t.Fatalf("revive --all of a reason nobody has: %+v", revived)
	}
	decode(t, vars, exitOK, &revived, "outbox", "revive", "--all", "--reason", "mailbox unavailable")
	if len(revived.Revived) != 1 || revived.Revived[0] != dead[0].ID {
		t.Fatalf("revive --all: %+v, want %s", revived, dead[0].ID)
	}
	decode(t, vars, exitOK, &st, "outbox", "status")
	if st.Pending != 2 || st.Dead != 0 {
		t.Fatalf("after revive: %+v", st)
	}

	// Both fail for good again; purge them.
	if _, err := ob.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	decode(t, vars, exitOK, &st, "outbox", "status")
	if st.Pending != 0 || st.Dead != 2 {
		t.Fatalf("after a second drain: %+v", st)
	}
	var purged struct{ Purged int }
	decode(t, vars, exitOK, &purged, "outbox", "purge", "--older-than", "1h")
	if purged.Purged != 0 {
		t.Fatalf("purge --older-than 1h removed %d fresh messages", purged.Purged)
	}
	decode(t, vars, exitOK, &purged, "outbox", "purge")
	if purged.Purged != 2 {
		t.Fatalf("purge: %d, want 2", purged.Purged)
	}
	decode(t, vars, exitOK, &st, "outbox", "status")
	if st.Pending != 0 || st.Dead != 0 {
		t.Fatalf("after purge: %+v", st)
	}

	t.Run("check", func(t *testing.T) { checkAgainst(t, vars, keyText) })
}

// checkAgainst runs check with a real SMTP server (Mailpit) and a real
// reset page, then with a link base where nothing is mounted.
func checkAgainst(t *testing.T, vars map[string]string, keyText string) {
	smtpAddr := opstest.Env(t, "PASSRESET_MAILPIT_SMTP")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/directory/reset", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("reset page")) })
	app := httptest.NewServer(mux)
	defer app.Close()
	good := map[string]string{"OUTBOX_KEY": keyText, "SMTP_URL": "smtp+plain://" + smtpAddr, "MAIL_FROM": "ops@example.com", "PUBLIC_URL": app.URL}
	for k, v := range vars {
		good[k] = v
	}
	var res struct {
		OK     bool
		Checks []checkResult
	}
	decode(t, good, exitOK, &res, "check")
	if !res.OK || len(res.Checks) != 5 {
		t.Fatalf("check: %+v", res)
	}
	// With Resend: a key of Resend's form, and the API answers.
	api := resendtest.NewServer()
	defer api.Close()
	withResend := map[string]string{"RESEND_API_KEY": resendtest.APIKey, "RESEND_BASE_URL": api.URL}
	for k, v := range good {
		if k != "SMTP_URL" {
			withResend[k] = v
		}
	}
	decode(t, withResend, exitOK, &res, "check")
	if !res.OK {
		t.Fatalf("check with Resend: %+v", res)
	}
	withResend["RESEND_API_KEY"] = "not-a-key"
	if code, out, _ := cmd(t, withResend, "check"); code != exitProblem || !strings.Contains(out, "FAIL  mailer") {
		t.Fatalf("check with a malformed Resend key: exit %d\n%s", code, out)
	}
	bad := map[string]string{}
	for k, v := range good {
		bad[k] = v
	}
	bad["PUBLIC_URL"] = app.URL + "/elsewhere"
	delete(bad, "OUTBOX_KEY")
	code, out, _ := cmd(t, bad, "check")
	if code != exitProblem || !strings.Contains(out, "FAIL  reset link base") || !strings.Contains(out, "404") || !strings.Contains(out, "FAIL  sealing key") || !strings.Contains(out, "ok    schema") {
		t.Fatalf("check of a wrong link base: exit %d\n%s", code, out)
	}
}

func TestSendTest(t *testing.T) {
	smtpAddr := opstest.Env(t, "PASSRESET_MAILPIT_SMTP")
	api := opstest.Env(t, "PASSRESET_MAILPIT_API")
	to := "ops-" + strings.ToLower(rand.Text()[:10]) + "@example.com"
	vars := map[string]string{"SMTP_URL": "smtp+plain://" + smtpAddr, "MAIL_FROM": "Ops <ops@example.com>"}
	var sent struct {
		MessageID string `json:"message_id"`
		Sent      bool
	}
	decode(t, vars, exitOK, &sent, "send-test", to)
	if !sent.Sent {
		t.Fatalf("send-test: %+v", sent)
	}
	resp, err := http.Get(api + "/api/v1/search?query=" + url.QueryEscape("to:"+to))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var found struct {
		Messages []struct{ Subject string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&found); err != nil {
		t.Fatal(err)
	}
	if len(found.Messages) != 1 || found.Messages[0].Subject != "passreset test email" {
		t.Fatalf("Mailpit holds %+v for %s", found.Messages, to)
	}
	// Without a mailer configured: a usage error that says what to set.
	if code, _, errOut := cmd(t, map[string]string{"MAIL_FROM": "ops@example.com"}, "send-test", to); code != exitUsage || !strings.Contains(errOut, "RESEND_API_KEY (or SMTP_URL)") {
		t.Fatalf("send-test without a mailer: exit %d, %q", code, errOut)
	}
}

func TestKeyAndUsage(t *testing.T) {
	var k struct{ Variable, Key string }
	decode(t, nil, exitOK, &k, "key")
	if b, err := base64.StdEncoding.DecodeString(k.Key); err != nil || len(b) != 32 || k.Variable != "OUTBOX_KEY" {
		t.Fatalf("key: %+v (%v)", k, err)
	}
	code, out, _ := cmd(t, nil, "key")
	if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out)); code != exitOK || err != nil || len(b) != 32 {
		t.Fatalf("key: exit %d, %q", code, out)
	}
	if _, err := sealKeys(func(k string) string { return map[string]string{"OUTBOX_KEY": strings.TrimSpace(out)}[k] }); err != nil {
		t.Fatalf("the printed key is refused as OUTBOX_KEY: %v", err)
	}
	if code, out, _ := cmd(t, nil, "--help"); code != exitOK || !strings.Contains(out, "outbox status") || !strings.Contains(out, "send-test") {
		t.Fatalf("--help: exit %d, %q", code, out)
	}
	if code, _, errOut := cmd(t, nil, "outbox", "status"); code != exitUsage || !strings.Contains(errOut, "PASSRESET_MYSQL_DSN or PASSRESET_PG_DSN") {
		t.Fatalf("no DSN: exit %d, %q", code, errOut)
	}
	if code, _, _ := cmd(t, nil, "no-such-command"); code != exitUsage {
		t.Fatalf("unknown command: exit %d", code)
	}
	if code, out, _ := cmd(t, nil, "schema", "show", "--dialect", "postgres"); code != exitOK || !strings.Contains(out, "CREATE TABLE IF NOT EXISTS") {
		t.Fatalf("schema show: exit %d, %q", code, out)
	}
	var unreachable = map[string]string{"PASSRESET_PG_DSN": "postgres://u:p@127.0.0.1:1/db?connect_timeout=2"}
	if code, _, _ := cmd(t, unreachable, "outbox", "status"); code != exitFailed {
		t.Fatalf("unreachable database: exit %d, want %d", code, exitFailed)
	}
}

// TestSchemaFiles writes the migration files for another table prefix:
// they are what the store renders, for either tool and dialect.
func TestSchemaFiles(t *testing.T) {
	for _, c := range []struct {
		dialect, tool string
		render        func(tool, prefix string) (map[string]string, error)
	}{
		{"mysql", "goose", mysqlstore.MigrationFiles},
		{"mysql", "golang-migrate", mysqlstore.MigrationFiles},
		{"postgres", "goose", func(tool, prefix string) (map[string]string, error) { return pgstore.MigrationFiles(tool, "", prefix) }},
		{"postgres", "golang-migrate", func(tool, prefix string) (map[string]string, error) { return pgstore.MigrationFiles(tool, "", prefix) }},
	} {
		dir := filepath.Join(t.TempDir(), "migrations")
		var res struct{ Files []string }
		decode(t, nil, exitOK, &res, "schema", "files", "--dialect", c.dialect, "--tool", c.tool, "--dir", dir, "--prefix", "acme_")
		want, err := c.render(c.tool, "acme_")
		if err != nil {
			t.Fatal(err)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != len(want) || len(res.Files) != len(want) {
			t.Fatalf("%s %s: %d files written, %d listed, want %d", c.dialect, c.tool, len(entries), len(res.Files), len(want))
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != want[e.Name()] || !strings.Contains(string(b), "acme_schema_version") {
				t.Errorf("%s %s: %s differs from the store's rendering", c.dialect, c.tool, e.Name())
			}
		}
	}
	// The prefix from the environment, as the other commands read it.
	dir := t.TempDir()
	if code, out, errOut := cmd(t, map[string]string{"PASSRESET_TABLE_PREFIX": "env_"}, "schema", "files", "--dialect", "mysql", "--tool", "goose", "--dir", dir); code != exitOK || !strings.Contains(out, "00001_") {
		t.Fatalf("schema files: exit %d, %q, %q", code, out, errOut)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "00001_tokens_cooldowns.sql")); err != nil || !strings.Contains(string(b), "`env_tokens`") {
		t.Fatalf("schema files with PASSRESET_TABLE_PREFIX: %v\n%s", err, b)
	}
	for _, bad := range [][]string{
		{"--dialect", "mysql", "--tool", "flyway", "--dir", dir},
		{"--dialect", "mysql", "--tool", "goose", "--dir", dir, "--prefix", "bad-prefix"},
		{"--tool", "goose", "--dir", dir},
	} {
		if code, _, _ := cmd(t, nil, append([]string{"schema", "files"}, bad...)...); code != exitUsage {
			t.Errorf("schema files %v: exit %d, want %d", bad, code, exitUsage)
		}
	}
}
