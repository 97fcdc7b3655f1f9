package smtpmailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/wneessen/go-mail/smtp"
)

// conn is one SMTP session, idle in the pool or used by one Send.
type conn struct {
	c        *smtp.Client
	raw      net.Conn // the TCP connection under c, closed to interrupt c
	lastUsed time.Time
}

// close drops the connection without QUIT.
func (c *conn) close() {
	_ = c.c.Close()
	_ = c.raw.Close()
}

// quit ends the session politely, then closes the connection.
func (c *conn) quit(timeout time.Duration) {
	if c.c.UpdateDeadline(timeout) == nil {
		_ = c.c.Quit()
	}
	c.close()
}

// result is the outcome of one attempt.
type result struct {
	err    error
	reused bool // the attempt used a pooled connection
	// unsure means that the data was sent but no reply to its end came:
	// the server may have accepted the message.
	unsure bool
	// stale means that the session failed before the server took any
	// responsibility for the message (a broken connection or 421 before
	// the end of the data): a fresh connection may succeed at once.
	stale bool
	keep  bool // the session is clean and may be reused
}

// dialState carries, through the context of a dial, the send's context
// (whose end must interrupt the session) and the TCP connection made.
type dialState struct {
	ctx  context.Context
	raw  net.Conn
	stop func() bool // stops the interruption
}

type dialKey struct{}

// dialContext is the go-mail client's dialer: TCP, then for TLSImplicit a
// TLS handshake. It records the TCP connection in the dialState and
// closes it if the send's context ends while go-mail reads the greeting,
// says EHLO or STARTTLS.
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

// dial opens a session: connection, greeting, EHLO, STARTTLS as the mode
// requires, and AUTH. Its error is classified.
func (m *Mailer) dial(ctx context.Context) (*conn, error) {
	st := &dialState{ctx: ctx}
	client, err := m.client.DialToSMTPClientWithContext(context.WithValue(ctx, dialKey{}, st))
	if err != nil {
		err = classify("connect", "", err)
	} else if err = m.authenticate(client); err != nil {
		err = classify("AUTH", "", err)
	}
	interrupted := st.stop != nil && !st.stop()
	if err == nil && interrupted {
		err = transientError{context.Cause(ctx)}
	}
	if err != nil {
		// go-mail leaves the connection open when EHLO or STARTTLS fails.
		if st.raw != nil {
			_ = st.raw.Close()
		}
		return nil, err
	}
	return &conn{c: client, raw: st.raw}, nil
}

// authenticate runs SMTP AUTH with the configured or chosen mechanism.
func (m *Mailer) authenticate(c *smtp.Client) error {
	if m.user == "" {
		return nil
	}
	ok, list := c.Extension("AUTH")
	offered := strings.Fields(strings.ToUpper(list))
	if !ok || len(offered) == 0 {
		return errors.New("the server offers no AUTH")
	}
	mech := m.auth
	if mech == AuthAuto {
		for _, a := range autoOrder {
			if slices.Contains(offered, string(a)) {
				mech = a
				break
			}
		}
		if mech == AuthAuto {
			return fmt.Errorf("the server offers AUTH %s, none of %v", list, autoOrder)
		}
	} else if !slices.Contains(offered, string(mech)) {
		return fmt.Errorf("the server does not offer AUTH %s (it offers %s)", mech, list)
	}
	var a smtp.Auth
	switch mech {
	case AuthPlain:
		a = smtp.PlainAuth("", m.user, m.pass, m.host, false)
	case AuthLogin:
		a = smtp.LoginAuth(m.user, m.pass, m.host, false)
	case AuthCRAMMD5:
		a = smtp.CRAMMD5Auth(m.user, m.pass)
	case AuthSCRAMSHA1:
		a = smtp.ScramSHA1Auth(m.user, m.pass)
	case AuthSCRAMSHA256:
		a = smtp.ScramSHA256Auth(m.user, m.pass)
	case AuthXOAUTH2:
		a = smtp.XOAuth2Auth(m.user, m.pass)
	case AuthSCRAMSHA1Plus, AuthSCRAMSHA256Plus:
		state, err := c.GetTLSConnectionState()
		if err != nil {
			return fmt.Errorf("AUTH %s needs TLS: %w", mech, err)
		}
		if mech == AuthSCRAMSHA1Plus {
			a = smtp.ScramSHA1PlusAuth(m.user, m.pass, state)
		} else {
			a = smtp.ScramSHA256PlusAuth(m.user, m.pass, state)
		}
	}
	if err := c.UpdateDeadline(m.timeout); err != nil {
		return err
	}
	return c.Auth(a)
}

