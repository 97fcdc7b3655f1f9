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
	case simpleAddress(s):
		return nil
	case !utf8.ValidString(s):
		return bad("not valid UTF-8")
	case strings.ContainsAny(s, "\r\n"):
		return bad("contains a line break")
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return bad("contains a control character")
	}
	// The rare rest (quoted local parts, non-ASCII, domain literals) gets
	// the full RFC 5322 parser.
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || !strings.Contains(s, "@") {
		return bad("not an email address")
	}
	return nil
}

// Byte classes for simpleAddress.
const (
	atext  = 1 << iota // RFC 5322 atext: may stand in a dot-atom local part
	dlabel             // letter, digit or hyphen: may stand in a domain label
)

var addrClass = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = atext|dlabel, atext|dlabel
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = atext | dlabel
	}
	for _, c := range "!#$%&'*+/=?^_`{|}~" {
		t[c] = atext
	}
	t['-'] = atext | dlabel
	return t
}()

// simpleAddress reports whether s is an ASCII dot-atom address with a
// dotted domain of letters, digits and hyphens: what nearly every address
// is. Every address it accepts, net/mail accepts too. One pass, one table.
func simpleAddress(s string) bool {
	class := uint8(atext) // what the current part allows
	prev := byte('.')     // a part may not start with a dot
	seenAt := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if prev == '.' || prev == '@' {
				return false
			}
		case c == '@':
			if seenAt || prev == '.' {
				return false
			}
			seenAt, class = true, dlabel
		case addrClass[c]&class == 0:
			return false
		}
		prev = c
	}
	return seenAt && prev != '.' && prev != '@'
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
