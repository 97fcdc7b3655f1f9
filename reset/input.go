package reset

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"
)

// maxEmailLen is the longest address accepted (RFC 5321's path limit).
const maxEmailLen = 254

// CheckEmail reports whether s is a plain email address ("name@example.com",
// no display name, no CR or LF, at most 254 bytes). It returns nil or an
// [*InputError] for field "email".
func CheckEmail(s string) error {
	bad := func(reason string) error { return &InputError{Field: "email", Reason: reason} }
	switch {
	case s == "":
		return bad("is required")
	case len(s) > maxEmailLen:
		return bad(fmt.Sprintf("longer than %d bytes", maxEmailLen))
	case !utf8.ValidString(s):
		return bad("not valid UTF-8")
	case strings.ContainsAny(s, "\r\n"):
		return bad("contains a line break")
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return bad("contains a control character")
	}
	if simpleAddress(s) {
		return nil
	}
	// The rare rest (quoted local parts, non-ASCII, domain literals) gets
	// the full RFC 5322 parser.
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || !strings.Contains(s, "@") {
		return bad("not an email address")
	}
	return nil
}

// simpleAddress reports whether s is an ASCII dot-atom address with a
// dotted domain of letters, digits and hyphens: what nearly every address
// is. Every address it accepts, net/mail accepts too.
func simpleAddress(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	if !dotted(local, isAtext) {
		return false
	}
	return dotted(domain, func(c byte) bool {
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-'
	})
}

// dotted reports whether s is non-empty runs of ok bytes joined by single dots.
func dotted(s string, ok func(byte) bool) bool {
	prev := byte('.')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if prev == '.' {
				return false
			}
		} else if !ok(c) {
			return false
		}
		prev = c
	}
	return prev != '.'
}

// isAtext reports whether c is an RFC 5322 atext character.
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+/=?^_`{|}~-", c) >= 0
}

// DefaultMinPassword and DefaultMaxPassword bound a new password's length
// in characters under [DefaultPasswordPolicy].
const (
	DefaultMinPassword = 8
	DefaultMaxPassword = 1024
)

// DefaultPasswordPolicy accepts passwords of 8 to 1024 characters of valid
// UTF-8 without NUL, as OWASP's password guidance suggests (length over
// composition rules). It returns nil or a [*PasswordError].
func DefaultPasswordPolicy(password string) error {
	if !utf8.ValidString(password) {
		return &PasswordError{Reason: "must be valid UTF-8 text"}
	}
	if strings.IndexByte(password, 0) >= 0 {
		return &PasswordError{Reason: "must not contain NUL characters"}
	}
	n := utf8.RuneCountInString(password)
	if n < DefaultMinPassword {
		return &PasswordError{Reason: fmt.Sprintf("must be at least %d characters long", DefaultMinPassword)}
	}
	if n > DefaultMaxPassword {
		return &PasswordError{Reason: fmt.Sprintf("must be at most %d characters long", DefaultMaxPassword)}
	}
	return nil
}

// redact returns an address fit for logs: its domain only.
func redact(email string) string {
	if i := strings.LastIndexByte(email, '@'); i >= 0 {
		return "***" + email[i:]
	}
	return "***"
}
