package reset

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"
)

// maxEmailLen is the longest address accepted (RFC 5321's path limit).
const maxEmailLen = 254

// checkEmail reports whether s is a plain email address ("name@example.com",
// no display name, no CR or LF, at most 254 bytes). It returns nil or an
// [*InputError] for field "email".
func checkEmail(s string) error {
	bad := func(reason string) error { return &InputError{Field: "email", Reason: reason} }
	switch {
	case s == "":
		return &InputError{Field: "email", Reason: "is required", Missing: true}
	case len(s) > maxEmailLen:
		return bad(fmt.Sprintf("longer than %d bytes", maxEmailLen))
	case !utf8.ValidString(s):
		return bad("not valid UTF-8")
	case strings.ContainsAny(s, "\r\n"):
		return bad("contains a line break")
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return bad("contains a control character")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || !strings.Contains(s, "@") {
		return bad("not an email address")
	}
	return nil
}

// redactAddr returns an address fit for logs: its domain only.
func redactAddr(email string) string {
	if i := strings.LastIndexByte(email, '@'); i >= 0 {
		return "***" + email[i:]
	}
	return "***"
}
