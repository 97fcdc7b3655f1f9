package reset

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// linkRule is one parsed entry of Config.AllowedLinks.
type linkRule struct {
	scheme string
	host   string // lower case, with port if any
	path   string // always ends in "/"
}

// parseLinkRule parses an allowlist entry such as "https://app.example.com/reset/".
func parseLinkRule(s string) (linkRule, error) {
	u, err := url.Parse(s)
	if err != nil {
		return linkRule{}, fmt.Errorf("reset: AllowedLinks entry %q: %v", s, err)
	}
	if err := checkLinkShape(u); err != nil {
		return linkRule{}, fmt.Errorf("reset: AllowedLinks entry %q: %v", s, err)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return linkRule{}, fmt.Errorf("reset: AllowedLinks entry %q: must not have a query", s)
	}
	p := u.EscapedPath()
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return linkRule{scheme: u.Scheme, host: u.Host, path: p}, nil
}

// checkLinkShape holds the rules every link must meet, allowlisted or not:
// absolute http(s) with a host of plain ASCII, http only for loopback
// hosts, no userinfo, no fragment; a path without backslashes, dot
// segments, empty segments, parameters (";") or escaped "/", "\", "." or
// "%"; a query of the characters RFC 3986 allows there. It lower-cases
// u.Host.
//
// Hosts are compared as a browser resolves them. A browser maps a
// non-ASCII host through IDNA to a punycode name, while Go's lower-casing
// maps some non-ASCII letters to ASCII ones ("İ" to "i"): the two can name
// different, registrable domains. So a host must be ASCII letters, digits,
// dots and hyphens (an internationalised domain in its "xn--" form) or an
// IP literal, before and after percent-decoding.
func checkLinkShape(u *url.URL) error {
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("scheme must be https")
	case u.Opaque != "" || u.Host == "":
		return fmt.Errorf("must be an absolute URL with a host")
	case u.User != nil:
		return fmt.Errorf("must not contain user information")
	case u.Fragment != "" || u.RawFragment != "":
		return fmt.Errorf("must not have a fragment")
	case !asciiHost(u.Host):
		return fmt.Errorf("host must be plain ASCII (write an internationalised domain in its xn-- form)")
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return fmt.Errorf("scheme must be https (http is allowed for loopback hosts only)")
	}
	u.Host = strings.ToLower(u.Host)
	p := u.EscapedPath()
	lp := strings.ToLower(p)
	switch {
	case strings.ContainsAny(p, "\\;") || strings.Contains(lp, "%2f") || strings.Contains(lp, "%5c") ||
		strings.Contains(lp, "%2e") || strings.Contains(lp, "%25") || strings.Contains(lp, "%3b"):
		return fmt.Errorf("path must not contain parameters (;), backslashes, or escaped slashes, dots or percent signs")
	case strings.Contains(p, "//"):
		return fmt.Errorf("path must not contain empty segments (//)")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("path must not contain dot segments")
		}
	}
	if !validQuery(u.RawQuery) {
		return fmt.Errorf("query must hold only characters RFC 3986 allows there (percent-encode the others)")
	}
	return nil
}

// asciiHost reports whether host (a URL's decoded host, with port) is an
// ASCII DNS name or an IP literal.
func asciiHost(host string) bool {
	h := host
	if strings.HasPrefix(h, "[") { // IPv6 literal, without a zone
		end := strings.IndexByte(h, ']')
		if end < 0 || strings.ContainsRune(h[:end], '%') {
			return false
		}
		if net.ParseIP(h[1:end]) == nil {
			return false
		}
		h = h[end+1:]
		return h == "" || (h[0] == ':' && allDigits(h[1:]))
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if !allDigits(h[i+1:]) {
			return false
		}
		h = h[:i]
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// validQuery reports whether q holds only what RFC 3986 allows in a query:
// unreserved and sub-delimiter characters, ":", "@", "/", "?" and
// well-formed percent-encodings. Anything else ("<", ">", '"', spaces,
// non-ASCII) could be split off by a linkifier in the text email.
func validQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@/?", c) >= 0:
		case c == '%':
			if i+2 >= len(q) || !isHexDigit(q[i+1]) || !isHexDigit(q[i+2]) {
				return false
			}
			i += 2
		default:
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// allows reports whether u matches r.
func (r linkRule) allows(u *url.URL) bool {
	if u.Scheme != r.scheme || u.Host != r.host { // both lower case and ASCII
		return false
	}
	p := u.EscapedPath()
	return p+"/" == r.path || strings.HasPrefix(p, r.path)
}

// CheckLink reports whether link may be used as the base of a reset link,
// without issuing anything. It returns nil or an [*InputError] for field
// "link" wrapping [ErrLinkNotAllowed].
func (s *Service) CheckLink(link string) error {
	_, err := s.parseLink(link)
	return err
}

// parseLink validates a caller-supplied link against the allowlist.
func (s *Service) parseLink(link string) (*url.URL, error) {
	bad := func(reason string) error {
		return &InputError{Field: "link", Reason: reason, Err: ErrLinkNotAllowed}
	}
	if len(link) > maxLinkLen {
		return nil, bad(fmt.Sprintf("longer than %d bytes", maxLinkLen))
	}
	for i := 0; i < len(link); i++ {
		if c := link[i]; c < 0x20 || c == 0x7f || c == ' ' {
			return nil, bad("contains a control character or space")
		}
	}
	if strings.ContainsRune(link, '#') { // also an empty fragment, which url.Parse forgets
		return nil, bad("must not have a fragment")
	}
	u, err := url.Parse(link)
	if err != nil {
		return nil, bad("not a valid URL")
	}
	if err := checkLinkShape(u); err != nil {
		return nil, bad(err.Error())
	}
	for _, r := range s.rules {
		if r.allows(u) {
			return u, nil
		}
	}
	return nil, bad("not under an allowed address")
}

const maxLinkLen = 2048

// linkBase is a validated link ready to take a token.
type linkBase struct {
	u      *url.URL
	prefix string // the link up to the token's value, when it can be appended
}

// newLinkBase prepares u to take a token. When u has no "token" parameter
// of its own, the token is appended to the link as it stands; otherwise
// the query is rebuilt with the token replacing the caller's value.
func newLinkBase(u *url.URL) linkBase {
	if u == nil {
		return linkBase{}
	}
	if _, ok := u.Query()["token"]; ok {
		return linkBase{u: u}
	}
	v := *u
	v.ForceQuery = false
	s := v.String()
	if v.RawQuery == "" {
		return linkBase{u: u, prefix: s + "?token="}
	}
	return linkBase{u: u, prefix: s + "&token="}
}

// with returns the link carrying token as its "token" query parameter,
// keeping every other parameter.
func (b linkBase) with(token [TokenLen]byte) string {
	if b.prefix != "" {
		var sb strings.Builder // one allocation, where + would make two
		sb.Grow(len(b.prefix) + TokenLen)
		sb.WriteString(b.prefix)
		sb.Write(token[:])
		return sb.String()
	}
	u := *b.u
	q := u.Query()
	q.Set("token", string(token[:]))
	u.RawQuery = q.Encode()
	return u.String()
}
