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
	i := strings.Index(text, "## The HTTP API")
	if i < 0 {
		t.Fatal(`README has no "## The HTTP API" section`)
	}
	text = text[i:]
	from := strings.Index(text, "```sh\n")
	end := strings.Index(text[from+6:], "```")
	if from < 0 || end < 0 {
		t.Fatal("no sh block in the README's HTTP API section")
	}
	script := text[from+6 : from+6+end]
	d := start(t)
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", d.base)
	cmd := exec.Command("sh", "-e", "-c", script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's sequence failed: %v\n%s", err, out)
	}
	for _, want := range []string{`"valid":true`, "signed in", "HTTP/1.1 202"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
