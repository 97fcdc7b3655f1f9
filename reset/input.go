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

// minPassword and DefaultMaxPassword bound a new password's length
// in characters under [DefaultPasswordPolicy].
const (
	minPassword        = 8
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
	if n < minPassword {
		return &PasswordError{Reason: fmt.Sprintf("must be at least %d characters long", minPassword)}
	}
	if n > DefaultMaxPassword {
		return &PasswordError{Reason: fmt.Sprintf("must be at most %d characters long", DefaultMaxPassword)}
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

// bcryptMaxBytes is the longest password golang.org/x/crypto/bcrypt
// accepts, in bytes: it refuses longer ones with an error.
const bcryptMaxBytes = 72

// BcryptPasswordPolicy is [DefaultPasswordPolicy] for applications that
// hash with bcrypt: it also refuses passwords longer than 72 bytes, which
// bcrypt cannot hash, with a reason a person understands. Set it as
// [Config.PasswordPolicy]. (A multi-byte character counts several bytes.)
func BcryptPasswordPolicy(password string) error {
	if err := DefaultPasswordPolicy(password); err != nil {
		return err
	}
	if len(password) > bcryptMaxBytes {
		return &PasswordError{Reason: fmt.Sprintf("must be at most %d bytes long (fewer characters if you use accents or other scripts)", bcryptMaxBytes)}
	}
	return nil
}
