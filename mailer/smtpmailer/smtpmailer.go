package smtpmailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/passreset/passreset/reset"
)

// Defaults for the zero fields of [Options].
const (
	DefaultImplicitTLSPort = 465 // the port of TLSImplicit (RFC 8314 submissions)
	DefaultStartTLSPort    = 587 // the port of TLSStartTLS (message submission)
	DefaultPlainPort       = 25  // the port of TLSNone
	DefaultTimeout         = 30 * time.Second
)

// TLSMode says how a connection is protected.
type TLSMode int

const (
	// TLSDefault, the zero value, means TLSImplicit when Port is 465 and
	// TLSStartTLS otherwise.
	TLSDefault TLSMode = iota
	// TLSImplicit speaks TLS from the first byte ("SMTPS", RFC 8314),
	// usually on port 465.
	TLSImplicit
	// TLSStartTLS connects in plain text and requires STARTTLS before
	// anything else is sent; a server that does not offer it is refused,
	// with an error that says to use TLSNone (smtp+plain://) for a local
	// development server. Usually port 587.
	TLSStartTLS
	// TLSNone sends everything, credentials and reset links included, in
	// plain text. New accepts it only for a loopback host (localhost,
	// 127.0.0.0/8, ::1), such as a local relay or a development server,
	// unless Options.AllowInsecureRemote is set.
	TLSNone
)

// String returns the mode's name: "default", "implicit", "starttls" or
// "none".
func (m TLSMode) String() string {
	switch m {
	case TLSDefault:
		return "default"
	case TLSImplicit:
		return "implicit"
	case TLSStartTLS:
		return "starttls"
	case TLSNone:
		return "none"
	}
	return fmt.Sprintf("TLSMode(%d)", int(m))
}

// Auth is an SMTP AUTH mechanism, named as in the EHLO reply.
type Auth string

// The mechanisms of github.com/wneessen/go-mail that a Mailer offers.
// PLAIN and LOGIN refuse to send the password over a connection without
// TLS unless the host is loopback.
const (
	// AuthAuto, the zero value, lets go-mail choose the strongest
	// mechanism the server offers (its SMTPAuthAutoDiscover): SCRAM with
	// channel binding, SCRAM, NTLM, CRAM-MD5, then PLAIN and LOGIN, which
	// it chooses only over TLS. Over a plain loopback connection name
	// AuthPlain to send the password in the clear.
	AuthAuto            Auth = ""
	AuthPlain           Auth = "PLAIN"
	AuthLogin           Auth = "LOGIN"
	AuthCRAMMD5         Auth = "CRAM-MD5"
	AuthSCRAMSHA1       Auth = "SCRAM-SHA-1"
	AuthSCRAMSHA256     Auth = "SCRAM-SHA-256"
	AuthSCRAMSHA1Plus   Auth = "SCRAM-SHA-1-PLUS"   // channel binding; TLS only
	AuthSCRAMSHA256Plus Auth = "SCRAM-SHA-256-PLUS" // channel binding; TLS only
	AuthXOAUTH2         Auth = "XOAUTH2"            // Password holds the OAuth 2 access token
)

// goMailAuth returns go-mail's type for a.
func goMailAuth(a Auth) gomail.SMTPAuthType {
	switch a {
	case AuthPlain:
		return gomail.SMTPAuthPlain
	case AuthLogin:
		return gomail.SMTPAuthLogin
	case AuthCRAMMD5:
		return gomail.SMTPAuthCramMD5
	case AuthSCRAMSHA1:
		return gomail.SMTPAuthSCRAMSHA1
	case AuthSCRAMSHA256:
		return gomail.SMTPAuthSCRAMSHA256
	case AuthSCRAMSHA1Plus:
		return gomail.SMTPAuthSCRAMSHA1PLUS
	case AuthSCRAMSHA256Plus:
		return gomail.SMTPAuthSCRAMSHA256PLUS
	case AuthXOAUTH2:
		return gomail.SMTPAuthXOAUTH2
	}
	return gomail.SMTPAuthAutoDiscover
}

