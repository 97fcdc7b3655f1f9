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
// parameter. An error from NewFromURL never holds any part of the URL: it
// says which part is wrong (a password with an unencoded delimiter can
// make any part of it hold a piece of the password).
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

// The problems parseURL reports. None quotes any part of the URL: net/url
// splits a URL whose password holds a delimiter in unexpected places, so
// that any part (host, port, path, query, scheme) may hold a piece of the
// password.
var (
	errURLEmpty    = errors.New("empty: want smtps://user:password@host, smtp://user:password@host (STARTTLS) or smtp+plain://localhost:port")
	errURLInvalid  = errors.New("not a valid URL" + encodeHint)
	errURLScheme   = errors.New("the scheme must be smtps, smtp, smtp+starttls or smtp+plain, followed by ://")
	errURLOpaque   = errors.New("want scheme://host, with two slashes" + encodeHint)
	errURLNoHost   = errors.New("no host" + encodeHint)
	errURLPort     = errors.New("the port is not a number from 1 to 65535" + encodeHint)
	errURLNoUser   = errors.New("a password without a user name")
	errURLPath     = errors.New("a path; want none" + encodeHint)
	errURLFragment = errors.New("a fragment (#); want none" + encodeHint)
	errURLQuery    = errors.New("the query may hold only auth=MECHANISM, once" + encodeHint)
	errURLAuth     = fmt.Errorf("auth is not one of %v", knownAuth)
)

// encodeHint ends the problems that a password with a delimiter can cause.
const encodeHint = " (a user name or password that holds / ? # @ : % or a space must be percent-encoded: %2F %3F %23 %40 %3A %25 %20)"

// parseURL reads an smtp, smtps, smtp+starttls or smtp+plain URL. Its
// errors are the fixed problems above: they never hold any part of the
// URL.
func parseURL(raw string) (serverURL, error) {
	var s serverURL
	if raw == "" {
		return s, errURLEmpty
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, password included.
		return s, errURLInvalid
	}
	switch strings.ToLower(u.Scheme) {
	case "smtps":
		s.tls = TLSImplicit
	case "smtp", "smtp+starttls":
		s.tls = TLSStartTLS
	case "smtp+plain":
		s.tls = TLSNone
	default:
		return s, errURLScheme
	}
	if u.Opaque != "" {
		return s, errURLOpaque
	}
	s.host = u.Hostname()
	if s.host == "" {
		return s, errURLNoHost
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return s, errURLPort
		}
		s.port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return s, errURLPort
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
		if s.user == "" {
			return s, errURLNoUser
		}
	}
	if u.Path != "" && u.Path != "/" || u.RawPath != "" {
		return s, errURLPath
	}
	if u.Fragment != "" || u.RawFragment != "" || strings.Contains(raw, "#") {
		return s, errURLFragment
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return s, errURLQuery
	}
	for k, v := range q {
		if k != "auth" || len(v) != 1 {
			return s, errURLQuery
		}
		s.auth = Auth(strings.ToUpper(v[0]))
		if s.auth == "" || s.auth == "AUTO" {
			s.auth = AuthAuto
		} else if !knownAuthName(s.auth) {
			return s, errURLAuth
		}
	}
	return s, nil
}
