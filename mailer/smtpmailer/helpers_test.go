package smtpmailer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/passreset/passreset/mailer/smtpmailer"
	"github.com/passreset/passreset/reset"
)

// mailpitEnv returns the environment variable name, which
// scripts/mailpit.sh prints. Without it the test is skipped, or fails
// under CI=true.
func mailpitEnv(tb testing.TB, name string) string {
	tb.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	msg := name + " is not set, so the tests against Mailpit do not run; start it with " +
		`eval "$(scripts/mailpit.sh start | grep '^export ')"`
	if _, bench := tb.(*testing.B); os.Getenv("CI") == "true" && !bench {
		tb.Fatal(msg + " (CI=true: a skipped Mailpit test is a failure)")
	}
	tb.Skip(msg)
	return ""
}

// mailpit is one Mailpit instance: its SMTP address and its HTTP API.
type mailpit struct {
	host string
	port int
	api  string
	tls  smtpmailer.TLSMode
}

// Instances started by scripts/mailpit.sh.
func plainMailpit(tb testing.TB) mailpit {
	return newMailpit(tb, "PASSRESET_MAILPIT_SMTP", "PASSRESET_MAILPIT_API", smtpmailer.TLSNone)
}
func startTLSMailpit(tb testing.TB) mailpit {
	return newMailpit(tb, "PASSRESET_MAILPIT_STARTTLS_SMTP", "PASSRESET_MAILPIT_STARTTLS_API", smtpmailer.TLSStartTLS)
}
func implicitTLSMailpit(tb testing.TB) mailpit {
	return newMailpit(tb, "PASSRESET_MAILPIT_TLS_SMTP", "PASSRESET_MAILPIT_TLS_API", smtpmailer.TLSImplicit)
}

func newMailpit(tb testing.TB, smtpEnv, apiEnv string, mode smtpmailer.TLSMode) mailpit {
	tb.Helper()
	addr, api := mailpitEnv(tb, smtpEnv), mailpitEnv(tb, apiEnv)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatalf("%s=%q: %v", smtpEnv, addr, err)
	}
	var p int
	fmt.Sscan(port, &p)
	return mailpit{host: host, port: p, api: strings.TrimRight(api, "/"), tls: mode}
}

// mailpitTLS returns a TLS configuration trusting the test certificate.
func mailpitTLS(tb testing.TB) *tls.Config {
	tb.Helper()
	pem, err := os.ReadFile(mailpitEnv(tb, "PASSRESET_MAILPIT_CA"))
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		tb.Fatal("PASSRESET_MAILPIT_CA holds no certificate")
	}
	return &tls.Config{RootCAs: pool}
}

// mailpitAuth returns the user and password the TLS instances accept.
func mailpitAuth(tb testing.TB) (user, pass string) {
	tb.Helper()
	user, pass, ok := strings.Cut(mailpitEnv(tb, "PASSRESET_MAILPIT_AUTH"), ":")
	if !ok {
		tb.Fatal("PASSRESET_MAILPIT_AUTH is not user:password")
	}
	return user, pass
}

func (mp mailpit) get(tb testing.TB, path string, v any) {
	tb.Helper()
	resp, err := http.Get(mp.api + path)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		tb.Fatalf("GET %s: %d %v %s", path, resp.StatusCode, err, body)
	}
	if s, ok := v.(*string); ok {
		*s = string(body)
		return
	}
	if err := json.Unmarshal(body, v); err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
}

// summary is a message in Mailpit's search answer.
type summary struct {
	ID        string
	MessageID string
	Subject   string
}

// search returns the messages to addr, newest first.
func (mp mailpit) search(tb testing.TB, addr string) []summary {
	tb.Helper()
	var r struct{ Messages []summary }
	mp.get(tb, "/api/v1/search?limit=1000&query="+url.QueryEscape(`to:"`+addr+`"`), &r)
	return r.Messages
}

// address is an address in Mailpit's message answer.
type address struct{ Name, Address string }

