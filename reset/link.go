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
	return linkRule{scheme: u.Scheme, host: strings.ToLower(u.Host), path: p}, nil
}

// checkLinkShape holds the rules every link must meet, allowlisted or not:
// absolute http(s) with a host, http only for loopback hosts, no userinfo, no
// fragment, no control characters, backslashes or dot segments.
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
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return fmt.Errorf("scheme must be https (http is allowed for loopback hosts only)")
	}
	p := u.EscapedPath()
	if strings.ContainsAny(p, "\\") || strings.Contains(strings.ToLower(p), "%2f") ||
		strings.Contains(strings.ToLower(p), "%5c") || strings.Contains(strings.ToLower(p), "%2e") {
		return fmt.Errorf("path must not contain escaped slashes, dots or backslashes")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("path must not contain dot segments")
		}
	}
	return nil
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
	if u.Scheme != r.scheme || strings.ToLower(u.Host) != r.host {
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
