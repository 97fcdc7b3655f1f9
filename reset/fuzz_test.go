package reset_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

func FuzzCheckLink(f *testing.F) {
	for _, s := range []string{"https://anywhere.com/", "https://anywhere.com/reset?x=1", "https://ANYWHERE.com/a",
		"https://anywhere.com:443/", "https://anywhere.com@evil.com/", "https://evil.com\\@anywhere.com/",
		"https://anywhere.com/%2e%2e/x", "http://127.0.0.1:8080/app/reset", "http://127.0.0.1:8080/app/reset/../../x",
		"https://anywhere.com/#x", "https://anywhere.com/\x00", "https://anywhere.com./", "HTTPS://anywhere.com/",
		"https://anyw\u0130here.com/", "https://anyw%C4%B0here.com/", "https://anywhere.com//x", "https://anywhere.com/a;b",
		"https://anywhere.com/%252e%252e/", "https://anywhere.com/?a=<b>", "https://xn--anywhre-0ya.com/"} {
		f.Add(s)
	}
	users := &resettest.Users{}
	users.Add(userID, userEmail, oldPass)
	svc, err := reset.New(reset.Config{KeepSessions: true, Store: memstore.New(), Users: users, Mailer: &resettest.Mailer{},
		ResetURL:     "https://app.example.com/reset",
		AllowedLinks: []string{"https://anywhere.com/", "http://127.0.0.1:8080/app/reset"}, Workers: 1, QueueSize: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { svc.Shutdown(f.Context()) })
	f.Fuzz(func(t *testing.T, s string) {
		if reset.CheckLink(svc, s) != nil {
			return
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("accepted unparsable %q", s)
		}
		for _, c := range []byte(u.Host + u.RawQuery) {
			if c >= 0x80 || strings.IndexByte("<>\"{}|\\^`", c) >= 0 {
				t.Fatalf("accepted %q: a host or query with non-ASCII or unsafe characters", s)
			}
		}
		p := u.EscapedPath()
		if strings.Contains(p, "//") || strings.Contains(p, ";") || strings.Contains(strings.ToLower(p), "%25") {
			t.Fatalf("accepted %q: empty segment, parameter or double encoding in the path", s)
		}
		switch {
		case u.User != nil, u.Fragment != "", strings.ContainsAny(s, "\\\x00\r\n\t #"):
			t.Fatalf("accepted %q with userinfo, fragment or odd characters", s)
		case u.Scheme == "https" && strings.ToLower(u.Host) == "anywhere.com":
		case u.Scheme == "http" && u.Host == "127.0.0.1:8080" &&
			(u.EscapedPath() == "/app/reset" || strings.HasPrefix(u.EscapedPath(), "/app/reset/")):
			// A dot segment is a whole segment, "." or "..", written
			// plainly or percent-encoded; "..0" is an ordinary name (the
			// fuzzer found it).
			for _, seg := range strings.Split(u.EscapedPath(), "/") {
				if d, err := url.PathUnescape(seg); err != nil || d == "." || d == ".." {
					t.Fatalf("accepted dot segments in %q", s)
				}
			}
		default:
			t.Fatalf("accepted %q outside the allowlist (scheme %q host %q path %q)", s, u.Scheme, u.Host, u.EscapedPath())
		}
		// The reset link means the same, holds nothing a linkifier ends a
		// link at, and has the token last.
		iss, err := svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail, Link: s, SkipSend: true})
		if err != nil {
			t.Fatal(err)
		}
		checkSameLink(t, s, iss.Link)
	})
}
