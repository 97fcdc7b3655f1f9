package smtpmailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync"
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
	DefaultSendTimeout     = 2 * time.Minute
	DefaultMaxConns        = 4
	DefaultIdleTimeout     = 30 * time.Second
	DefaultMaxAttempts     = 3
	DefaultBackoffBase     = 500 * time.Millisecond
	DefaultBackoffMax      = 10 * time.Second
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
	// anything else is sent; a server that does not offer it is refused.
	// Usually port 587.
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
	// AuthAuto, the zero value, picks the first the server offers of
	// SCRAM-SHA-256, SCRAM-SHA-1, PLAIN, LOGIN and CRAM-MD5.
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

// autoOrder is the preference of AuthAuto.
var autoOrder = []Auth{AuthSCRAMSHA256, AuthSCRAMSHA1, AuthPlain, AuthLogin, AuthCRAMMD5}

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
	// included. Default [DefaultTimeout], 30 seconds.
	Timeout time.Duration

	// SendTimeout bounds one Send in total: waiting for a connection, all
	// attempts and the waits between them. Default [DefaultSendTimeout],
	// 2 minutes. The context passed to Send may end it sooner:
	// reset.Service bounds each delivery by its Config.SendTimeout
	// (30 seconds by default).
	SendTimeout time.Duration

	// MaxConns bounds the connections the Mailer holds open at once,
	// busy and idle. A Send that finds all of them busy waits for one.
	// Default [DefaultMaxConns], 4. Keep it within the server's limit of
	// concurrent connections per client.
	MaxConns int

	// IdleTimeout is how long an idle connection is kept for reuse;
	// after it the next Send closes it and connects afresh, since servers
	// drop idle clients. Default [DefaultIdleTimeout], 30 seconds.
	IdleTimeout time.Duration

	// MaxAttempts bounds the attempts of one Send, the first included.
	// Default [DefaultMaxAttempts], 3. 1 means no retries: enough behind a
	// durable outbox, which retries on its own. A failure that may have
	// delivered the message (no reply to the end of the data) is never
	// retried by Send; see the package documentation.
	MaxAttempts int

	// BackoffBase and BackoffMax shape the wait before each retry: a
	// random duration between 0 and min(BackoffMax, BackoffBase·2^(n-1))
	// before retry n ("full jitter"). Defaults [DefaultBackoffBase]
	// (500 ms) and [DefaultBackoffMax] (10 s).
	BackoffBase time.Duration
	BackoffMax  time.Duration

	// Logger receives a Warn record for each failed attempt and a Debug
	// record for each accepted message, with the message's ID and kind,
	// the attempt number, and the refused command and reply code; never
	// the credentials, the recipient, the link or the token. Default: no
	// logging.
	Logger *slog.Logger
}

// Mailer sends messages over SMTP through a bounded pool of reused
// connections. Create one with [New] or [NewFromURL]; call [Mailer.Close]
// when done. It is safe for concurrent use.
type Mailer struct {
	client      *gomail.Client // dials, says EHLO and STARTTLS; never holds a connection
	host        string
	mode        TLSMode
	tlsConfig   *tls.Config
	user, pass  string
	auth        Auth
	from        *mail.Address
	envFrom     string // from's address as MAIL FROM takes it
	replyTo     *mail.Address
	idDomain    string
	timeout     time.Duration
	sendTimeout time.Duration
	idleTimeout time.Duration
	maxAttempts int
	backoffBase time.Duration
	backoffMax  time.Duration
	log         *slog.Logger
	now         func() time.Time

	sem    chan struct{} // one token per Send holding or dialling a connection
	mu     sync.Mutex
	idle   []*conn // most recently used last
	closed bool
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
		bad("Host %q must be a host name or IP address, without a port (set Port)", host)
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
			bad("TLS is TLSNone but Host %q is not loopback: credentials and reset links would cross the network in plain text (set AllowInsecureRemote to accept that)", host)
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
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Timeout", opts.Timeout}, {"SendTimeout", opts.SendTimeout}, {"IdleTimeout", opts.IdleTimeout},
		{"BackoffBase", opts.BackoffBase}, {"BackoffMax", opts.BackoffMax}} {
		if d.v < 0 {
			bad("%s is negative", d.name)
		}
	}
	if opts.MaxConns < 0 {
		bad("MaxConns is negative")
	}
	if opts.MaxAttempts < 0 {
		bad("MaxAttempts is negative")
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
		host:        host,
		mode:        mode,
		tlsConfig:   tlsConfig,
		user:        opts.Username,
		pass:        opts.Password,
		auth:        opts.Auth,
		from:        from,
		envFrom:     angle(from.Address),
		replyTo:     replyTo,
		idDomain:    idDomain,
		timeout:     orDefault(opts.Timeout, DefaultTimeout),
		sendTimeout: orDefault(opts.SendTimeout, DefaultSendTimeout),
		idleTimeout: orDefault(opts.IdleTimeout, DefaultIdleTimeout),
		maxAttempts: orDefault(opts.MaxAttempts, DefaultMaxAttempts),
		backoffBase: orDefault(opts.BackoffBase, DefaultBackoffBase),
		backoffMax:  orDefault(opts.BackoffMax, DefaultBackoffMax),
		log:         opts.Logger,
		now:         time.Now,
		sem:         make(chan struct{}, orDefault(opts.MaxConns, DefaultMaxConns)),
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	client, err := m.newClient(port, opts.LocalName)
	if err != nil {
		return nil, fmt.Errorf("smtpmailer: %w", err)
	}
	m.client = client
	return m, nil
}

