package smtpmailer

import (
	"errors"
	"net/textproto"
	"net/url"
	"strings"
	"testing"

	"github.com/passreset/passreset/reset"
)

func TestParseURL(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want serverURL
		err  string
	}{
		{in: "smtps://user:p%40ss%2Fw:rd@smtp.example.com", want: serverURL{host: "smtp.example.com", tls: TLSImplicit, user: "user", pass: "p@ss/w:rd"}},
		{in: "smtps://smtp.example.com:2465", want: serverURL{host: "smtp.example.com", port: 2465, tls: TLSImplicit}},
		{in: "smtp://apikey:k@smtp.example.com:587?auth=login", want: serverURL{host: "smtp.example.com", port: 587, tls: TLSStartTLS, user: "apikey", pass: "k", auth: AuthLogin}},
		{in: "SMTP+STARTTLS://u:p@[2001:db8::1]:25/?auth=SCRAM-SHA-256", want: serverURL{host: "2001:db8::1", port: 25, tls: TLSStartTLS, user: "u", pass: "p", auth: AuthSCRAMSHA256}},
		{in: "smtp+plain://localhost:1025", want: serverURL{host: "localhost", port: 1025, tls: TLSNone}},
		{in: "smtp://u:p@h?auth=auto", want: serverURL{host: "h", tls: TLSStartTLS, user: "u", pass: "p"}},
		{in: "", err: "empty"},
		{in: "http://smtp.example.com", err: "scheme"},
		{in: "smtp.example.com:587", err: "scheme"},
		{in: "smtp:smtp.example.com", err: "two slashes"},
		{in: "smtps://", err: "no host"},
		{in: "smtps://h:0", err: "port"},
		{in: "smtps://h:70000", err: "port"},
		{in: "smtps://h:", err: "empty port"},
		{in: "smtps://:secret@h", err: "without a user"},
		{in: "smtps://h/path", err: "path"},
		{in: "smtps://h#frag", err: "fragment"},
		{in: "smtps://h?tls=off", err: "only auth"},
		{in: "smtps://h?auth=PLAIN&auth=LOGIN", err: "repeated"},
		{in: "smtps://h?auth=NTLM", err: "not one of"},
		{in: "smtps://u:se cret%zz@h", err: "not a valid URL"},
	} {
		got, err := parseURL(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseURL(%q) = %+v, %v; want an error about %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseURL(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"smtps://user:secret@smtp.example.com:465", "smtp://u:secret@h?auth=PLAIN",
		"smtp+plain://localhost", "smtp+starttls://[::1]:25/", "smtps://u:secret@h/%zz", "smtp://u:secret@h#x",
		"smtps://u:se cret%zz@h", "smtp://0?secret"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		s, err := parseURL(raw)
		if err == nil {
			if s.host == "" || s.port < 0 || s.port > 65535 || (s.pass != "" && s.user == "") {
				t.Fatalf("parseURL(%q) = %+v", raw, s)
			}
			if s.auth != AuthAuto && !knownAuthName(s.auth) {
				t.Fatalf("parseURL(%q) auth %q", raw, s.auth)
			}
			// What parses is accepted or refused by New, never a panic.
			if m, err := New(Options{Host: s.host, Port: s.port, TLS: s.tls, Username: s.user, Password: s.pass,
				Auth: s.auth, From: "a@b.example", AllowInsecureRemote: true}); err == nil {
				m.Close()
			}
		}

		// No error repeats a password. Looking for the password's own text
		// in the error gives false alarms (the fuzzer found "secret" as a
		// query key and digits in a host), so the URL's password is swapped
		// for a canary that nothing else can produce, and the canary must
		// not come back, neither from parseURL nor from New.
		u, perr := url.Parse(raw)
		if perr != nil {
			// url.Error quotes the whole URL, so parseURL says no more.
			if raw != "" && (err == nil || err.Error() != "not a valid URL") {
				t.Fatalf("parseURL(%q) = %v; url.Parse failed with %v", raw, err, perr)
			}
			return
		}
		if u.User == nil {
			return
		}
		const canary = "CANARY-pa55w0rd-7f3a"
		u.User = url.UserPassword(u.User.Username(), canary)
		withCanary := u.String()
		cs, err := parseURL(withCanary)
		if err != nil {
			if strings.Contains(err.Error(), canary) {
				t.Fatalf("parseURL(%q) error %q holds the password", withCanary, err)
			}
			return
		}
		if cs.pass != canary && cs.user != "" {
			t.Fatalf("parseURL(%q) password %q, want the canary", withCanary, cs.pass)
		}
		if _, err := New(Options{Host: cs.host, Port: cs.port, TLS: cs.tls, Username: cs.user, Password: cs.pass,
			Auth: cs.auth, From: "a@b.example", AllowInsecureRemote: true}); err != nil && strings.Contains(err.Error(), canary) {
			t.Fatalf("New error %q holds the password", err)
		}
	})
}

