package smtpmailer

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/textproto"
	"strconv"
	"strings"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// session is one SMTP session, used by one Send.
type session struct {
	c    *smtp.Client
	raw  net.Conn    // the TCP connection under c, closed to interrupt c
	stop func() bool // stops closing raw when the Send's context ends
}

// close ends the session politely (QUIT, bounded by the timeout), then
// closes the connection.
func (s *session) close(m *Mailer) {
	if s.c.UpdateDeadline(m.timeout) == nil {
		_ = m.client.CloseWithSMTPClient(s.c)
	}
	if s.stop != nil {
		s.stop()
	}
	_ = s.raw.Close()
}

// dialState carries, through the context of a dial, the Send's context
// (whose end must interrupt the session) and the TCP connection made.
type dialState struct {
	ctx  context.Context
	raw  net.Conn
	stop func() bool
}

type dialKey struct{}

// dialContext is the go-mail client's dialer: TCP, then for TLSImplicit a
// TLS handshake. It records the TCP connection in the dialState and
// closes it as soon as the Send's context ends, which interrupts whatever
// go-mail is doing on it.
func (m *Mailer) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if st, ok := ctx.Value(dialKey{}).(*dialState); ok {
		st.raw = raw
		st.stop = context.AfterFunc(st.ctx, func() { _ = raw.Close() })
	}
	if m.mode != TLSImplicit {
		return raw, nil
	}
	tc := tls.Client(raw, m.tlsConfig)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, err
	}
	return tc, nil
}

// dial opens a session with go-mail: connection, greeting, EHLO, STARTTLS
// as the mode requires, and AUTH. Its error is classified.
func (m *Mailer) dial(ctx context.Context) (*session, error) {
	st := &dialState{ctx: ctx}
	c, err := m.client.DialToSMTPClientWithContext(context.WithValue(ctx, dialKey{}, st))
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		// go-mail leaves the connection open when EHLO, STARTTLS or AUTH
		// fails.
		if st.stop != nil {
			st.stop()
		}
		if st.raw != nil {
			_ = st.raw.Close()
		}
		return nil, m.classifyConnect(ctx, err)
	}
	return &session{c: c, raw: st.raw, stop: st.stop}, nil
}

// send makes one mail transaction for gm in a new session.
func (m *Mailer) send(ctx context.Context, gm *gomail.Msg) error {
	s, err := m.dial(ctx)
	if err != nil {
		return err
	}
	defer s.close(m)
	err = m.client.SendWithSMTPClient(s.c, gm)
	if err == nil || gm.IsDelivered() {
		// Delivered: the server accepted the end of the data.
		return nil
	}
	return m.classifySend(ctx, err)
}

// The commands a refusal names.
const (
	cmdConnect = "connect" // the greeting, EHLO or STARTTLS
	cmdAuth    = "AUTH"
	cmdMail    = "MAIL"
	cmdRcpt    = "RCPT"
	cmdData    = "DATA"
	cmdEnd     = "end of data"
)

// classifyConnect classifies a failure to open a session. A reply
// (greeting, EHLO, STARTTLS or AUTH refused) becomes an *Error without
// text: the AUTH exchange is where credentials fly. Anything else is
// transient, its text redacted.
func (m *Mailer) classifyConnect(ctx context.Context, err error) error {
	cmd := cmdConnect
	// go-mail's wording for a refused AUTH (v0.8.1).
	if strings.Contains(err.Error(), "SMTP AUTH failed") {
		cmd = cmdAuth
	}
	if code, ok := replyCode(err); ok {
		return &Error{Command: cmd, Code: code, Enhanced: enhancedIn(err.Error())}
	}
	if m.mode == TLSStartTLS && strings.Contains(err.Error(), "does not support STARTTLS") {
		return m.failed(ctx, errNoStartTLS, false)
	}
	return m.failed(ctx, err, false)
}

// errNoStartTLS is the failure of TLSStartTLS against a server that does
// not offer STARTTLS, with what to do about it.
var errNoStartTLS = errors.New("the server offers no STARTTLS, and TLSStartTLS (smtp:// or smtp+starttls://) requires it; " +
	"for a local development server without TLS, such as Mailpit or MailHog, use smtp+plain://localhost:PORT (TLSNone, loopback only)")

// classifySend classifies a failed mail transaction from go-mail's
// *SendError: its reason says which step failed, its code whether the
// server replied.
func (m *Mailer) classifySend(ctx context.Context, err error) error {
	var se *gomail.SendError
	if !errors.As(err, &se) {
		return m.failed(ctx, err, false)
	}
	cmd := ""
	switch se.Reason {
	case gomail.ErrSMTPMailFrom:
		cmd = cmdMail
	case gomail.ErrSMTPRcptTo:
		cmd = cmdRcpt
	case gomail.ErrSMTPData:
		cmd = cmdData
	case gomail.ErrSMTPDataClose:
		cmd = cmdEnd
	case gomail.ErrGetSender, gomail.ErrGetRcpts, gomail.ErrNoUnencoded:
		// The message cannot be sent as it is.
		return &Error{Command: cmdMail, Code: 554, Text: "the message cannot be sent: " + se.Reason.String()}
	}
	code := se.ErrorCode()
	if cmd != "" && code >= 400 && code <= 599 {
		enhanced := se.EnhancedStatusCode()
		text := m.replyText(se)
		if enhanced == "" {
			enhanced = enhancedIn(text)
		}
		return &Error{Command: cmd, Code: code, Enhanced: enhanced, Text: text}
	}
	// No reply. After the end of the data the server may have taken the
	// message; before it (the content half written, a broken connection)
	// nothing was delivered.
	return m.failed(ctx, se, se.Reason == gomail.ErrSMTPDataClose)
}

// replyText is the text of the server's reply in se, without its code,
// redacted: go-mail's error text is "<reason>: <code> "<text>", affected
// recipient(s): <addresses>, affected message ID: <id>".
func (m *Mailer) replyText(se *gomail.SendError) string {
	t := strings.TrimPrefix(se.Error(), se.Reason.String()+":")
	if i := strings.Index(t, ", affected recipient(s): "); i >= 0 {
		t = t[:i]
	} else if i := strings.Index(t, ", affected message ID: "); i >= 0 {
		t = t[:i]
	}
	t = strings.TrimSpace(t)
	if len(t) >= 3 && t[0] >= '2' && t[0] <= '5' && strings.Trim(t[:3], "0123456789") == "" {
		t = strings.TrimLeft(t[3:], " -")
	}
	if u, err := strconv.Unquote(t); err == nil {
		t = u // go-mail quotes the reply's text (v0.8.1: 550 "5.1.1 ...")
	}
	return redactText(t, m.user, m.pass)
}

// replyCode returns the SMTP reply code in err, if err holds a reply.
func replyCode(err error) (int, bool) {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 400 && te.Code <= 599 {
		return te.Code, true
	}
	return 0, false
}

// failed returns the error for a failure that was not a reply: its text
// redacted, unknown when the message may have been delivered, transient
// otherwise, and wrapping ctx.Err() when ctx ended.
func (m *Mailer) failed(ctx context.Context, err error, unknown bool) error {
	f := &failure{text: redactText(err.Error(), m.user, m.pass), unknown: unknown}
	if err == errNoStartTLS {
		f.text = err.Error()
	}
	if ctx.Err() != nil {
		f.ctxErr = context.Cause(ctx)
	}
	var ne net.Error
	f.timeout = errors.As(err, &ne) && ne.Timeout()
	return f
}
