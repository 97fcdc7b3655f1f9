// Package scripts_test checks the project's scripts that developers run by
// hand.
package scripts_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestMailpitDev starts the development Mailpit, sends it an email for a
// recipient outside the test domains, restarts it and finds the email
// still there, as `scripts/mailpit.sh dev` promises.
func TestMailpitDev(t *testing.T) {
	dir := t.TempDir()
	smtpPort, uiPort := freePort(t), freePort(t)
	env := append(os.Environ(),
		"PASSRESET_MAILPIT_DEV_DIR="+dir,
		"PASSRESET_MAILPIT_DEV_SMTP="+strconv.Itoa(smtpPort),
		"PASSRESET_MAILPIT_DEV_UI="+strconv.Itoa(uiPort))
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("bash", append([]string{"mailpit.sh"}, args...)...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("mailpit.sh %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return string(out)
	}
	t.Cleanup(func() { run("dev-stop") })

	out := run("dev")
	wantURL := "SMTP_URL=smtp+plain://127.0.0.1:" + strconv.Itoa(smtpPort)
	wantUI := "http://127.0.0.1:" + strconv.Itoa(uiPort) + "/"
	if !strings.Contains(out, wantURL) || !strings.Contains(out, wantUI) {
		t.Fatalf("mailpit.sh dev printed %q; want %q and %q", out, wantURL, wantUI)
	}
	msg := "From: app@acme.test\r\nTo: person@anywhere.test\r\nSubject: kept\r\n\r\nhello\r\n"
	if err := smtp.SendMail("127.0.0.1:"+strconv.Itoa(smtpPort), nil, "app@acme.test", []string{"person@anywhere.test"}, []byte(msg)); err != nil {
		t.Fatalf("sending to the development mailpit: %v", err)
	}
	run("dev-stop")
	run("dev")

	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(uiPort) + "/api/v1/messages")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Total    int
		Messages []struct {
			Subject string
			To      []struct{ Address string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if list.Total != 1 || len(list.Messages) != 1 || list.Messages[0].Subject != "kept" ||
		len(list.Messages[0].To) != 1 || list.Messages[0].To[0].Address != "person@anywhere.test" {
		t.Fatalf("after a restart the development mailpit holds %+v; want the one email sent before", list)
	}
}
