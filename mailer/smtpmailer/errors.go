package smtpmailer

import (
	"errors"
	"fmt"
	"os"
	"regexp"

	"github.com/passreset/passreset/internal/redact"
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
	// will fail the same way. It wraps [reset.ErrPermanent], so the queue
	// moves such a message aside instead of retrying it.
	ErrPermanent = fmt.Errorf("smtpmailer: %w", reset.ErrPermanent)

	// ErrTransient means that the message was not delivered but may be
	// later: a 4xx reply, a connection that could not be made, was
	// refused, dropped or timed out before the end of the data, a TLS
	// handshake or certificate that failed, a server that lacks STARTTLS
	// or an AUTH mechanism to use. The queue retries it later.
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
	// data" (the message itself, after it was sent), "AUTH", or "connect"
	// (the greeting, EHLO or STARTTLS).
	Command string
	// Code is the reply code, such as 550.
	Code int
	// Enhanced is the enhanced status code (RFC 3463), such as "5.1.1",
	// when the reply holds one; otherwise "".
	Enhanced string
	// Text is the reply's text after the code, redacted word by word (see
	// "What errors hold" in the package documentation); empty for a
	// reply while connecting or to AUTH, where none is kept.
	Text string
}

// Error names the command, the code and the text.
func (e *Error) Error() string {
	if e.Text == "" {
		if e.Enhanced != "" {
			return fmt.Sprintf("smtp server refused %s: %d %s", e.Command, e.Code, e.Enhanced)
		}
		return fmt.Sprintf("smtp server refused %s: %d", e.Command, e.Code)
	}
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

// failure is a failure that was not a reply from the server: a
// connection refused, dropped or timed out, a TLS failure, no usable AUTH.
// Its text is the cause's, redacted; it does not wrap the cause, whose
// text could hold an address or a credential.
type failure struct {
	text    string
	unknown bool  // the message was sent, the reply to its end never came
	timeout bool  // the cause was a timeout
	ctxErr  error // the Send's context's error, when it ended
}

func (f *failure) Error() string {
	s := f.text
	if f.unknown {
		s = "no reply to the end of the message, which the server may have accepted: " + s
	}
	if f.ctxErr != nil {
		s += " (" + f.ctxErr.Error() + ")"
	}
	return s
}

// Is reports whether target is reset.ErrOutcomeUnknown (an unknown
// outcome) or ErrTransient (any other), or os.ErrDeadlineExceeded for a
// timeout.
func (f *failure) Is(target error) bool {
	switch target {
	case reset.ErrOutcomeUnknown:
		return f.unknown
	case ErrTransient:
		return !f.unknown
	case os.ErrDeadlineExceeded:
		return f.timeout
	}
	return false
}

// Unwrap returns the Send's context's error, if it ended.
func (f *failure) Unwrap() error { return f.ctxErr }

var enhancedCode = regexp.MustCompile(`\b[245]\.\d{1,3}\.\d{1,3}\b`)

// enhancedIn returns the first enhanced status code in s, or "".
func enhancedIn(s string) string { return enhancedCode.FindString(s) }

// redactText keeps of a server's text only what package redact keeps,
// with the credentials removed by value too.
func redactText(s, user, pass string) string { return redact.Reply(s, user, pass) }
