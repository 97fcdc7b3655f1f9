package smtpmailer

import (
	"errors"
	"slices"
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
		{in: "smtps://h:", err: "port"},
		{in: "smtps://:secret@h", err: "without a user"},
		{in: "smtps://h/path", err: "path"},
		{in: "smtps://h#frag", err: "fragment"},
		{in: "smtps://h?tls=off", err: "query"},
		{in: "smtps://h?auth=PLAIN&auth=LOGIN", err: "query"},
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

// urlProblems are every error parseURL may return.
var urlProblems = []error{errURLEmpty, errURLInvalid, errURLScheme, errURLOpaque, errURLNoHost, errURLPort,
	errURLNoUser, errURLPath, errURLFragment, errURLQuery, errURLAuth}

// The password's digits must not come back as a "port", nor any other
// part of a password that holds a URL delimiter.
func TestURLErrorsHoldNoPassword(t *testing.T) {
	for _, tt := range []struct{ raw, secret string }{
		{"smtp://user:1234567/abc@host", "1234567"},
		{"smtp://user:1234567/abc@host", "abc"},
		{"smtp://user:pa?ss@smtp.example.com", "ss@smtp"},
		{"smtp://user:pa#ss@smtp.example.com", "ss@smtp"},
		{"smtp://user:50%zz@smtp.example.com", "50%zz"},
		{"smtp://user:a b@smtp.example.com", "a b"},
		{"user:s3cretpw@smtp.example.com", "s3cretpw"},
		{"s3cretpw://smtp.example.com", "s3cretpw"},
		{"smtp://user:pw@h?s3cretpw=1", "s3cretpw"},
		{"smtp://user:pw@h?auth=s3cretpw", "s3cretpw"},
	} {
		_, err := NewFromURL(tt.raw, Options{From: "a@b.example"})
		if err == nil {
			t.Errorf("NewFromURL(%q) accepted it", tt.raw)
			continue
		}
		if strings.Contains(err.Error(), tt.secret) || strings.Contains(err.Error(), "user") && !strings.Contains(err.Error(), "user name") {
			t.Errorf("NewFromURL(%q) = %q, which holds %q", tt.raw, err, tt.secret)
		}
	}
	_, err := NewFromURL("smtp://user:1234567/abc@host", Options{From: "a@b.example"})
	if !strings.Contains(err.Error(), "percent-encoded") {
		t.Errorf("err = %v, want the hint to percent-encode the password", err)
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"smtps://user:secret@smtp.example.com:465", "smtp://u:secret@h?auth=PLAIN",
		"smtp+plain://localhost", "smtp+starttls://[::1]:25/", "smtps://u:secret@h/%zz", "smtp://u:secret@h#x",
		"smtps://u:se cret%zz@h", "smtp://0?secret", "smtp://user:1234567/abc@host"} {
		f.Add(s, "")
	}
	for _, p := range []string{"/", "?", "#", "@", ":", "%", "1234567/", "a@b:c/d?e#f%zz"} {
		f.Add("smtp://user:%s@smtp.example.com:587", p)
	}
	f.Fuzz(func(t *testing.T, raw, pass string) {
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
		} else if !slices.Contains(urlProblems, err) {
			t.Fatalf("parseURL(%q) = %v, not one of the fixed problems", raw, err)
		}

		// A password written into a URL as is, delimiters and all: net/url
		// may cut it anywhere (host, port, path, query, scheme), and no
		// piece of it may come back in an error. A canary inside the
		// password, which nothing else can produce, must not come back
		// from NewFromURL.
		const canary = "CANARYpa55w0rd7f3a"
		withCanary := strings.Replace(raw, "%s", pass+canary+pass, 1)
		if !strings.Contains(withCanary, canary) {
			withCanary = "smtp://user:" + pass + canary + pass + "@smtp.example.com"
		}
		if _, err := NewFromURL(withCanary, Options{From: "a@b.example"}); err != nil && strings.Contains(err.Error(), canary) {
			t.Fatalf("NewFromURL(%q) error %q holds the password", withCanary, err)
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
		if m.mode != tt.mode || m.idDomain != "b.example" {
			t.Errorf("New(%+v): mode %v, id domain %q", tt.opts, m.mode, m.idDomain)
		}
	}
}

func TestErrorClasses(t *testing.T) {
	for _, tt := range []struct {
		err                           error
		permanent, transient, unknown bool
	}{
		{&Error{Code: 550}, true, false, false},
		{&Error{Code: 421}, false, true, false},
		{&failure{text: "connection reset"}, false, true, false},
		{&failure{text: "no reply", unknown: true}, false, false, true},
	} {
		if errors.Is(tt.err, reset.ErrPermanent) != tt.permanent || errors.Is(tt.err, ErrPermanent) != tt.permanent ||
			errors.Is(tt.err, ErrTransient) != tt.transient || errors.Is(tt.err, reset.ErrOutcomeUnknown) != tt.unknown {
			t.Errorf("%v: permanent %v, transient %v, unknown %v", tt.err, errors.Is(tt.err, reset.ErrPermanent),
				errors.Is(tt.err, ErrTransient), errors.Is(tt.err, reset.ErrOutcomeUnknown))
		}
	}
	if got := (&Error{Command: "AUTH", Code: 535, Enhanced: "5.7.8"}).Error(); got != "smtp server refused AUTH: 535 5.7.8" {
		t.Errorf("Error() = %q", got)
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
