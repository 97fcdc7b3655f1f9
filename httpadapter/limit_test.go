package httpadapter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/reset/resettest"
)

func TestLimiter(t *testing.T) {
	clock := resettest.NewClock(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	l := newMemLimiter(6, 2, 1000, clock.Now) // one token every 10 s, 2 at once
	allow := func(key string) (bool, time.Duration) {
		ok, wait, err := l.Allow(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		return ok, wait
	}
	for i := range 2 {
		if ok, _ := allow("a"); !ok {
			t.Fatalf("request %d refused", i)
		}
	}
	ok, wait := allow("a")
	if ok || wait != 10*time.Second {
		t.Fatalf("third: %v, wait %v", ok, wait)
	}
	clock.Advance(5 * time.Second)
	if ok, wait := allow("a"); ok || wait != 5*time.Second {
		t.Fatalf("after 5 s: %v, wait %v (a refused request must not count)", ok, wait)
	}
	clock.Advance(5 * time.Second)
	if ok, _ := allow("a"); !ok {
		t.Fatal("refused after the refill")
	}
	if ok, _ := allow("b"); !ok {
		t.Fatal("another client was refused")
	}
	// Idle clients are forgotten once their limiter is full again.
	for i := range 100 {
		allow(fmt.Sprint("client-", i))
	}
	clock.Advance(2 * time.Minute)
	allow("b")
	if n := l.size(); n != 1 {
		t.Fatalf("%d clients tracked after they went idle, want 1", n)
	}
}

func TestLimiterBounded(t *testing.T) {
	clock := resettest.NewClock(time.Time{})
	l := newMemLimiter(60, 60, 50, clock.Now)
	for i := range 10_000 {
		_, _, _ = l.Allow(context.Background(), fmt.Sprint("client-", i))
		if n := l.size(); n > 50 {
			t.Fatalf("%d clients tracked, bound is 50", n)
		}
	}
}

func TestClientIP(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.1:1234":             "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443": "2001:db8:1:2::/64",
		"[::ffff:192.0.2.9]:80":      "192.0.2.9",
		"[fe80::1%eth0]:80":          "fe80::/64",
		"@":                          "@",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = addr
		if got := ClientIP(r); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
}

func TestBasicAuth(t *testing.T) {
	auth, err := BasicAuth("id", "secret")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		set     func(r *http.Request)
		trusted bool
		unauth  bool
	}{
		{set: func(r *http.Request) {}, trusted: false},
		{set: func(r *http.Request) { r.SetBasicAuth("id", "secret") }, trusted: true},
		{set: func(r *http.Request) { r.SetBasicAuth("id", "secreT") }, unauth: true},
		{set: func(r *http.Request) { r.SetBasicAuth("Id", "secret") }, unauth: true},
		{set: func(r *http.Request) { r.SetBasicAuth("", "") }, unauth: true},
		{set: func(r *http.Request) { r.Header.Set("Authorization", "Bearer x") }, unauth: true},
		{set: func(r *http.Request) { r.Header.Set("Authorization", "") }, unauth: true},
	} {
		r := httptest.NewRequest("POST", "/", nil)
		c.set(r)
		trusted, err := auth(r)
		if trusted != c.trusted || errors.Is(err, ErrUnauthorized) != c.unauth {
			t.Errorf("%v: trusted %v, err %v", r.Header, trusted, err)
		}
	}
}

// TestBasicAuthMisconfigured: credentials from an unset environment are
// an error from the constructor, never a panic or a handler that trusts
// an empty secret.
func TestBasicAuthMisconfigured(t *testing.T) {
	for _, c := range []struct{ id, secret, want string }{
		{"", "secret", "client ID is empty"},
		{"id", "", "secret is empty"},
		{"", "", "the client ID is empty and the secret is empty"},
		{"a:b", "secret", "colon"},
	} {
		auth, err := BasicAuth(c.id, c.secret)
		if err == nil || auth != nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("BasicAuth(%q, %q): %v, %v; want an error saying %q", c.id, c.secret, auth != nil, err, c.want)
		}
	}
}
