package smtpmailer

import (
	"errors"
	"fmt"
	"net/textproto"
	"regexp"
	"strings"

	"github.com/passreset/passreset/reset"
)

// Sentinel errors. They are checked with [errors.Is]; the errors Send
// returns wrap them.
var (
	// ErrPermanent means that the server refused the message with a 5xx
	// reply (to MAIL FROM, RCPT TO, DATA, the end of the data, or while
	// connecting: the greeting, EHLO, STARTTLS or AUTH, such as 535 for
	// bad credentials), or that the message could not be turned into an
	// email (an invalid recipient, no body). Sending it again unchanged
	// will fail the same way. It wraps [reset.ErrPermanent], so a durable
	// outbox moves such a message aside instead of retrying it.
	ErrPermanent = fmt.Errorf("smtpmailer: %w", reset.ErrPermanent)

	// ErrTransient means that the message was not sent now but may be
	// later: a 4xx reply, a connection that could not be made, was
	// refused, dropped or timed out, a TLS handshake or certificate that
	// failed, a server that lacks STARTTLS or the AUTH mechanism asked
	// for. Send stopped trying after Options.MaxAttempts attempts.
	ErrTransient = errors.New("smtpmailer: transient failure")

	// ErrClosed is returned by Send after [Mailer.Close]. It is not
	// permanent: another Mailer (or another process) can send the message.
	ErrClosed = errors.New("smtpmailer: mailer closed")
)

// Error is a reply from the SMTP server that refused a command: a 4xx or
// 5xx reply code. Send returns it wrapped; find it with [errors.As]. It
// matches [ErrPermanent] and [reset.ErrPermanent] for a 5xx code and
// [ErrTransient] for a 4xx code.
type Error struct {
	// Command is what the server refused: "MAIL", "RCPT", "DATA", "end of
	// data" (the message itself, after it was sent), or "connect" (the
	// greeting, EHLO, STARTTLS or AUTH).
	Command string
	// Code is the reply code, such as 550.
	Code int
	// Enhanced is the enhanced status code (RFC 3463), such as "5.1.1",
	// when the reply starts with one; otherwise "".
	Enhanced string
	// Text is the reply's text after the code (lines joined with "; "),
	// with the recipient's address replaced by "<recipient>".
	Text string
}

// Error names the command, the code and the text.
func (e *Error) Error() string {
	return fmt.Sprintf("smtp server refused %s: %d %s", e.Command, e.Code, e.Text)
}

// Is reports whether target is ErrPermanent or reset.ErrPermanent (a 5xx
// reply) or ErrTransient (a 4xx reply).
func (e *Error) Is(target error) bool {
	switch target {
	case ErrPermanent, reset.ErrPermanent:
		return e.Code >= 500
	case ErrTransient:
		return e.Code < 500
	}
	return false
}

// transientError marks a failure that was not an SMTP reply (a timeout, a
// refused or dropped connection, a TLS failure) as transient.
type transientError struct{ err error }

func (t transientError) Error() string        { return t.err.Error() }
func (t transientError) Unwrap() error        { return t.err }
func (t transientError) Is(target error) bool { return target == ErrTransient }

var enhancedCode = regexp.MustCompile(`^[245]\.\d{1,3}\.\d{1,3}\b`)

// classify turns err, from command cmd of a send to recipient, into an
// *Error if it holds an SMTP reply, or marks it transient otherwise.
func classify(cmd, recipient string, err error) error {
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code < 400 || te.Code > 599 {
		return transientError{err}
	}
	text := strings.ReplaceAll(te.Msg, "\n", "; ")
	if recipient != "" {
		text = replaceFold(text, recipient, "<recipient>")
	}
	return &Error{Command: cmd, Code: te.Code, Enhanced: enhancedCode.FindString(text), Text: text}
}

// replaceFold replaces every case-insensitive occurrence of old in s.
func replaceFold(s, old, repl string) string {
	if old == "" {
		return s
	}
	lower, lowerOld := strings.ToLower(s), strings.ToLower(old)
	if len(lower) != len(s) || len(lowerOld) != len(old) {
		return strings.ReplaceAll(s, old, repl) // non-ASCII case mapping changed lengths
	}
	var b strings.Builder
	for {
		i := strings.Index(lower, lowerOld)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(repl)
		s, lower = s[i+len(old):], lower[i+len(old):]
	}
}
