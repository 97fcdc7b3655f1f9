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
// non-ASCII) is not part of a URL.
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
//
// The reset link made from an accepted link means the same to an
// application that reads it with net/url, but is written so that no
// linkifier can end it early: every character of its path and query
// outside RFC 3986's unreserved set, "/", "=" and "&" is percent-encoded,
// and so is each dot of a run of two or more; a "token" parameter of the
// link is dropped, and the token is the last parameter.
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

// linkBase is a validated link ready to take a token: the link up to the
// token's value.
type linkBase struct{ prefix string }

// newLinkBase prepares u, a link checkLinkShape passed, to take a token.
// It writes the link so that no linkifier can end it early: every
// character of the path and the query outside RFC 3986's unreserved set
// (and "/" between segments, "=" and "&" between parameters) is
// percent-encoded, and so is every dot of a run of two or more (see
// escapeLinkPart). The link stays equivalent for an application that
// reads it with net/url: the same decoded path, the same query
// parameters in the same order (a "+" was a space and stays one, as
// "%20"). Every "token" parameter of u is dropped, and the token comes
// last.
func newLinkBase(u *url.URL) linkBase {
	if u == nil {
		return linkBase{}
	}
	var b strings.Builder
	b.WriteString(u.Scheme + "://" + u.Host)
	if p := u.EscapedPath(); p != "" {
		for i, seg := range strings.Split(p, "/") {
			if i > 0 {
				b.WriteByte('/')
			}
			if d, err := url.PathUnescape(seg); err == nil { // checkLinkShape passed it
				seg = d
			}
			b.WriteString(escapeLinkPart(seg))
		}
	}
	sep := byte('?')
	for _, pair := range strings.Split(u.RawQuery, "&") {
		k, v, hasValue := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if pair == "" || k == "token" || err1 != nil || err2 != nil { // validQuery refused bad escapes
			continue
		}
		b.WriteByte(sep)
		sep = '&'
		b.WriteString(escapeLinkPart(k))
		if hasValue {
			b.WriteString("=" + escapeLinkPart(v))
		}
	}
	b.WriteByte(sep)
	b.WriteString("token=")
	return linkBase{prefix: b.String()}
}

// escapeLinkPart percent-encodes a decoded path segment, query key or
// value: every byte outside RFC 3986's unreserved set (letters, digits,
// "-", ".", "_", "~"), and each dot of a run of two or more, at which
// linkify-it ends a link when "-", "_", "~" or "=" follows.
func escapeLinkPart(s string) string {
	e := strings.ReplaceAll(url.QueryEscape(s), "+", "%20") // QueryEscape writes a space as "+", and a "+" as "%2B"
	if !strings.Contains(e, "..") {
		return e
	}
	var b strings.Builder
	for i := 0; i < len(e); i++ {
		if e[i] == '.' && (i > 0 && e[i-1] == '.' || i+1 < len(e) && e[i+1] == '.') {
			b.WriteString("%2E")
		} else {
			b.WriteByte(e[i])
		}
	}
	return b.String()
}

// with returns the link carrying token, after its purpose prefix pre
// (empty for a reset), as its last query parameter.
func (b linkBase) with(pre string, token [TokenLen]byte) string {
	var sb strings.Builder // one allocation, where + would make two
	sb.Grow(len(b.prefix) + len(pre) + TokenLen)
	sb.WriteString(b.prefix)
	sb.WriteString(pre)
	sb.Write(token[:])
	return sb.String()
}
