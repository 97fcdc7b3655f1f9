package main

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// Every phase of a connection has a timeout (hardening #10).
func TestServerTimeouts(t *testing.T) {
	srv := newServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	for name, d := range map[string]time.Duration{
		"ReadHeaderTimeout": srv.ReadHeaderTimeout, "ReadTimeout": srv.ReadTimeout,
		"WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout,
	} {
		if d <= 0 {
			t.Errorf("%s is not set", name)
		}
	}
}

// A client that sends headers announcing a body and never sends it is
// disconnected once ReadTimeout passes (here shortened).
func TestSlowBodyIsCutOff(t *testing.T) {
	srv := newServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := r.Body.Read(make([]byte, 1))
		if err == nil {
			t.Error("read a body that was never sent")
		}
	}), slog.New(slog.DiscardHandler))
	srv.ReadTimeout = 200 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 65536\r\n\r\n")
	// The server ends the connection by itself: reading reaches EOF (or a
	// reset) instead of blocking for ever. The deadline only bounds a
	// broken test.
	c.SetReadDeadline(time.Now().Add(time.Minute))
	_, err = bufio.NewReader(c).ReadString('\n')
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server kept the connection of a client that never sent its body")
	}
}

// /login is rate limited: each attempt is an argon2id comparison.
func TestLoginIsRateLimited(t *testing.T) {
	h := limitLogins(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), rate.Limit(1e-9), 2)
	var codes []int
	for range 3 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/login", strings.NewReader("{}")))
		codes = append(codes, rec.Code)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != http.StatusTooManyRequests {
		t.Fatalf("codes %v, want 200 200 429", codes)
	}
}
