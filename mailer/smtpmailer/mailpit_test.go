package smtpmailer_test

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/passreset/passreset/mailer/smtpmailer"
	"github.com/passreset/passreset/reset"
)

// longLink is a reset link longer than SMTP's 998-character line limit,
// with characters quoted-printable must escape ('=') and a soft break
// would split.
func longLink() string {
	return "https://app.example.com/auth/reset?token=" + strings.Repeat("AbC-_9xyz", 120) +
		"&next=%2Faccount%3Ftab%3Dsecurity&sig=" + strings.Repeat("0f", 40)
}

func TestMailpitMessage(t *testing.T) {
	mp := plainMailpit(t)
	m := newMailer(t, mp, smtpmailer.Options{ReplyTo: "Support Équipe <support@acme.example>"})
	to := recipient("message")
	link := longLink()
	msg := testMessage(to, link)
	if err := m.Send(background(t), msg); err != nil {
		t.Fatal(err)
	}

	got := mp.only(t, to)
	if got.Subject != msg.Subject {
		t.Errorf("Subject = %q, want %q", got.Subject, msg.Subject)
	}
	if got.From != (address{"Acme Sécurité", "security@acme.example"}) {
		t.Errorf("From = %+v", got.From)
	}
	if len(got.To) != 1 || got.To[0].Address != to {
		t.Errorf("To = %+v", got.To)
	}
	if len(got.ReplyTo) != 1 || got.ReplyTo[0] != (address{"Support Équipe", "support@acme.example"}) {
		t.Errorf("ReplyTo = %+v", got.ReplyTo)
	}
	if want := msg.ID + "@acme.example"; got.MessageID != want {
		t.Errorf("MessageID = %q, want %q", got.MessageID, want)
	}
	// Mailpit's own decoding of both parts.
	if !strings.Contains(got.Text, link) {
		t.Errorf("Mailpit's text part lacks the exact link:\n%s", got.Text)
	}
	if !strings.Contains(got.HTML, strings.ReplaceAll(link, "&", "&amp;")) && !strings.Contains(got.HTML, link) {
		t.Errorf("Mailpit's HTML part lacks the exact link:\n%s", got.HTML)
	}

	// The source as it arrived, read with the standard library.
	raw := mp.raw(t, got.ID)
	_, body, _ := strings.Cut(raw, "\r\n\r\n")
	for i, line := range strings.Split(body, "\r\n") {
		if len(line) > 76 {
			t.Errorf("body line %d has %d characters (over 76): %.80q", i+1, len(line), line)
		}
	}
	e, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := e.Header
	for name, want := range map[string]string{
		"Auto-Submitted":           "auto-generated",
		"X-Auto-Response-Suppress": "All",
		"Mime-Version":             "1.0",
		"Message-Id":               "<" + msg.ID + "@acme.example>",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if _, err := h.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	if !strings.HasPrefix(strings.ToUpper(h.Get("Subject")), "=?UTF-8?") || !strings.HasPrefix(strings.ToUpper(h.Get("From")), "=?UTF-8?") {
		t.Errorf("Subject %q and From %q are not RFC 2047 encoded", h.Get("Subject"), h.Get("From"))
	}
	var dec mime.WordDecoder
	if s, err := dec.DecodeHeader(h.Get("Subject")); err != nil || s != msg.Subject {
		t.Errorf("decoded Subject = %q, %v", s, err)
	}
	if h.Get("User-Agent") != "" || h.Get("X-Mailer") != "" {
		t.Errorf("User-Agent %q, X-Mailer %q: want neither", h.Get("User-Agent"), h.Get("X-Mailer"))
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q: %v", h.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(e.Body, params["boundary"])
	var parts []string
	for {
		p, err := mr.NextRawPart() // no automatic decoding: check the encoding ourselves
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, cp, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if cp["charset"] != "UTF-8" && cp["charset"] != "utf-8" {
			t.Errorf("part %s: charset %q", ct, cp["charset"])
		}
		if enc := p.Header.Get("Content-Transfer-Encoding"); enc != "quoted-printable" {
			t.Errorf("part %s: Content-Transfer-Encoding %q", ct, enc)
		}
		body, err := io.ReadAll(quotedprintable.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, ct)
		want := msg.Text
		if ct == "text/html" {
			want = msg.HTML
		}
		if got := strings.ReplaceAll(string(body), "\r\n", "\n"); got != want {
			t.Errorf("part %s decodes to\n%q\nwant\n%q", ct, got, want)
		}
	}
	if fmt.Sprint(parts) != "[text/plain text/html]" {
		t.Errorf("parts %v, want [text/plain text/html]", parts)
	}
}

func TestMailpitSinglePart(t *testing.T) {
	mp := plainMailpit(t)
	m := newMailer(t, mp, smtpmailer.Options{})
	to := recipient("textonly")
	msg := testMessage(to, "https://app.example.com/reset?token=abc")
	msg.HTML = ""
	if err := m.Send(background(t), msg); err != nil {
		t.Fatal(err)
	}
	got := mp.only(t, to)
	e, err := mail.ReadMessage(strings.NewReader(mp.raw(t, got.ID)))
	if err != nil {
		t.Fatal(err)
	}
	if mt, _, _ := mime.ParseMediaType(e.Header.Get("Content-Type")); mt != "text/plain" {
		t.Errorf("Content-Type %q, want text/plain", e.Header.Get("Content-Type"))
	}
	if strings.ReplaceAll(got.Text, "\r\n", "\n") != msg.Text {
		t.Errorf("Text = %q", got.Text)
	}
}

func TestMailpitRetryKeepsMessageID(t *testing.T) {
	mp := plainMailpit(t)
	m := newMailer(t, mp, smtpmailer.Options{MessageIDDomain: "mail.acme.example"})
	to := recipient("again")
	msg := testMessage(to, "https://app.example.com/reset?token=abc")
	for range 2 { // what an outbox does after an ambiguous failure
		if err := m.Send(background(t), msg); err != nil {
			t.Fatal(err)
		}
	}
	list := mp.search(t, to)
	if len(list) != 2 || list[0].MessageID != list[1].MessageID || list[0].MessageID != msg.ID+"@mail.acme.example" {
		t.Errorf("messages %+v, want two with Message-ID %s@mail.acme.example", list, msg.ID)
	}
}

func TestMailpitSTARTTLSWithAuth(t *testing.T) {
	mp := startTLSMailpit(t)
	user, pass := mailpitAuth(t)
	for _, auth := range []smtpmailer.Auth{smtpmailer.AuthAuto, smtpmailer.AuthPlain, smtpmailer.AuthLogin} {
		t.Run("auth="+string(auth), func(t *testing.T) {
			m := newMailer(t, mp, smtpmailer.Options{
				TLS: smtpmailer.TLSStartTLS, TLSConfig: mailpitTLS(t),
				Username: user, Password: pass, Auth: auth,
			})
			to := recipient("starttls")
			if err := m.Send(background(t), testMessage(to, longLink())); err != nil {
				t.Fatal(err)
			}
			if got := mp.only(t, to); !strings.Contains(got.Text, longLink()) {
				t.Errorf("text lacks the link: %q", got.Text)
			}
		})
	}
}

func TestMailpitImplicitTLSWithAuth(t *testing.T) {
	mp := implicitTLSMailpit(t)
	user, pass := mailpitAuth(t)
	// Through NewFromURL, as from the environment; the password needs escaping.
	u := fmt.Sprintf("smtps://%s:%s@%s", user, pass, net.JoinHostPort(mp.host, strconv.Itoa(mp.port)))
	m, err := smtpmailer.NewFromURL(u, smtpmailer.Options{From: "security@acme.example", TLSConfig: mailpitTLS(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	to := recipient("smtps")
	if err := m.Send(background(t), testMessage(to, "https://app.example.com/reset?token=x")); err != nil {
		t.Fatal(err)
	}
	mp.only(t, to)
}

// tlsInstances are the Mailpit instances that speak TLS, by name.
var tlsInstances = map[string]func(testing.TB) mailpit{"starttls": startTLSMailpit, "implicit": implicitTLSMailpit}

func TestMailpitAuthRefusedIsPermanent(t *testing.T) {
	for name, instance := range tlsInstances {
		t.Run(name, func(t *testing.T) {
			mp := instance(t)
			user, _ := mailpitAuth(t)
			m := newMailer(t, mp, smtpmailer.Options{
				TLS: mp.tls, TLSConfig: mailpitTLS(t), Username: user, Password: "wrong-password",
			})
			to := recipient("badauth")
			err := m.Send(background(t), testMessage(to, "https://app.example.com/reset?token=x"))
			var se *smtpmailer.Error
			if !errors.As(err, &se) || se.Command != "AUTH" || se.Code != 535 {
				t.Fatalf("err = %v, want a 535 refusal of AUTH", err)
			}
			if !errors.Is(err, reset.ErrPermanent) || errors.Is(err, smtpmailer.ErrTransient) {
				t.Errorf("err = %v, want permanent", err)
			}
			if strings.Contains(err.Error(), "wrong-password") {
				t.Errorf("err %q holds the password", err)
			}
			if n := len(mp.search(t, to)); n != 0 {
				t.Errorf("%d messages delivered", n)
			}
		})
	}
}

func TestMailpitNoAuthWhereRequired(t *testing.T) {
	mp := startTLSMailpit(t)
	m := newMailer(t, mp, smtpmailer.Options{TLS: smtpmailer.TLSStartTLS, TLSConfig: mailpitTLS(t)})
	err := m.Send(background(t), testMessage(recipient("noauth"), "https://x.example/r"))
	var se *smtpmailer.Error
	if !errors.As(err, &se) || se.Code/100 != 5 || !errors.Is(err, reset.ErrPermanent) {
		t.Fatalf("err = %v, want a permanent 5xx refusal", err)
	}
}

func TestMailpitUntrustedCertificateIsTransient(t *testing.T) {
	for name, instance := range tlsInstances {
		t.Run(name, func(t *testing.T) {
			mp := instance(t)
			user, pass := mailpitAuth(t)
			// The system's roots do not hold the test certificate.
			m := newMailer(t, mp, smtpmailer.Options{TLS: mp.tls, Username: user, Password: pass})
			err := m.Send(background(t), testMessage(recipient("untrusted"), "https://x.example/r"))
			if !errors.Is(err, smtpmailer.ErrTransient) || errors.Is(err, reset.ErrPermanent) {
				t.Fatalf("err = %v, want transient", err)
			}
			if !strings.Contains(err.Error(), "certificate") {
				t.Errorf("err = %v, want it to name the certificate", err)
			}
		})
	}
}

func TestMailpitSTARTTLSRequiredButNotOffered(t *testing.T) {
	mp := plainMailpit(t) // offers no STARTTLS
	m := newMailer(t, mp, smtpmailer.Options{Host: mp.host, Port: mp.port, TLS: smtpmailer.TLSStartTLS})
	to := recipient("nostarttls")
	err := m.Send(background(t), testMessage(to, "https://x.example/r"))
	if !errors.Is(err, smtpmailer.ErrTransient) || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("err = %v, want a transient failure naming STARTTLS", err)
	}
	// What to do about it (issue #24): smtp+plain:// for a local server.
	if !strings.Contains(err.Error(), "smtp+plain://") {
		t.Errorf("err = %v, want it to say smtp+plain:// for a local development server", err)
	}
	// Check finds it at start, before any message.
	u := fmt.Sprintf("smtp://%s:%d", mp.host, mp.port)
	mu, err := smtpmailer.NewFromURL(u, smtpmailer.Options{From: "security@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	if err := mu.Check(background(t)); err == nil || !strings.Contains(err.Error(), "smtp+plain://") {
		t.Errorf("Check(%s) = %v, want the smtp+plain:// advice", u, err)
	}
	// And the advice works.
	mu, err = smtpmailer.NewFromURL(fmt.Sprintf("smtp+plain://%s:%d", mp.host, mp.port), smtpmailer.Options{From: "security@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	if err := mu.Check(background(t)); err != nil {
		t.Errorf("Check with smtp+plain://: %v", err)
	}
	if n := len(mp.search(t, to)); n != 0 {
		t.Errorf("%d messages delivered in plain text", n)
	}
}

func TestMailpitRefusedRecipientIsPermanent(t *testing.T) {
	mp := plainMailpit(t) // refuses recipients outside example.com and example.org
	m := newMailer(t, mp, smtpmailer.Options{})
	to := "someone@refused.example"
	err := m.Send(background(t), testMessage(to, "https://x.example/r"))
	var se *smtpmailer.Error
	if !errors.As(err, &se) || se.Command != "RCPT" || se.Code != 550 || se.Enhanced != "5.1.0" {
		t.Fatalf("err = %v, want 550 5.1.0 to RCPT", err)
	}
	if !errors.Is(err, reset.ErrPermanent) || !errors.Is(err, smtpmailer.ErrPermanent) {
		t.Errorf("err = %v, want permanent", err)
	}
	if strings.Contains(err.Error(), to) {
		t.Errorf("err %q holds the recipient", err)
	}
	// The next message goes through.
	ok := recipient("afterrefusal")
	if err := m.Send(background(t), testMessage(ok, "https://x.example/r")); err != nil {
		t.Fatal(err)
	}
	mp.only(t, ok)
}

func TestMailpitChaos(t *testing.T) {
	mp := plainMailpit(t)
	for _, tt := range []struct {
		triggers  string
		command   string
		code      int
		permanent bool
	}{
		{`{"Recipient": {"ErrorCode": 451, "Probability": 100}}`, "RCPT", 451, false},
		{`{"Sender": {"ErrorCode": 421, "Probability": 100}}`, "MAIL", 421, false},
		{`{"Sender": {"ErrorCode": 554, "Probability": 100}}`, "MAIL", 554, true},
		{`{"Recipient": {"ErrorCode": 552, "Probability": 100}}`, "RCPT", 552, true},
	} {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			mp.chaos(t, tt.triggers)
			p := newProxy(t, net.JoinHostPort(mp.host, strconv.Itoa(mp.port)))
			var mu sync.Mutex
			attempts := 0
			m := newMailer(t, mp, smtpmailer.Options{
				Host: "127.0.0.1", Port: p.port(), TLS: smtpmailer.TLSNone, Logger: countingLogger(&mu, &attempts),
			})
			to := recipient("chaos")
			err := m.Send(background(t), testMessage(to, "https://x.example/r"))
			var se *smtpmailer.Error
			if !errors.As(err, &se) || se.Command != tt.command || se.Code != tt.code {
				t.Fatalf("err = %v, want %d to %s", err, tt.code, tt.command)
			}
			if errors.Is(err, reset.ErrPermanent) != tt.permanent || errors.Is(err, smtpmailer.ErrTransient) == tt.permanent {
				t.Errorf("err = %v: permanent %v, want %v", err, errors.Is(err, reset.ErrPermanent), tt.permanent)
			}
			mu.Lock()
			defer mu.Unlock()
			if attempts != 1 || p.connections() != 1 {
				t.Errorf("%d attempts on %d connections, want 1: the queue retries, not the Mailer", attempts, p.connections())
			}
			if n := len(mp.search(t, to)); n != 0 {
				t.Errorf("%d messages delivered", n)
			}
		})
	}
}

// Concurrent sends each use their own session, and a connection the
// server side cuts affects only the send on it.
func TestMailpitConcurrentSends(t *testing.T) {
	mp := plainMailpit(t)
	p := newProxy(t, net.JoinHostPort(mp.host, strconv.Itoa(mp.port)))
	m := newMailer(t, mp, smtpmailer.Options{Host: "127.0.0.1", Port: p.port(), TLS: smtpmailer.TLSNone})

	const n = 24
	var wg sync.WaitGroup
	addrs := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		addrs[i] = recipient("concurrent")
		wg.Go(func() { errs[i] = m.Send(background(t), testMessage(addrs[i], "https://x.example/r?token="+newID())) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("send %d: %v", i, err)
		}
	}
	if c := p.connections(); c != n {
		t.Errorf("%d sends opened %d connections, want one each", n, c)
	}
	for _, a := range addrs {
		if got := len(mp.search(t, a)); got != 1 {
			t.Errorf("%s received %d messages, want 1", a, got)
		}
	}
}
