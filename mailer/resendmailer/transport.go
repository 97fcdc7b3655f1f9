package resendmailer

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// maxPeek bounds how much of an error body the transport reads to find
// Resend's error name. Resend's error bodies are a few hundred bytes.
const maxPeek = 64 << 10

// outcome is what the transport saw of one call's HTTP exchange. The SDK
// turns every answer but 429 into a plain string, so Send classifies from
// this instead. One outcome belongs to one call, passed to the transport
// in the request's context. RoundTrip runs on the goroutine that calls the
// SDK; only wrote is set from the transport's writing goroutine.
type outcome struct {
	status     int           // HTTP status of the last response; 0 if none arrived
	name       string        // Resend's error name, for a non-2xx answer
	message    string        // Resend's error message, for a non-2xx answer
	retryAfter time.Duration // from Retry-After, else ratelimit-reset, on a 429; 0 if neither
	limit      int           // the ratelimit-limit header; 0 if absent
	wrote      atomic.Bool   // the whole request was written to the connection
}

type outcomeKey struct{}

// transport wraps the caller's RoundTripper. It makes each call exactly
// one request, records whether the request was written (with
// net/http/httptrace), and records each response's status, error name,
// wait and rate limit into the request's outcome.
type transport struct{ base http.RoundTripper }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	oc, _ := req.Context().Value(outcomeKey{}).(*outcome)
	if oc != nil {
		// A redirect's earlier hop must not count.
		oc.status, oc.name, oc.message, oc.retryAfter, oc.limit = 0, "", "", 0, 0
		oc.wrote.Store(false)
		trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				oc.wrote.Store(true)
			}
		}}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		// Without GetBody, net/http cannot replay the request by itself
		// when an answer is lost on a reused connection (it does so for a
		// request with an Idempotency-Key): one call, one request.
		req.GetBody = nil
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil || oc == nil {
		return resp, err
	}
	now := time.Now()
	oc.status = resp.StatusCode
	if l, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Ratelimit-Limit"))); err == nil && l > 0 && l <= maxLimit {
		oc.limit = l
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		oc.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
		if oc.retryAfter == 0 {
			oc.retryAfter = parseRetryAfter(resp.Header.Get("Ratelimit-Reset"), now)
		}
	}
	// Peek at the error body, then give the SDK the same bytes followed by
	// whatever was not read.
	peek, rerr := io.ReadAll(io.LimitReader(resp.Body, maxPeek))
	var body struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	}
	if json.Unmarshal(peek, &body) == nil {
		oc.name, oc.message = body.Name, body.Message
	}
	if oc.message == "" {
		oc.message = http.StatusText(resp.StatusCode)
	}
	rest := io.Reader(resp.Body)
	if rerr != nil {
		rest = errReader{rerr}
	}
	resp.Body = readCloser{io.MultiReader(bytes.NewReader(peek), rest), resp.Body}
	return resp, nil
}

// maxLimit bounds a ratelimit-limit the Mailer believes, calls a second.
const maxLimit = 10000

type readCloser struct {
	io.Reader
	io.Closer
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// withOutcome returns ctx carrying oc for the transport.
func withOutcome(ctx context.Context, oc *outcome) context.Context {
	return context.WithValue(ctx, outcomeKey{}, oc)
}

// parseRetryAfter reads a Retry-After (or ratelimit-reset) value:
// delay-seconds (Resend's form; a fraction is accepted) or an HTTP date. It returns 0 for an
// absent, malformed or past value.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 || math.IsNaN(s) {
			return 0
		}
		if s > float64(365*24*time.Hour/time.Second) {
			s = float64(365 * 24 * time.Hour / time.Second)
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
