package httpadapter

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/passreset/passreset/reset/resettest"
)

func TestLimiter(t *testing.T) {
	clock := resettest.NewClock(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	l := newLimiter(6, 2, 1000, clock.Now) // one token every 10 s, 2 at once
	for i := range 2 {
		if ok, _ := l.allow("a"); !ok {
			t.Fatalf("request %d refused", i)
		}
	}
	ok, wait := l.allow("a")
	if ok || wait != 10*time.Second {
		t.Fatalf("third: %v, wait %v", ok, wait)
	}
	clock.Advance(5 * time.Second)
	if ok, wait := l.allow("a"); ok || wait != 5*time.Second {
		t.Fatalf("after 5 s: %v, wait %v", ok, wait)
	}
	clock.Advance(5 * time.Second)
	if ok, _ := l.allow("a"); !ok {
		t.Fatal("refused after the refill")
	}
	// Idle clients are forgotten once their bucket is full again.
	for i := range 100 {
		l.allow(fmt.Sprint("client-", i))
	}
	clock.Advance(2 * time.Minute)
	l.allow("b")
	if n := l.size(); n != 1 {
		t.Fatalf("%d clients tracked after they went idle, want 1", n)
	}
}

func TestLimiterBounded(t *testing.T) {
	clock := resettest.NewClock(time.Time{})
	l := newLimiter(60, 60, 50, clock.Now)
	for i := range 10_000 {
		l.allow(fmt.Sprint("client-", i))
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
	auth := BasicAuth("id", "secret")
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
	defer func() {
		if recover() == nil {
			t.Error("BasicAuth with an empty secret did not panic")
		}
	}()
	BasicAuth("id", "")
}
