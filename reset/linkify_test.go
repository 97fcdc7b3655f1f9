package reset_test

// The text part of the reset email, read by real linkifiers: linkify-it
// (markdown-it's), linkifyjs and Autolinker, run by Node.js through
// testdata/linkify.mjs. scripts/linkifiers.sh installs them and prints
// PASSRESET_LINKIFIERS; without them the tests skip, and with CI=true they
// fail.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

// linkifierNames are the linkifiers linkify.mjs runs, by the names it
// answers with.
var linkifierNames = []string{"linkify-it", "linkifyjs", "autolinker"}

// linkifiers is one Node.js process running testdata/linkify.mjs: it
// takes a text per line and answers with the links each linkifier finds.
type linkifiers struct {
	mu       sync.Mutex
	in       io.WriteCloser
	out      *bufio.Scanner
	stderr   *bytes.Buffer
	versions string
}

// foundLink is one link a linkifier found: the text it covers and the
// address it opens.
type foundLink struct{ Text, Href string }

// startLinkifiers starts linkify.mjs for the test, or skips the test
// (fails it when CI is "true") if Node.js or the packages are missing.
func startLinkifiers(tb testing.TB) *linkifiers {
	tb.Helper()
	dir := os.Getenv("PASSRESET_LINKIFIERS")
	node, err := exec.LookPath("node")
	if dir == "" || err != nil {
		msg := `needs Node.js and PASSRESET_LINKIFIERS: eval "$(scripts/linkifiers.sh)"`
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	cmd := exec.Command(node, "testdata/linkify.mjs")
	l := &linkifiers{stderr: &bytes.Buffer{}}
	cmd.Stderr = l.stderr
	if l.in, err = cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		l.in.Close()
		if err := cmd.Wait(); err != nil {
			tb.Errorf("linkify.mjs: %v\n%s", err, l.stderr)
		}
	})
	l.out = bufio.NewScanner(stdout)
	l.out.Buffer(nil, 1<<20)
	if !l.out.Scan() {
		tb.Fatalf("linkify.mjs did not start: %v\n%s", l.out.Err(), l.stderr)
	}
	l.versions = l.out.Text()
	return l
}

// find returns the links each linkifier finds in text.
func (l *linkifiers) find(text string) (map[string][]foundLink, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	line, err := json.Marshal(text)
	if err != nil {
		return nil, err
	}
	if _, err := l.in.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("linkify.mjs: %w\n%s", err, l.stderr)
	}
	if !l.out.Scan() {
		return nil, fmt.Errorf("linkify.mjs: no answer: %v\n%s", l.out.Err(), l.stderr)
	}
	var found map[string][]foundLink
	if err := json.Unmarshal(l.out.Bytes(), &found); err != nil {
		return nil, fmt.Errorf("linkify.mjs: %w: %s", err, l.out.Bytes())
	}
	return found, nil
}

