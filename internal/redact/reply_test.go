package redact

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode"
)

func TestReply(t *testing.T) {
	for _, tt := range []struct {
		in      string
		secrets []string
		want    string
	}{
		{"5.1.1 <ada@example.com>: Recipient address rejected: User unknown in virtual mailbox table",
			nil, "5.1.1 [redacted] Recipient address rejected: User unknown in virtual mailbox table"},
		{"5.7.8 Error: authentication failed: AUTH PLAIN AGFkYQBodW50ZXIy", nil,
			"5.7.8 Error: authentication failed: AUTH PLAIN [redacted]"},
		{"Unknown command 'MAIL FROM:<reset@acme.example> SIZE=1234'", nil, "Unknown command 'MAIL [redacted]"},
		{"The `to` field has an invalid address: ada@example.com.", nil, "The `to` field has an invalid address: [redacted]"},
		{"Too many requests. You can only make 2 requests per second.", nil, "Too many requests. You can only make 2 requests per second."},
		{"bad password hunter2go for user ada", []string{"ada", "hunter2go"}, "bad password [redacted] for user [redacted]"},
		{"Password Sesame rejected", []string{"sesame"}, "Password [redacted] rejected"},
		{"see https://example.com/x?token=abc", nil, "see [redacted]"},
		{"from 192.0.2.1 blocked", nil, "from [redacted] blocked"},
		{"Empfänger unbekannt", nil, "[redacted] unbekannt"},
		{"line one\r\nline two", nil, "line one line two"},
		{"  ", nil, ""},
		{"a - b", nil, "a - b"},
	} {
		if got := Reply(tt.in, tt.secrets...); got != tt.want {
			t.Errorf("Reply(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := Reply(strings.Repeat("word ", 200)); len(got) > MaxLen {
		t.Errorf("Text of 1000 bytes returned %d bytes", len(got))
	}
}

// FuzzReply: whatever the input, the output holds no '@', '<' or '>', no
// secret of at least 3 bytes, no word with mixed case or digits and
// letters, nothing outside printable ASCII, and is at most MaxLen bytes.
func FuzzReply(f *testing.F) {
	f.Add("550 5.1.1 <ada@example.com>: Recipient address rejected", "hunter2")
	f.Add("535 AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00ada\x00S3cr3t/?#@:%")), "S3cr3t/?#@:%")
	f.Add("334 VXNlcm5hbWU6", "pw")
	f.Fuzz(func(t *testing.T, in, secret string) {
		out := Reply(in, secret)
		if len(out) > MaxLen {
			t.Fatalf("%d bytes", len(out))
		}
		if strings.ContainsAny(out, "@<>") {
			t.Fatalf("Reply(%q) = %q holds an address character", in, out)
		}
		if len(secret) >= 3 && strings.Contains(strings.ToLower(out), strings.ToLower(secret)) &&
			!strings.Contains(strings.ToLower(Redacted), strings.ToLower(secret)) {
			t.Fatalf("Reply(%q, %q) = %q holds the secret", in, secret, out)
		}
		for _, w := range strings.Fields(out) {
			if w == Redacted {
				continue
			}
			hasLower, hasUpperAfterLower, hasDigit, hasLetter := false, false, false, false
			for _, r := range w {
				if r > unicode.MaxASCII || !unicode.IsPrint(r) {
					t.Fatalf("Reply(%q) = %q holds %q", in, out, r)
				}
				switch {
				case unicode.IsLower(r):
					hasLower, hasLetter = true, true
				case unicode.IsUpper(r):
					hasUpperAfterLower = hasUpperAfterLower || hasLower
					hasLetter = true
				case unicode.IsDigit(r):
					hasDigit = true
				}
			}
			if hasUpperAfterLower || (hasDigit && hasLetter) {
				t.Fatalf("Reply(%q) = %q keeps %q", in, out, w)
			}
		}
		if again := Reply(out, secret); again != out {
			t.Fatalf("not stable: %q then %q", out, again)
		}
	})
}