// newClient configures the go-mail client that opens connections. It
// never authenticates (the Mailer does, after choosing the mechanism) and
// never holds a connection itself, so concurrent dials share it safely.
func (m *Mailer) newClient(port int, localName string) (*gomail.Client, error) {
	policy := gomail.NoTLS // TLSNone, and TLSImplicit, whose dial does TLS
	if m.mode == TLSStartTLS {
		policy = gomail.TLSMandatory
	}
	opts := []gomail.Option{
		gomail.WithPort(port),
		gomail.WithTimeout(m.timeout),
		gomail.WithTLSPolicy(policy),
		gomail.WithDialContextFunc(m.dialContext),
	}
	if m.tlsConfig != nil {
		opts = append(opts, gomail.WithTLSConfig(m.tlsConfig))
	}
	if localName != "" {
		opts = append(opts, gomail.WithHELO(localName))
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
		return nil, fmt.Errorf("%q is not an address: %v", s, err)
	}
	return a, nil
}

// Send delivers msg to msg.To over a pooled connection. It retries
// transient failures that cannot have delivered the message, with backoff,
// and returns nil when the server accepted the message, an error matching
// [ErrPermanent] for a 5xx reply or a message it cannot send, one matching
// [ErrTransient] when it stops trying, [ErrClosed] after Close, or, as
// soon as ctx ends, an error wrapping ctx.Err().
func (m *Mailer) Send(ctx context.Context, msg reset.Message) error {
	key := msg.IdempotencyKey()
	env, err := m.render(msg)
	if err != nil {
		return fmt.Errorf("smtpmailer: send %s: %s (%w)", key, err, ErrPermanent)
	}
	ctx, cancel := context.WithTimeout(ctx, m.sendTimeout)
	defer cancel()
	log := m.log.With("message_id", msg.ID, "kind", msg.Kind)
	var last error
	for attempt := 1; ; attempt++ {
		res := m.attempt(ctx, env)
		if res.err == nil {
			log.DebugContext(ctx, "smtp server accepted the message", "attempt", attempt, "reused", res.reused)
			return nil
		}
		last = res.err
		logFailure(ctx, log, attempt, res)
		if errors.Is(last, ErrClosed) {
			return fmt.Errorf("smtpmailer: send %s: %w", key, last)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("smtpmailer: send %s: %w (last failure: %v)", key, context.Cause(ctx), last)
		}
		if errors.Is(last, ErrPermanent) || res.unsure || attempt >= m.maxAttempts {
			return fmt.Errorf("smtpmailer: send %s: attempt %d: %w", key, attempt, last)
		}
		t := time.NewTimer(m.backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("smtpmailer: send %s: %w (last failure: %v)", key, context.Cause(ctx), last)
		case <-t.C:
		}
	}
}

func logFailure(ctx context.Context, log *slog.Logger, attempt int, res result) {
	attrs := []any{"attempt", attempt, "reused", res.reused, "unsure", res.unsure}
	var se *Error
	if errors.As(res.err, &se) {
		attrs = append(attrs, "command", se.Command, "code", se.Code, "enhanced", se.Enhanced)
	} else {
		attrs = append(attrs, "err", res.err)
	}
	log.WarnContext(ctx, "smtp send failed", attrs...)
}

// backoff returns the wait before retry n (n >= 1): full jitter.
func (m *Mailer) backoff(n int) time.Duration {
	ceil := m.backoffBase << min(n-1, 30)
	if ceil <= 0 || ceil > m.backoffMax {
		ceil = m.backoffMax
	}
	return rand.N(ceil + 1)
}

// Close closes the idle connections (with QUIT) and makes every later
// Send fail with [ErrClosed]. A Send in progress finishes, and its
// connection is closed when it returns. Close is safe to call more than
// once; it always returns nil.
func (m *Mailer) Close() error {
	m.mu.Lock()
	m.closed = true
	idle := m.idle
	m.idle = nil
	m.mu.Unlock()
	for _, c := range idle {
		c.quit(m.timeout)
	}
	return nil
}