// checkOneLink checks that every linkifier finds in text the link whole,
// as one link that opens it, and nothing else but the recipient's
// address: no part of the link becomes a link of its own.
func (l *linkifiers) checkOneLink(t testing.TB, text, link string) {
	t.Helper()
	found, err := l.find(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range linkifierNames {
		whole := 0
		var other []foundLink
		for _, f := range found[name] {
			switch {
			case f.Text == link && f.Href == link:
				whole++
			case f.Text == userEmail && f.Href == "mailto:"+userEmail:
			default:
				other = append(other, f)
			}
		}
		if whole != 1 || len(other) > 0 {
			t.Errorf("%s (%s) split the link %q: found it whole %d times, and also %q in the text part:\n%s",
				name, l.versions, link, whole, other, text)
		}
	}
}

const hostileBase = "https://app.example.com/auth/reset"

// hostileLinks are links under hostileBase with paths and queries built to
// make a linkifier end the link early and start another one at a second
// host, or to change what the link means.
func hostileLinks() []string {
	links := []string{
		hostileBase + "?x=)https://evil.example/?", // issue 22: linkify-it ends at ")"
		hostileBase + "/x)evil.com/?y=1",
		hostileBase + "?x=a..-evil.com/", // linkify-it ends at ".." before "-", "_", "~", "="
		hostileBase + "?x..=evil.com",
		hostileBase + "/a..-b/c?x=1",
		hostileBase + "?x=a---evil.com/",
		hostileBase + "?x=...",
		hostileBase + "?token=attacker&x=)https://evil.example/?",
		hostileBase + "?tok%65n=attacker&y=2",
		hostileBase + "?x=a+b&y=+https://evil.example/?",
		hostileBase + "?next=https://evil.example/path?a=b&c=d",
		hostileBase + "?x=https://evil.example/@app.example.com",
		hostileBase + "?x=mailto:a@evil.example",
		hostileBase + "?x=www.evil.com",
		hostileBase + "?x=evil.com:443/",
		hostileBase + "?x=1;y=https://evil.example/?",
		hostileBase + "?x=%29https://evil.example/?",
		hostileBase + "?x=%20https://evil.example/?",
		hostileBase + "?x=%0Ahttps://evil.example/?",
		hostileBase + "?x=%E2%80%AEhttps://evil.example/?",
		hostileBase + "?x=%2",
		hostileBase + "?x=%%29",
		hostileBase + "/%E2%80%AE/?x=1",
		hostileBase + "?x=\uff09https://evil.example/?", // fullwidth ")"
		hostileBase + "?x=\u202ehttps://evil.example/?", // right-to-left override
		hostileBase + "?x=\u00e9",
		hostileBase + "/\u00e9/",
		hostileBase + "?x=\u3000https://evil.example/?",
		hostileBase + "?x=\u00a0https://evil.example/?",
		hostileBase + "?x= https://evil.example/?",
		hostileBase + "?x=\thttps://evil.example/?",
		hostileBase + "?x=\nhttps://evil.example/?",
		hostileBase + "?x=\r\nhttps://evil.example/?",
	}
	// Every sub-delimiter and every other character of RFC 3986's
	// gen-delims, quotes, angle brackets, brackets and the characters it
	// excludes, in a query value, a key and a path.
	for _, c := range "!$&'()*+,;=:@/?#[]\"<>{}|\\^`%" {
		s := string(c)
		links = append(links,
			hostileBase+"?x="+s+"https://evil.example/?",
			hostileBase+"?x=a"+s+"evil.com/",
			hostileBase+"?x"+s+"=evil.com/",
			hostileBase+"/x"+s+"evil.com/?",
			hostileBase+"?x=\""+s+"https://evil.example/"+s+"\"")
	}
	return links
}

// TestTextEmailLinkIsOneLinkForEveryLinkifier sends a public request with
// each hostile link and reads the text part of the email with real
// linkifiers: each finds the link whole, as one link, or the link was
// refused.
func TestTextEmailLinkIsOneLinkForEveryLinkifier(t *testing.T) {
	l := startLinkifiers(t)
	e := newEnv(t, func(c *reset.Config) {
		c.Product = "Acme"
		c.Cooldown = -1
		c.DailyLimit = -1 // one address asks for every hostile link
		c.AllowedLinks = append(c.AllowedLinks, hostileBase)
	})
	sent, refused := 0, 0
	for _, link := range hostileLinks() {
		err := e.svc.Request(t.Context(), userEmail, link)
		if errors.Is(err, reset.ErrLinkNotAllowed) {
			refused++
			continue
		}
		if err != nil {
			t.Fatalf("Request with %q: %v", link, err)
		}
		sent++
		msgs, err := e.mailer.Wait(t.Context(), sent)
		if err != nil {
			t.Fatal(err)
		}
		text := msgs[sent-1].Text
		issued := issuedLink(t, text)
		checkSameLink(t, link, issued)
		l.checkOneLink(t, text, issued)
	}
	t.Logf("%d links sent, %d refused; %s", sent, refused, l.versions)
	if sent < 50 {
		t.Errorf("only %d of the hostile links were accepted: the test proves little", sent)
	}
}

// TestInvitationLinkIsOneLinkForEveryLinkifier: the invitation's link,
// whose token carries its purpose prefix ("inv."), is found whole, as one
// link, by the three linkifiers, under the hostile links too.
func TestInvitationLinkIsOneLinkForEveryLinkifier(t *testing.T) {
	l := startLinkifiers(t)
	e := newEnv(t, func(c *reset.Config) {
		c.Product = "Acme" // not the host, which a linkifier would find in the text too
		c.AllowedLinks = append(c.AllowedLinks, hostileBase)
	})
	sent := 0
	for _, link := range append([]string{""}, hostileLinks()...) {
		_, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail, Link: link, Purpose: reset.PurposeInvite, Wait: true})
		if errors.Is(err, reset.ErrLinkNotAllowed) {
			continue
		}
		if err != nil {
			t.Fatalf("RequestTrusted with %q: %v", link, err)
		}
		sent++
		msgs := e.mailer.Messages()
		m := msgs[len(msgs)-1]
		issued := issuedLink(t, m.Text)
		if m.Kind != reset.KindInvite || !strings.Contains(issued, "token=inv.") {
			t.Fatalf("not an invitation's link: %s %q", m.Kind, issued)
		}
		l.checkOneLink(t, m.Text, issued)
	}
	if sent < 50 {
		t.Errorf("only %d invitations sent: the test proves little", sent)
	}
}

