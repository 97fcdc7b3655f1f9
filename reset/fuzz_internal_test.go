package reset

import (
	"encoding/base64"
	"net/mail"
	"strings"
	"testing"
)

func FuzzParseToken(f *testing.F) {
	for _, s := range []string{"", strings.Repeat("A", 43), strings.Repeat("_", 43), strings.Repeat("A", 42) + "B",
		"abc", strings.Repeat("A", 44), strings.Repeat("A", 42) + "=", strings.Repeat("+", 43),
		invitePrefix + strings.Repeat("A", 43), "inv" + strings.Repeat("A", 43), invitePrefix + invitePrefix + strings.Repeat("A", 43)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, p, err := parseToken(s)
		if err != nil {
			return
		}
		// A token has exactly one text form, and its purpose is its prefix.
		pre := ""
		if p == PurposeInvite {
			pre = invitePrefix
		}
		if got := pre + base64.RawURLEncoding.EncodeToString(b[:]); got != s {
			t.Fatalf("parseToken(%q) accepted a non-canonical form of %q", s, got)
		}
	})
}

func FuzzCheckEmail(f *testing.F) {
	for _, s := range []string{"a@b.c", "jborder@anywhere.com", "x\r\n@y", "<a@b.c>", "A <a@b.c>", "\"a b\"@c.d", "a@[127.0.0.1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if checkEmail(s) != nil {
			return
		}
		if len(s) > 254 || strings.ContainsAny(s, "\r\n\x00<>") || !strings.Contains(s, "@") {
			t.Fatalf("accepted %q", s)
		}
	})
}

// FuzzCheckEmailAgreesWithNetMail checks that checkEmail accepts only what
// net/mail accepts as a bare address.
func FuzzCheckEmailAgreesWithNetMail(f *testing.F) {
	for _, s := range []string{"a@b.c", "a.b@c-d.e", "a..b@c.d", ".a@b.c", "a@b..c", "a@-b.c", "a@b.c.", "{x}@y.z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if checkEmail(s) != nil {
			return
		}
		a, err := mail.ParseAddress(s)
		if err != nil || a.Address != s || a.Name != "" {
			t.Fatalf("checkEmail accepted %q, net/mail says %v, %+v", s, err, a)
		}
	})
}