// message is Mailpit's view of one stored message, decoded.
type message struct {
	ID        string
	MessageID string
	From      address
	To        []address
	ReplyTo   []address
	Subject   string
	Text      string
	HTML      string
}

// only returns the one message to addr, failing unless there is exactly one.
func (mp mailpit) only(tb testing.TB, addr string) message {
	tb.Helper()
	list := mp.search(tb, addr)
	if len(list) != 1 {
		tb.Fatalf("Mailpit holds %d messages to %s, want 1", len(list), addr)
	}
	var m message
	mp.get(tb, "/api/v1/message/"+list[0].ID, &m)
	return m
}

// raw returns the source of a stored message as it arrived.
func (mp mailpit) raw(tb testing.TB, id string) string {
	tb.Helper()
	var s string
	mp.get(tb, "/api/v1/message/"+id+"/raw", &s)
	return s
}

// chaos sets Mailpit's chaos triggers (instance-wide) and resets them
// when tb ends. The tests of this package do not run in parallel.
func (mp mailpit) chaos(tb testing.TB, triggers string) {
	tb.Helper()
	put := func(body string) {
		req, _ := http.NewRequest(http.MethodPut, mp.api+"/api/v1/chaos", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			tb.Fatalf("PUT /api/v1/chaos: %d", resp.StatusCode)
		}
	}
	put(triggers)
	tb.Cleanup(func() { put(`{}`) })
}

// recipient returns a fresh address at example.com (which the plain
// instance accepts), so that tests find their own mail among earlier runs'.
func recipient(tag string) string {
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%s@example.com", tag, hex.EncodeToString(b[:]))
}

// newID returns a fresh message ID shaped like reset's.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// testMessage returns a reset message to to with the given link.
func testMessage(to, link string) reset.Message {
	return reset.Message{
		ID:      newID(),
		Kind:    reset.KindReset,
		To:      to,
		Subject: "Réinitialisez votre mot de passe Acme ✓",
		Text:    "Open this link to choose a new password:\n\n" + link + "\n\nIt works for one hour.\n",
		HTML:    `<p>Open <a href="` + link + `">this link</a> to choose a new password.</p>` + "\n",
	}
}

// newMailer returns a Mailer for mp with opts (Host, Port, TLS and From
// filled in when zero), closed when tb ends.
func newMailer(tb testing.TB, mp mailpit, opts smtpmailer.Options) *smtpmailer.Mailer {
	tb.Helper()
	if opts.Host == "" {
		opts.Host, opts.Port = mp.host, mp.port
	}
	if opts.TLS == smtpmailer.TLSDefault {
		opts.TLS = mp.tls
	}
	if opts.From == "" {
		opts.From = "Acme Sécurité <security@acme.example>"
	}
	m, err := smtpmailer.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// proxy forwards TCP connections to a server, counting them, and can cut
// them all.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	count  int
	wg     sync.WaitGroup
}

func newProxy(tb testing.TB, target string) *proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	tb.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.count++
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); io.Copy(s, c); s.Close() }()
		go func() { defer p.wg.Done(); io.Copy(c, s); c.Close() }()
	}
}

// connections returns how many connections the proxy accepted.
func (p *proxy) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count
}

// cut closes every connection made so far.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// background returns a context for a test's calls.
func background(tb testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	return ctx
}

// recordFunc is a slog.Handler that calls itself with each record.
type recordFunc func(slog.Record)

func (f recordFunc) Enabled(context.Context, slog.Level) bool { return true }
func (f recordFunc) Handle(_ context.Context, r slog.Record) error {
	f(r)
	return nil
}
func (f recordFunc) WithAttrs([]slog.Attr) slog.Handler { return f }
func (f recordFunc) WithGroup(string) slog.Handler      { return f }

// countingLogger counts the failed attempts the Mailer logs into *n.
func countingLogger(mu *sync.Mutex, n *int) *slog.Logger {
	return slog.New(recordFunc(func(r slog.Record) {
		if r.Message == "smtp send failed" {
			mu.Lock()
			*n++
			mu.Unlock()
		}
	}))
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// textLogger logs everything, Debug included, as text into w.
func textLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
