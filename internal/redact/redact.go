// Package redact keeps addresses and credentials out of passreset's
// errors, logs, events and stored fields.
//
// [Text] and [Error] replace the local part of every address-like word
// with "***" (a provider's refusal often quotes the recipient: "550 5.1.1
// <name@example.com>: Recipient address rejected"); the queues apply them
// to every delivery error they log, emit or store.
//
// [Reply] makes a provider's reply text safe by an allow-list, so it is
// safe by construction: the text is split into words at white space, and a
// word is kept only if, once the punctuation around it ( ( ) [ ] ` ' " . , ; : ! ? ) is set aside, it is
//
//   - 1 to 24 ASCII letters, all lower case, all upper case or capitalized
//     ("rejected", "SMTP", "Recipient"), with single '-' or '\” between
//     letters allowed ("out-of-office", "don't");
//   - a number of 1 to 3 digits ("550", "2");
//   - an enhanced status code such as "5.1.1".
//
// and it does not contain (ignoring case) a secret given (a user name, a
// password), or a part of one between spaces, of at least 3 bytes; if the
// result still holds such a secret across words, it is [Redacted] alone.
// Every other word becomes
// [Redacted]; a run of them becomes one. So an address (it has an '@'),
// a quoted address ('<', '>'), a base64 blob (mixed case, digits, '+',
// '/', '='), a hex token, a URL, an IP address and anything outside ASCII
// never survive; a credential survives only as a plain word nobody gave
// as a secret. The result is at most [MaxLen] bytes.
package redact

import (
	"regexp"
	"strings"
)

// emailLike matches what looks like an email address.
var emailLike = regexp.MustCompile(`[^\s<>"'(),;:\[\]{}/\\=]+@([^\s<>"'(),;:\[\]{}/\\=@]+)`)

// Text returns s with the local part of every address in it replaced by
// "***".
func Text(s string) string { return emailLike.ReplaceAllString(s, "***@$1") }

// Error returns err with a redacted text; errors.Is and errors.As still
// see err. It returns nil for nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	return &redacted{msg: Text(err.Error()), err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

// Redacted replaces each run of words that the rule does not keep.
const Redacted = "[redacted]"

// MaxLen bounds the length of what Reply returns.
const MaxLen = 300

// Reply returns s with every word the package's rule does not keep
// replaced by [Redacted], words separated by single spaces.
func Reply(s string, secrets ...string) string {
	var b strings.Builder
	redacted := false // the last word written was Redacted
	for _, w := range strings.Fields(s) {
		if !keep(w, secrets) {
			if redacted {
				continue
			}
			w = Redacted
		}
		if b.Len()+1+len(w) > MaxLen {
			if !redacted && b.Len()+1+len(Redacted) <= MaxLen {
				b.WriteString(" " + Redacted)
			}
			break
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w)
		redacted = w == Redacted
	}
	out := b.String()
	// A secret that spans words (a password with spaces) is caught here.
	lower := strings.ToLower(out)
	for _, sec := range secrets {
		if len(sec) >= 3 && strings.Contains(lower, strings.ToLower(sec)) {
			return Redacted
		}
	}
	return out
}

// keep reports whether the word w may be kept.
func keep(w string, secrets []string) bool {
	if len(w) <= 3 && strings.Trim(w, "()[]`'\".,;:!?-") == "" {
		return true // punctuation only, such as "-" or ":": it holds nothing
	}
	core := strings.Trim(w, "()[]`'\".,;:!?")
	if strings.ContainsAny(w, "@<>") {
		return false // belt and braces: never an address, even in the punctuation
	}
	if !plainWord(core) && !number(core) && !enhancedCode(core) {
		return false
	}
	lower := strings.ToLower(core)
	for _, sec := range secrets {
		for _, part := range strings.Fields(sec) {
			if len(part) >= 3 && strings.Contains(lower, strings.ToLower(part)) {
				return false
			}
		}
	}
	return true
}

// plainWord: 1 to 24 ASCII letters, all lower, all upper or capitalized,
// with single '-' or '\” between letters.
func plainWord(s string) bool {
	if len(s) > 24 {
		return false
	}
	upper, lower := 0, 0
	prevLetter := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z':
			lower++
			prevLetter = true
		case 'A' <= c && c <= 'Z':
			// An upper-case letter after a lower-case one is mixed case.
			if lower > 0 {
				return false
			}
			upper++
			prevLetter = true
		case (c == '-' || c == '\'') && prevLetter && i+1 < len(s):
			prevLetter = false
		default:
			return false
		}
	}
	if !prevLetter {
		return false
	}
	// All upper, all lower, or one capital followed by lower case.
	return lower == 0 || upper <= 1
}

func number(s string) bool {
	if len(s) == 0 || len(s) > 3 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// enhancedCode: class.subject.detail as in RFC 3463, such as 5.1.1.
func enhancedCode(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || !strings.ContainsAny(parts[0], "245") {
		return false
	}
	return number(parts[1]) && number(parts[2])
}
