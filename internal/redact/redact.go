// Package redact keeps whole email addresses out of the logs, events and
// stored errors of passreset's queues: a provider's refusal often quotes
// the recipient ("550 5.1.1 <name@example.com>: Recipient address
// rejected").
package redact

import "regexp"

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
