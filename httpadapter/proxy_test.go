package httpadapter

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
)

func TestTrustedProxies(t *testing.T) {
	xff, err := TrustedProxies("X-Forwarded-For", "10.0.0.0/8", "192.0.2.10")
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := TrustedProxies("forwarded", "10.0.0.0/8", "2001:db8:ffff::/48")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		peer   string
		header []string // values of the header the key reads
		want   string
	}{
		{name: "xff: one proxy", peer: "10.1.2.3:5000", header: []string{"198.51.100.7"}, want: "198.51.100.7"},
		{name: "xff: spoofed entries on the left", peer: "10.1.2.3:5000", header: []string{"1.1.1.1, 2.2.2.2, 198.51.100.7"}, want: "198.51.100.7"},
		{name: "xff: two trusted proxies", peer: "10.1.2.3:5000", header: []string{"6.6.6.6, 198.51.100.7, 192.0.2.10"}, want: "198.51.100.7"},
		{name: "xff: over two lines", peer: "10.1.2.3:5000", header: []string{"6.6.6.6", "198.51.100.7, 10.9.9.9"}, want: "198.51.100.7"},
		{name: "xff: untrusted peer, header ignored", peer: "203.0.113.5:5000", header: []string{"198.51.100.7"}, want: "203.0.113.5"},
		{name: "xff: no header", peer: "10.1.2.3:5000", want: "10.1.2.3"},
		{name: "xff: garbage right-most", peer: "10.1.2.3:5000", header: []string{"198.51.100.7, nonsense"}, want: "10.1.2.3"},
		{name: "xff: all trusted", peer: "10.1.2.3:5000", header: []string{"10.4.4.4"}, want: "10.4.4.4"},
		{name: "xff: IPv6 client with port", peer: "10.1.2.3:5000", header: []string{"[2001:db8:1:2::9]:4711"}, want: "2001:db8:1:2::/64"},
		{name: "xff: IPv4-mapped peer", peer: "[::ffff:10.1.2.3]:5000", header: []string{"198.51.100.7"}, want: "198.51.100.7"},
	} {
		checkKey(t, c.name, xff, "X-Forwarded-For", c.peer, c.header, c.want)
	}
	for _, c := range []struct {
		name   string
		peer   string
		header []string
		want   string
	}{
		{name: "one proxy", peer: "10.1.2.3:5000", header: []string{"for=198.51.100.7;proto=https"}, want: "198.51.100.7"},
		{name: "spoofed element", peer: "10.1.2.3:5000", header: []string{`for=1.1.1.1, for="198.51.100.7:80";by=10.1.2.3`}, want: "198.51.100.7"},
		{name: "IPv6 quoted", peer: "[2001:db8:ffff::1]:443", header: []string{`For="[2001:db8:1:2::9]:4711"`}, want: "2001:db8:1:2::/64"},
		{name: "unterminated quote from the client", peer: "10.1.2.3:5000", header: []string{`for="1.1.1.1`, "for=198.51.100.7"}, want: "198.51.100.7"},
		{name: "obfuscated", peer: "10.1.2.3:5000", header: []string{"for=_hidden"}, want: "10.1.2.3"},
		{name: "untrusted peer", peer: "198.51.100.99:5000", header: []string{"for=1.1.1.1"}, want: "198.51.100.99"},
	} {
		checkKey(t, "forwarded: "+c.name, fwd, "Forwarded", c.peer, c.header, c.want)
	}
	// The other header is never read.
	checkKey(t, "xff key ignores Forwarded", xff, "Forwarded", "10.1.2.3:5000", []string{"for=1.1.1.1"}, "10.1.2.3")
	checkKey(t, "forwarded key ignores X-Forwarded-For", fwd, "X-Forwarded-For", "10.1.2.3:5000", []string{"1.1.1.1"}, "10.1.2.3")
}

