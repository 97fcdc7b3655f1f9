package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestREADMEWalkthrough runs the README's curl sequence, as printed, against
// the example: every command must succeed in order (curl --fail-with-body
// and set -e stop at the first refusal).
func TestREADMEWalkthrough(t *testing.T) {
	out := runReadmeBlock(t, "## The HTTP API")
	for _, want := range []string{`"valid":true`, "signed in", "HTTP/1.1 202"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestREADMEInvitation runs the README's invitation request against the
// example: a trusted caller gets an invitation's link.
func TestREADMEInvitation(t *testing.T) {
	out := runReadmeBlock(t, "## Invitations")
	if !strings.Contains(out, "HTTP/1.1 200") || !strings.Contains(out, "token=inv.") {
		t.Errorf("no invitation link in:\n%s", out)
	}
}

// runReadmeBlock runs the first sh block of the README section that
// starts with heading against a fresh example, and returns its output.
func runReadmeBlock(t *testing.T, heading string) string {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is not installed")
		}
		t.Skip("curl is not installed")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	i := strings.Index(text, heading)
	if i < 0 {
		t.Fatalf("README has no %q section", heading)
	}
	text = text[i:]
	from := strings.Index(text, "```sh\n")
	end := strings.Index(text[from+6:], "```")
	if from < 0 || end < 0 {
		t.Fatalf("no sh block in the README's %q section", heading)
	}
	script := text[from+6 : from+6+end]
	d := start(t)
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", d.base)
	cmd := exec.Command("sh", "-e", "-c", script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's %q sequence failed: %v\n%s", heading, err, out)
	}
	return string(out)
}