var knownAuth = []Auth{AuthPlain, AuthLogin, AuthCRAMMD5, AuthSCRAMSHA1, AuthSCRAMSHA256,
	AuthSCRAMSHA1Plus, AuthSCRAMSHA256Plus, AuthXOAUTH2}

// Options configures a [Mailer]. Host and From are required; for every
// other field the zero value means the default its comment names.
type Options struct {
	// Host is the SMTP server's name or IP address, without a port.
	// Required. The server's certificate must be valid for it.
	Host string

	// Port is the server's TCP port. Default by TLS mode:
	// [DefaultImplicitTLSPort] (465) for TLSImplicit,
	// [DefaultStartTLSPort] (587) for TLSStartTLS and TLSDefault,
	// [DefaultPlainPort] (25) for TLSNone.
	Port int

	// TLS is how connections are protected. Default TLSDefault: implicit
	// TLS on port 465, STARTTLS required on any other.
	TLS TLSMode

	// AllowInsecureRemote lets TLS be TLSNone for a host that is not
	// loopback. Without TLS the password and every reset link cross the
	// network readable by anyone on the path: set it only for a relay on a
	// network you trust. Default false.
	AllowInsecureRemote bool

	// TLSConfig is the TLS configuration for TLSImplicit and TLSStartTLS,
	// for example with RootCAs holding a private CA. The Mailer uses a
	// clone. Default: the system's roots, ServerName Host, at least TLS 1.2
	// (a ServerName or MinVersion left zero here get those defaults too).
	TLSConfig *tls.Config

	// Username and Password are the SMTP AUTH credentials. With an empty
	// Username the Mailer does not authenticate. They are never logged or
	// put in an error.
	Username string
	Password string

	// Auth is the AUTH mechanism to use when Username is set. Default
	// AuthAuto. A server that does not offer it fails the connection (a
	// transient error).
	Auth Auth

	// From is the sender: "addr@example.com" or "Name <addr@example.com>"
	// (a name in any script is encoded per RFC 2047). Required. Its
	// address is also the envelope sender (MAIL FROM), where bounces go.
	From string

	// ReplyTo, when set, is the Reply-To address, in the same forms as From.
	ReplyTo string

	// MessageIDDomain is the right-hand side of the Message-ID
	// "<message ID@domain>". Default: the domain of From.
	MessageIDDomain string

	// LocalName is the name the Mailer gives in EHLO. Default: the
	// machine's host name.
	LocalName string

	// Timeout bounds connecting (TCP, TLS, the greeting, EHLO, STARTTLS
	// and AUTH) and each command's reply, the message's transfer
	// included. Default [DefaultTimeout], 30 seconds. The context passed
	// to Send bounds the whole Send.
	Timeout time.Duration

	// Logger receives a Debug record for each failed and each accepted
	// message, with the message's ID and kind, and for a refusal the
	// refused command and reply code; never the credentials, the
	// recipient, the link or the token. The failure itself is the
	// caller's to log (the queue logs it once). Default: no logging.
	Logger *slog.Logger
}

// Mailer sends messages over SMTP with go-mail's client: each Send opens
// a connection (TCP, TLS, EHLO, AUTH), makes one mail transaction and
// closes it. Create one with [New] or [NewFromURL]. It is safe for
// concurrent use.
type Mailer struct {
	client     *gomail.Client // shared: each Send dials its own session
	host       string
	mode       TLSMode
	tlsConfig  *tls.Config
	user, pass string
	from       *mail.Address
	replyTo    *mail.Address
	idDomain   string
	timeout    time.Duration
	log        *slog.Logger
	now        func() time.Time
	closed     atomic.Bool
}

var _ reset.Mailer = (*Mailer)(nil)

