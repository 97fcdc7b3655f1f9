package resendmailer

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxPeek bounds how much of an error body the transport reads to find
// Resend's error name. Resend's error bodies are a few hundred bytes.
const maxPeek = 64 << 10

// outcome is what the transport saw of one attempt's HTTP exchange. The
// SDK turns every answer but 429 into a plain string, so Send classifies
// from this instead. One outcome belongs to one attempt, passed to the
// transport in the request's context: RoundTrip runs on the goroutine
// that calls the SDK, so no locking is needed.
type outcome struct {
	status     int           // HTTP status of the last response; 0 if none arrived
	name       string        // Resend's error name, for a non-2xx answer
	message    string        // Resend's error message, for a non-2xx answer
	retryAfter time.Duration // from a Retry-After header; 0 if none
}

type outcomeKey struct{}

// transport wraps the caller's RoundTripper and records each response's
// status, error name and Retry-After into the request's outcome.
type transport struct{ base http.RoundTripper }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	oc, _ := req.Context().Value(outcomeKey{}).(*outcome)
	if oc != nil {
		*oc = outcome{} // a redirect's earlier hop must not count
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil || oc == nil {
		return resp, err
	}
	oc.status = resp.StatusCode
	oc.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
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

// parseRetryAfter reads a Retry-After value: delay-seconds (Resend's
// form; a fraction is accepted) or an HTTP date. It returns 0 for an
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