func checkKey(t *testing.T, name string, key func(*http.Request) string, header, peer string, values []string, want string) {
	t.Helper()
	r := httptest.NewRequest("POST", PasswordLostPath, nil)
	r.RemoteAddr = peer
	for _, v := range values {
		r.Header.Add(header, v)
	}
	if got := key(r); got != want {
		t.Errorf("%s: key %q, want %q", name, got, want)
	}
}

func TestTrustedProxiesMisconfigured(t *testing.T) {
	for _, c := range []struct {
		header  string
		trusted []string
	}{
		{"X-Real-IP", []string{"10.0.0.0/8"}},
		{"X-Forwarded-For", nil},
		{"X-Forwarded-For", []string{"10.0.0.0/33"}},
		{"Forwarded", []string{"proxy.internal"}},
	} {
		if key, err := TrustedProxies(c.header, c.trusted...); err == nil || key != nil {
			t.Errorf("TrustedProxies(%q, %q) accepted", c.header, c.trusted)
		}
	}
}

// TestRateLimitBehindProxy: behind a trusted proxy, 100 people get 100
// answers, each counted on its own; a client of the proxy cannot escape
// its limit by forging the header; and a direct client's forged header is
// ignored.
func TestRateLimitBehindProxy(t *testing.T) {
	key, err := TrustedProxies("X-Forwarded-For", "10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(_ *reset.Config, o *Options) { o.RateLimit, o.ClientKey = 2, key })
	send := func(peer, xff string) int {
		r := httptest.NewRequest("POST", CheckPath, strings.NewReader(`{"confirmationToken":"x"}`))
		r.Header.Set("Content-Type", "application/json")
		r.RemoteAddr = peer
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		return e.do(public, r).Code
	}
	for i := range 100 {
		if code := send("10.0.0.1:443", fmt.Sprintf("198.51.100.%d", i)); code != 400 {
			t.Fatalf("person %d behind the proxy: %d", i, code)
		}
	}
	// One person, forging a header the proxy appends to.
	for i := range 2 {
		send("10.0.0.1:443", fmt.Sprintf("6.6.6.%d, 203.0.113.9", i))
	}
	if code := send("10.0.0.1:443", "6.6.6.99, 203.0.113.9"); code != 429 {
		t.Errorf("a forged header escaped the limit: %d", code)
	}
	// A direct client, forging the header.
	for i := range 2 {
		send("203.0.113.50:1000", fmt.Sprintf("6.6.7.%d", i))
	}
	if code := send("203.0.113.50:1000", "6.6.7.99"); code != 429 {
		t.Errorf("a direct client escaped the limit with a forged header: %d", code)
	}
	if strings.Contains(e.logs.String(), "look proxied") {
		t.Errorf("warned with a ClientKey set: %s", e.logs)
	}
}

// TestProxiedWarning: with the default ClientKey, requests from one peer
// forwarding for many addresses log one warning.
func TestProxiedWarning(t *testing.T) {
	e := newEnv(t)
	for i := range 50 {
		r := httptest.NewRequest("POST", CheckPath, strings.NewReader(`{"confirmationToken":"x"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
		e.do(public, r)
		e.clock.Advance(time.Second) // stay under the rate limit
	}
	if n := strings.Count(e.logs.String(), "look proxied"); n != 1 {
		t.Errorf("%d warnings, want 1: %s", n, e.logs)
	}
	if !strings.Contains(e.logs.String(), "TrustedProxies") {
		t.Errorf("the warning does not say what to set: %s", e.logs)
	}
}

// TestNoProxiedWarningForOneClient: one client that sends the same header
// is not a proxy.
func TestNoProxiedWarningForOneClient(t *testing.T) {
	e := newEnv(t)
	for range 20 {
		r := httptest.NewRequest("POST", CheckPath, strings.NewReader(`{"confirmationToken":"x"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Forwarded-For", "198.51.100.1")
		e.do(public, r)
	}
	if strings.Contains(e.logs.String(), "look proxied") {
		t.Errorf("warned: %s", e.logs)
	}
}
