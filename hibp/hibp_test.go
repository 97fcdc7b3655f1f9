package hibp_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/passreset/passreset/hibp"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/password"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

// rangeAPI is a local stand-in that behaves as api.pwnedpasswords.com's
// /range/{prefix} does: it answers only GET of a 5-character hex prefix
// (400 otherwise), lists "SUFFIX:COUNT" lines with CRLF for the breached
// hashes under the prefix, and with Add-Padding adds decoy lines of count
// 0. It records every path it was asked, to prove only prefixes leave.
type rangeAPI struct {
	mu      sync.Mutex
	counts  map[string]int // full upper-case SHA-1 -> count
	asked   []string
	padded  []bool
	status  int  // when set, every answer has this status
	garbage bool // answer a malformed body
	block   chan struct{}
}

func sha(pw string) string {
	s := sha1.Sum([]byte(pw))
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

func (a *rangeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.asked = append(a.asked, r.URL.RawQuery+r.URL.Path)
	a.padded = append(a.padded, r.Header.Get("Add-Padding") == "true")
	status, garbage, block := a.status, a.garbage, a.block
	a.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-r.Context().Done():
			return
		}
	}
	prefix, ok := strings.CutPrefix(r.URL.Path, "/range/")
	if r.Method != http.MethodGet || !ok || len(prefix) != 5 || strings.Trim(strings.ToUpper(prefix), "0123456789ABCDEF") != "" {
		http.Error(w, "The hash prefix was not in a valid format", http.StatusBadRequest)
		return
	}
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	if garbage {
		fmt.Fprint(w, "<html>not the API</html>\r\n")
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for h, n := range a.counts {
		if strings.HasPrefix(h, strings.ToUpper(prefix)) {
			fmt.Fprintf(w, "%s:%d\r\n", h[5:], n)
		}
	}
	if r.Header.Get("Add-Padding") == "true" {
		for i := range 3 {
			fmt.Fprintf(w, "%035X:0\r\n", i+1)
		}
	}
}

func newAPI(t *testing.T, counts map[string]int) (*rangeAPI, *hibp.Checker) {
	a := &rangeAPI{counts: map[string]int{}}
	for pw, n := range counts {
		a.counts[sha(pw)] = n
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return a, &hibp.Checker{URL: srv.URL + "/range/", Client: srv.Client()}
}

func TestBreached(t *testing.T) {
	a, c := newAPI(t, map[string]int{"P@ssw0rd-leaked-2019": 3, "only once leaked": 1})
	// A password sharing the prefix of a breached one, but not its suffix.
	for pw, want := range map[string]bool{
		"P@ssw0rd-leaked-2019":         true,
		"only once leaked":             true,
		"correct horse battery staple": false,
	} {
		got, err := c.Breached(t.Context(), pw)
		if err != nil || got != want {
			t.Errorf("Breached(%q) = %v, %v; want %v", pw, got, err, want)
		}
	}
	// Only 5-character prefixes left the process, each with Add-Padding.
	for i, p := range a.asked {
		if len(p) != len("/range/")+5 || !a.padded[i] {
			t.Errorf("asked %q (padding %v)", p, a.padded[i])
		}
		for _, pw := range []string{"P@ssw0rd-leaked-2019", "only once leaked", "correct horse battery staple"} {
			if strings.Contains(p, sha(pw)[5:10]) || strings.Contains(p, pw) {
				t.Errorf("%q reveals more than the prefix", p)
			}
		}
	}
	c.MinCount = 2
	if got, _ := c.Breached(t.Context(), "only once leaked"); got {
		t.Error("MinCount 2: a password breached once is refused")
	}
}

// A failing API: fail closed by default (the error, ErrUnavailable);
// fail open when asked (false, nil), and OnError hears of it either way.
func TestFailures(t *testing.T) {
	for name, breakIt := range map[string]func(*rangeAPI){
		"503":       func(a *rangeAPI) { a.status = http.StatusServiceUnavailable },
		"429":       func(a *rangeAPI) { a.status = http.StatusTooManyRequests },
		"malformed": func(a *rangeAPI) { a.garbage = true },
		"timeout":   func(a *rangeAPI) { a.block = make(chan struct{}) },
	} {
		t.Run(name, func(t *testing.T) {
			a, c := newAPI(t, nil)
			breakIt(a)
			if a.block != nil {
				defer close(a.block)
				c.Timeout = 1 // a nanosecond: the deadline passes at once
			}
			var heard []error
			c.OnError = func(err error) { heard = append(heard, err) }
			if got, err := c.Breached(t.Context(), "any passphrase"); got || !errors.Is(err, hibp.ErrUnavailable) {
				t.Errorf("fail closed: %v, %v; want ErrUnavailable", got, err)
			}
			c.FailOpen = true
			if got, err := c.Breached(t.Context(), "any passphrase"); got || err != nil {
				t.Errorf("fail open: %v, %v; want false, nil", got, err)
			}
			if len(heard) != 2 {
				t.Errorf("OnError heard %d failures, want 2", len(heard))
			}
		})
	}
}

// Wired into a Service, a breached password is refused as a
// PasswordError with code breached, and the token stays usable.
func TestWithService(t *testing.T) {
	_, c := newAPI(t, map[string]int{"a breached passphrase": 42})
	users := &resettest.Users{}
	users.Add("u1", "jborder@anywhere.com", "an old passphrase")
	svc, err := reset.New(reset.Config{
		Store: memstore.New(), Users: users, Mailer: &resettest.Mailer{},
		ResetURL: "https://app.example.com/reset", BreachedPasswords: c, KeepSessions: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Shutdown(context.Background()) })
	iss, err := svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: "jborder@anywhere.com", SkipSend: true})
	if err != nil {
		t.Fatal(err)
	}
	tok := resettest.Token(iss.Link)
	_, err = svc.Complete(context.Background(), reset.Completion{Token: tok, Password: "a breached passphrase"})
	if pe, ok := errors.AsType[*password.Error](err); !ok || pe.Code != password.Breached {
		t.Fatalf("Complete = %v, want a breached PasswordError", err)
	}
	if _, err := svc.Complete(context.Background(), reset.Completion{Token: tok, Password: "a fresh unleaked passphrase"}); err != nil {
		t.Fatalf("the link stopped working: %v", err)
	}
	if users.Password("u1") != "a fresh unleaked passphrase" {
		t.Error("password not changed")
	}
}