// New returns a Mailer configured by opts. It checks opts and reports
// every missing or invalid field at once. It starts no goroutine and
// opens no connection: the first Send connects.
func New(opts Options) (*Mailer, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	host := opts.Host
	switch {
	case host == "":
		bad("Host is required")
	case net.ParseIP(host) == nil && strings.ContainsAny(host, ":/[]@ \t\r\n"):
		bad("Host must be a host name or IP address, without a port (set Port)")
	}
	mode := opts.TLS
	if mode == TLSDefault {
		mode = TLSStartTLS
		if opts.Port == DefaultImplicitTLSPort {
			mode = TLSImplicit
		}
	}
	port := opts.Port
	switch mode {
	case TLSImplicit:
		port = orDefault(port, DefaultImplicitTLSPort)
	case TLSStartTLS:
		port = orDefault(port, DefaultStartTLSPort)
	case TLSNone:
		port = orDefault(port, DefaultPlainPort)
		if host != "" && !isLoopback(host) && !opts.AllowInsecureRemote {
			bad("TLS is TLSNone (smtp+plain://) but Host is not loopback: credentials and reset links would cross the network in plain text (set AllowInsecureRemote to accept that)")
		}
		if opts.TLSConfig != nil {
			bad("TLSConfig is set but TLS is TLSNone")
		}
	default:
		bad("TLS %v is not a TLSMode", opts.TLS)
	}
	if port < 1 || port > 65535 {
		bad("Port %d is out of range", opts.Port)
	}
	if opts.Username == "" && opts.Password != "" {
		bad("Password is set without a Username")
	}
	if strings.ContainsAny(opts.Username+opts.Password, "\r\n") {
		bad("Username or Password contains a line break")
	}
	if opts.Auth != AuthAuto && !knownAuthName(opts.Auth) {
		bad("Auth %q is not one of %v", opts.Auth, knownAuth)
	}
	if opts.Auth != AuthAuto && opts.Username == "" {
		bad("Auth is %s but Username is empty", opts.Auth)
	}
	var from, replyTo *mail.Address
	if opts.From == "" {
		bad("From is required")
	} else if a, err := parseAddress(opts.From); err != nil {
		bad("From %v", err)
	} else {
		from = a
	}
	if opts.ReplyTo != "" {
		a, err := parseAddress(opts.ReplyTo)
		if err != nil {
			bad("ReplyTo %v", err)
		}
		replyTo = a
	}
	idDomain := opts.MessageIDDomain
	if idDomain == "" && from != nil {
		idDomain = from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	}
	if idDomain != "" && !validIDPart(idDomain) {
		bad("MessageIDDomain %q may hold only letters, digits, '.', '-' and '_'", idDomain)
	}
	if strings.ContainsAny(opts.LocalName, " \t\r\n") {
		bad("LocalName %q contains white space", opts.LocalName)
	}
	if opts.Timeout < 0 {
		bad("Timeout is negative")
	}
	if len(problems) > 0 {
		return nil, errors.New("smtpmailer: invalid options: " + strings.Join(problems, "; "))
	}

	var tlsConfig *tls.Config
	if mode != TLSNone {
		tlsConfig = &tls.Config{}
		if opts.TLSConfig != nil {
			tlsConfig = opts.TLSConfig.Clone()
		}
		if tlsConfig.ServerName == "" {
			tlsConfig.ServerName = host
		}
		if tlsConfig.MinVersion == 0 {
			tlsConfig.MinVersion = tls.VersionTLS12
		}
	}
	m := &Mailer{
		host:      host,
		mode:      mode,
		tlsConfig: tlsConfig,
		user:      opts.Username,
		pass:      opts.Password,
		from:      from,
		replyTo:   replyTo,
		idDomain:  idDomain,
		timeout:   orDefault(opts.Timeout, DefaultTimeout),
		log:       opts.Logger,
		now:       time.Now,
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	client, err := m.newClient(port, opts.LocalName, opts.Auth)
	if err != nil {
		// go-mail's option errors name the option, never a credential.
		return nil, fmt.Errorf("smtpmailer: %w", err)
	}
	m.client = client
	return m, nil
}

// newClient configures the go-mail client: the TLS policy, AUTH with the
// mechanism asked for (or go-mail's discovery), and the dialer that ties
// each session to its Send's context. Without RSET and NOOP: each session
// carries one transaction on a fresh connection.
func (m *Mailer) newClient(port int, localName string, auth Auth) (*gomail.Client, error) {
	var policy gomail.TLSPolicy
	switch m.mode {
	case TLSStartTLS:
		policy = gomail.TLSMandatory
	case TLSImplicit:
		// The dialer does TLS. With an opportunistic policy go-mail sees
		// no STARTTLS on the TLS connection, reads its state, and counts
		// the session as encrypted, which AUTH discovery needs.
		policy = gomail.TLSOpportunistic
	default:
		policy = gomail.NoTLS
	}
	opts := []gomail.Option{
		gomail.WithPort(port),
		gomail.WithTimeout(m.timeout),
		gomail.WithTLSPolicy(policy),
		gomail.WithDialContextFunc(m.dialContext),
		gomail.WithoutNoop(),
		gomail.WithoutRset(),
	}
	if m.tlsConfig != nil {
		opts = append(opts, gomail.WithTLSConfig(m.tlsConfig))
	}
	if localName != "" {
		opts = append(opts, gomail.WithHELO(localName))
	}
	if m.user != "" {
		opts = append(opts, gomail.WithSMTPAuth(goMailAuth(auth)),
			gomail.WithUsername(m.user), gomail.WithPassword(m.pass))
	}
	return gomail.NewClient(m.host, opts...)
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func knownAuthName(a Auth) bool { return slices.Contains(knownAuth, a) }

// isLoopback reports whether host names this machine without DNS:
// "localhost" or a loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseAddress parses one address with net/mail and refuses line breaks.
func parseAddress(s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("contains a line break")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		// net/mail's errors quote the input: say what is wrong instead.
		return nil, errors.New("is not an address like a@example.com or Name <a@example.com>")
	}
	return a, nil
}

// Send delivers msg to msg.To in one SMTP session: it connects, makes one
// mail transaction and closes the connection. It returns nil when the
// server accepted the message, and otherwise an error classified as the
// package documentation says: matching [ErrPermanent] (and
// reset.ErrPermanent) for a 5xx reply or a message it cannot send,
// reset.ErrOutcomeUnknown when the message was sent but the reply to its
// end never came, [ErrTransient] when it is known not to have been
// delivered, or [ErrClosed] after Close. When ctx ends the connection is
// closed at once and the error also wraps ctx.Err().
func (m *Mailer) Send(ctx context.Context, msg reset.Message) error {
	key := msg.IdempotencyKey()
	if m.closed.Load() {
		return fmt.Errorf("smtpmailer: send %s: %w", key, ErrClosed)
	}
	gm, err := m.render(msg)
	if err != nil {
		return fmt.Errorf("smtpmailer: send %s: %s (%w)", key, err, ErrPermanent)
	}
	log := m.log.With("message_id", msg.ID, "kind", msg.Kind)
	if err := m.send(ctx, gm); err != nil {
		attrs := []any{"unknown_outcome", errors.Is(err, reset.ErrOutcomeUnknown)}
		var se *Error
		if errors.As(err, &se) {
			attrs = append(attrs, "command", se.Command, "code", se.Code, "enhanced", se.Enhanced)
		} else {
			attrs = append(attrs, "err", err.Error())
		}
		log.DebugContext(ctx, "smtp send failed", attrs...)
		return fmt.Errorf("smtpmailer: send %s: %w", key, err)
	}
	log.DebugContext(ctx, "smtp server accepted the message")
	return nil
}

// Check connects to the server as Send does (TCP, TLS, EHLO, STARTTLS,
// AUTH) and says goodbye without sending anything, so that a program can
// find a wrong host, port, TLS mode or password at start instead of at
// the first reset. Its errors are classified as Send's.
func (m *Mailer) Check(ctx context.Context) error {
	c, err := m.dial(ctx)
	if err != nil {
		return fmt.Errorf("smtpmailer: check: %w", err)
	}
	c.close(m)
	return nil
}

// Close makes every later Send fail with [ErrClosed]. It holds nothing
// open: each Send closes its own connection. It is safe to call more than
// once; it always returns nil.
func (m *Mailer) Close() error {
	m.closed.Store(true)
	return nil
}