func TestNewRefusesBadOptions(t *testing.T) {
	for _, tt := range []struct {
		opts Options
		want string
	}{
		{Options{}, "Host is required; TLS default"},
		{Options{Host: "smtp.example.com:587", From: "a@b.example"}, "without a port"},
		{Options{Host: "smtp.example.com", From: "a@b.example", TLS: TLSNone}, "not loopback"},
		{Options{Host: "smtp.example.com", From: "a@b.example", Port: 70000}, "out of range"},
		{Options{Host: "h", From: "a@b.example", Password: "x"}, "without a Username"},
		{Options{Host: "h", From: "a@b.example", Username: "u", Auth: "NTLM"}, "not one of"},
		{Options{Host: "h", From: "a@b.example", Auth: AuthPlain}, "Username is empty"},
		{Options{Host: "h", From: "not an address"}, "From"},
		{Options{Host: "h", From: "a@b.example", ReplyTo: "x\r\nBcc: e@x"}, "ReplyTo"},
		{Options{Host: "h", From: "a@b.example", MessageIDDomain: "a b"}, "MessageIDDomain"},
		{Options{Host: "h", From: "a@b.example", Timeout: -1}, "Timeout is negative"},
		{Options{Host: "localhost", From: "a@b.example", TLS: TLSNone, TLSConfig: nil, MaxConns: -1}, "MaxConns"},
		{Options{Host: "h", From: "a@b.example", TLS: TLSMode(9)}, "not a TLSMode"},
	} {
		_, err := New(tt.opts)
		if err == nil || !strings.Contains(err.Error(), strings.Split(tt.want, ";")[0]) {
			t.Errorf("New(%+v) = %v, want an error about %q", tt.opts, err, tt.want)
		}
	}
	// The defaults.
	for _, tt := range []struct {
		opts Options
		mode TLSMode
	}{
		{Options{Host: "smtp.example.com", From: "a@b.example"}, TLSStartTLS},
		{Options{Host: "smtp.example.com", From: "a@b.example", Port: 465}, TLSImplicit},
		{Options{Host: "127.0.0.1", From: "a@b.example", TLS: TLSNone}, TLSNone},
		{Options{Host: "relay.internal", From: "a@b.example", TLS: TLSNone, AllowInsecureRemote: true}, TLSNone},
	} {
		m, err := New(tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		if m.mode != tt.mode || m.idDomain != "b.example" || cap(m.sem) != DefaultMaxConns {
			t.Errorf("New(%+v): mode %v, id domain %q, %d connections", tt.opts, m.mode, m.idDomain, cap(m.sem))
		}
	}
}

func TestClassify(t *testing.T) {
	err := classify("RCPT", "Ada@Example.com", &textproto.Error{Code: 550, Msg: "5.1.1 <ada@example.com>: no such user\nsee https://help"})
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("classify = %v", err)
	}
	want := Error{Command: "RCPT", Code: 550, Enhanced: "5.1.1", Text: "5.1.1 <<recipient>>: no such user; see https://help"}
	if *se != want {
		t.Errorf("classify = %+v, want %+v", *se, want)
	}
	for _, tt := range []struct {
		err                  error
		permanent, transient bool
	}{
		{&Error{Code: 550}, true, false},
		{&Error{Code: 421}, false, true},
		{classify("MAIL", "", errors.New("connection reset")), false, true},
		{classify("MAIL", "", &textproto.Error{Code: 250, Msg: "odd"}), false, true},
	} {
		if errors.Is(tt.err, reset.ErrPermanent) != tt.permanent || errors.Is(tt.err, ErrPermanent) != tt.permanent ||
			errors.Is(tt.err, ErrTransient) != tt.transient {
			t.Errorf("%v: permanent %v, transient %v", tt.err, errors.Is(tt.err, reset.ErrPermanent), errors.Is(tt.err, ErrTransient))
		}
	}
}

func TestMessageID(t *testing.T) {
	for in, want := range map[string]string{
		"5e1f0c2a":               "5e1f0c2a",
		"a.b-c_d":                "a.b-c_d",
		"<bad>@id":               messageID("<bad>@id"),
		"":                       messageID(""),
		strings.Repeat("a", 200): messageID(strings.Repeat("a", 200)),
	} {
		got := messageID(in)
		if got != want || !validIDPart(got) {
			t.Errorf("messageID(%q) = %q", in, got)
		}
	}
	if messageID("<bad>@id") == messageID("<bad>@id2") {
		t.Error("two IDs share a Message-ID")
	}
}