// attempt sends data to one recipient once, over a pooled session or a
// new one; a pooled session found broken before the server took the
// message is replaced once, without counting as an attempt.
func (m *Mailer) attempt(ctx context.Context, e envelope) result {
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return result{err: transientError{context.Cause(ctx)}}
	}
	defer func() { <-m.sem }()

	c, closed := m.take()
	if closed {
		return result{err: ErrClosed}
	}
	reused := c != nil
	if c == nil {
		var err error
		if c, err = m.dial(ctx); err != nil {
			return result{err: err}
		}
	}
	res := m.transact(ctx, c, e)
	if res.err != nil && res.stale && reused && ctx.Err() == nil {
		c.close()
		var err error
		if c, err = m.dial(ctx); err != nil {
			return result{err: err, reused: true}
		}
		res = m.transact(ctx, c, e)
	}
	res.reused = reused
	if res.keep {
		m.put(c)
	} else {
		c.close()
	}
	return res
}

// take returns an idle session, most recently used first, closing those
// idle too long; nil if there is none. closed reports a closed Mailer.
func (m *Mailer) take() (c *conn, closed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, true
	}
	now := m.now()
	for len(m.idle) > 0 {
		c = m.idle[len(m.idle)-1]
		m.idle = m.idle[:len(m.idle)-1]
		if now.Sub(c.lastUsed) < m.idleTimeout {
			return c, false
		}
		c.close()
	}
	return nil, false
}

// put returns a clean session to the pool, or ends it if the Mailer is
// closed.
func (m *Mailer) put(c *conn) {
	c.lastUsed = m.now()
	m.mu.Lock()
	if !m.closed {
		m.idle = append(m.idle, c)
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	c.quit(m.timeout)
}

// envelope is one rendered message and its recipient.
type envelope struct {
	to   string // the recipient's address, to be kept out of errors
	rcpt string // the recipient for RCPT TO, as "<addr>"
	data []byte // the message, sent after DATA
}

// transact runs one mail transaction on c: MAIL FROM, RCPT TO, DATA, the
// data and its end. The end of ctx closes the connection at once.
func (m *Mailer) transact(ctx context.Context, c *conn, e envelope) (res result) {
	stop := context.AfterFunc(ctx, func() { _ = c.raw.Close() })
	defer func() {
		if !stop() { // ctx ended: the connection is closed or closing
			res.keep = false
		}
	}()
	// refused handles a failed command before the data was sent.
	refused := func(cmd string, err error) result {
		var te *textproto.Error
		if !errors.As(err, &te) { // no reply: the session is broken
			return result{err: classify(cmd, e.to, err), stale: true}
		}
		res := result{err: classify(cmd, e.to, err), stale: te.Code == 421}
		// A refused command leaves the session usable after RSET, unless
		// the server is closing it (421).
		if te.Code != 421 && c.c.UpdateDeadline(m.timeout) == nil && c.c.Reset() == nil {
			res.keep = true
		}
		return res
	}
	if err := c.c.UpdateDeadline(m.timeout); err != nil {
		return result{err: transientError{err}, stale: true}
	}
	if err := c.c.Mail(m.envFrom); err != nil {
		return refused("MAIL", err)
	}
	if err := c.c.UpdateDeadline(m.timeout); err != nil {
		return result{err: transientError{err}, stale: true}
	}
	if err := c.c.Rcpt(e.rcpt); err != nil {
		return refused("RCPT", err)
	}
	if err := c.c.UpdateDeadline(m.timeout); err != nil {
		return result{err: transientError{err}, stale: true}
	}
	w, err := c.c.Data()
	if err != nil {
		return refused("DATA", err)
	}
	if err := c.c.UpdateDeadline(m.timeout); err != nil {
		return result{err: transientError{err}}
	}
	if _, err := w.Write(e.data); err != nil {
		// The end of the data was never sent: nothing was delivered.
		return result{err: transientError{fmt.Errorf("sending the message: %w", err)}}
	}
	if err := w.Close(); err != nil {
		var te *textproto.Error
		if errors.As(err, &te) {
			// A refusal of the message itself; the session stays clean.
			return result{err: classify("end of data", e.to, err), keep: te.Code != 421}
		}
		return result{err: transientError{fmt.Errorf("no reply to the end of the message: %w", err)}, unsure: true}
	}
	return result{keep: true}
}