// issuedLink returns the line of the text part that holds the token.
func issuedLink(t testing.TB, text string) string {
	t.Helper()
	for line := range strings.Lines(text) {
		if strings.Contains(line, "token=") {
			return strings.TrimSpace(line)
		}
	}
	t.Fatalf("no link in the text part:\n%s", text)
	return ""
}

// checkSameLink checks that issued is link with the token added: the
// same scheme, host and path, the same query parameters for net/url
// (every "token" of link's replaced by the token), and the token last.
func checkSameLink(t testing.TB, link, issued string) {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	v, err := url.Parse(issued)
	if err != nil {
		t.Fatalf("issued link %q does not parse: %v", issued, err)
	}
	got := v.Query()
	tok := got.Get("token")
	if !strings.HasSuffix(issued, "&token="+tok) && !strings.HasSuffix(issued, "?token="+tok) || len(tok) != reset.TokenLen {
		t.Errorf("the token is not the last parameter of %q", issued)
	}
	if v.Scheme != u.Scheme || v.Host != strings.ToLower(u.Host) || v.Path != u.Path || v.User != nil || v.Fragment != "" {
		t.Errorf("issued %q for %q: the scheme, host or path changed (%q, %q)", issued, link, v.Path, u.Path)
	}
	want, err := url.ParseQuery(u.RawQuery)
	if err != nil { // a ";" net/url refuses: compare what it read
		want = u.Query()
	}
	if !slices.Equal(got["token"], []string{tok}) {
		t.Errorf("issued %q: token parameters %q", issued, got["token"])
	}
	delete(want, "token")
	delete(got, "token")
	if err == nil && !equalValues(got, want) {
		t.Errorf("issued %q for %q: query %v, want %v", issued, link, got, want)
	}
	for _, c := range []byte(v.RawQuery + v.EscapedPath()) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~%=&/", c) >= 0) {
			t.Errorf("issued %q: %q outside the unreserved characters, %%, =, & and /", issued, c)
		}
	}
	if strings.Contains(issued, "..") {
		t.Errorf("issued %q: a run of dots", issued)
	}
}

func equalValues(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// FuzzTextEmailLink feeds random paths and queries under an allowed link
// and checks, with the three linkifiers, that the text part of the email
// holds the link as one whole link that means what the caller's did.
func FuzzTextEmailLink(f *testing.F) {
	for _, link := range hostileLinks() {
		rest := strings.TrimPrefix(link, hostileBase)
		path, query, _ := strings.Cut(rest, "?")
		f.Add(path, query)
	}
	l := startLinkifiers(f)
	mailer := &resettest.Mailer{}
	users := &resettest.Users{}
	users.Add(userID, userEmail, oldPass)
	svc, err := reset.New(reset.Config{KeepSessions: true, Store: memstore.New(), Users: users, Mailer: mailer, Product: "Acme",
		ResetURL: hostileBase, AllowedLinks: []string{hostileBase}, Workers: 1, QueueSize: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { svc.Shutdown(f.Context()) })
	f.Fuzz(func(t *testing.T, path, query string) {
		link := hostileBase + path
		if query != "" {
			link += "?" + query
		}
		if reset.CheckLink(svc, link) != nil {
			return
		}
		n := len(mailer.Messages())
		if _, err := svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail, Link: link, Wait: true}); err != nil {
			t.Fatalf("RequestTrusted with %q: %v", link, err)
		}
		text := mailer.Messages()[n].Text
		issued := issuedLink(t, text)
		checkSameLink(t, link, issued)
		l.checkOneLink(t, text, issued)
	})
}
