package smtpmailer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"

	gomail "github.com/wneessen/go-mail"

	"github.com/passreset/passreset/reset"
)

// render turns msg into go-mail's message: a UTF-8 email, its text and
// HTML as multipart/alternative (or the one that is not empty), both
// quoted-printable, which keeps every line within 76 characters however
// long the link, and decodes to the exact text.
func (m *Mailer) render(msg reset.Message) (*gomail.Msg, error) {
	if strings.ContainsAny(msg.To+msg.Subject, "\r\n") {
		return nil, errors.New("the recipient or the subject contains a line break")
	}
	to, err := parseAddress(msg.To)
	if err != nil || to.Name != "" {
		return nil, errors.New("the recipient is not a valid address")
	}
	if msg.Text == "" && msg.HTML == "" {
		return nil, errors.New("the message has no body")
	}
	e := gomail.NewMsg(gomail.WithNoDefaultUserAgent(), gomail.WithCharset(gomail.CharsetUTF8),
		gomail.WithEncoding(gomail.EncodingQP))
	e.FromMailAddress(m.from)
	e.ToMailAddress(to)
	if m.replyTo != nil {
		e.ReplyToMailAddress(m.replyTo)
	}
	e.Subject(msg.Subject)
	e.SetDateWithValue(m.now())
	e.SetMessageIDWithValue(messageID(msg.ID) + "@" + m.idDomain)
	// RFC 3834: no vacation or out-of-office replies to this message;
	// X-Auto-Response-Suppress says the same to Microsoft Exchange.
	e.SetGenHeader("Auto-Submitted", "auto-generated")
	e.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	switch {
	case msg.HTML == "":
		e.SetBodyString(gomail.TypeTextPlain, msg.Text)
	case msg.Text == "":
		e.SetBodyString(gomail.TypeTextHTML, msg.HTML)
	default:
		e.SetBodyString(gomail.TypeTextPlain, msg.Text)
		e.AddAlternativeString(gomail.TypeTextHTML, msg.HTML)
	}
	return e, nil
}

// messageID returns the left-hand side of the Message-ID of the message
// with the given ID: the ID itself when it is made of letters, digits,
// '.', '-' and '_' (as reset's hex IDs are), and otherwise a hash of it, so
// that every attempt of one message carries the same Message-ID.
func messageID(id string) string {
	if id != "" && len(id) <= 128 && validIDPart(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16])
}

// validIDPart reports whether s is a dot-atom made of letters, digits,
// '-' and '_'.
func validIDPart(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}
