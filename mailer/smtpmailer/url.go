package smtpmailer

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// NewFromURL returns a Mailer for the server that rawURL names, with the
// other settings taken from opts. It is meant for a URL kept in the
// environment:
//
//	smtps://user:password@smtp.example.com          implicit TLS, port 465
//	smtp://user:password@smtp.example.com           STARTTLS required, port 587
//	smtp+starttls://user:password@smtp.example.com  the same, said explicitly
//	smtp+plain://localhost:1025                     no TLS, port 25 (loopback only,
//	                                                unless opts.AllowInsecureRemote)
//
// The URL sets Host, Port, TLS, Username and Password (user and password
// percent-decoded, so a password may hold any character written as %XX),
// and the query may set Auth, as in ?auth=PLAIN; opts must leave those
// fields zero. The URL allows no path, fragment or other query
// parameter. An error from NewFromURL never holds the password.
func NewFromURL(rawURL string, opts Options) (*Mailer, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("smtpmailer: URL: %w", err)
	}
	if opts.Host != "" || opts.Port != 0 || opts.TLS != TLSDefault || opts.Username != "" ||
		opts.Password != "" || opts.Auth != AuthAuto {
		return nil, errors.New("smtpmailer: NewFromURL: the URL sets Host, Port, TLS, Username, Password and Auth; leave them zero in opts")
	}
	opts.Host, opts.Port, opts.TLS = u.host, u.port, u.tls
	opts.Username, opts.Password, opts.Auth = u.user, u.pass, u.auth
	return New(opts)
}

// serverURL is what parseURL reads from a URL.
type serverURL struct {
	host       string
	port       int // 0: the mode's default
	tls        TLSMode
	user, pass string
	auth       Auth
}

// parseURL reads an smtp, smtps, smtp+starttls or smtp+plain URL. Its
// errors describe the URL without its userinfo.
func parseURL(raw string) (serverURL, error) {
	var s serverURL
	if raw == "" {
		return s, errors.New("empty: want smtps://user:password@host, smtp://user:password@host (STARTTLS) or smtp+plain://localhost:port")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, password included.
		return s, errors.New("not a valid URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "smtps":
		s.tls = TLSImplicit
	case "smtp", "smtp+starttls":
		s.tls = TLSStartTLS
	case "smtp+plain":
		s.tls = TLSNone
	case "":
		return s, errors.New("no scheme: want smtps://, smtp://, smtp+starttls:// or smtp+plain://")
	default:
		return s, fmt.Errorf("scheme %q: want smtps, smtp, smtp+starttls or smtp+plain", u.Scheme)
	}
	if u.Opaque != "" {
		return s, errors.New("want scheme://host, with two slashes")
	}
	s.host = u.Hostname()
	if s.host == "" {
		return s, errors.New("no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return s, fmt.Errorf("port %q is out of range", p)
		}
		s.port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return s, errors.New("empty port")
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
		if s.user == "" {
			return s, errors.New("a password without a user name")
		}
	}
	if u.Path != "" && u.Path != "/" || u.RawPath != "" {
		return s, errors.New("a path; want no path")
	}
	if u.Fragment != "" || u.RawFragment != "" || strings.Contains(raw, "#") {
		return s, errors.New("a fragment; want none")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return s, errors.New("the query is not valid")
	}
	for k, v := range q {
		if k != "auth" {
			return s, fmt.Errorf("query parameter %q: only auth is known", k)
		}
		if len(v) != 1 {
			return s, errors.New("query parameter auth is repeated")
		}
		s.auth = Auth(strings.ToUpper(v[0]))
		if s.auth == "" || s.auth == "AUTO" {
			s.auth = AuthAuto
		} else if !knownAuthName(s.auth) {
			return s, fmt.Errorf("auth %q is not one of %v", v[0], knownAuth)
		}
	}
	return s, nil
}
