// Package resendtest provides a fake Resend API for tests: an HTTP server
// that answers POST /emails and POST /emails/batch the way Resend does
// according to its OpenAPI description and error reference, records what
// it accepts, counts what it sees, and lets a test inject failures,
// delays, lost connections, refused recipients and a rate limit, also
// while a client is using it.
//
// It is stricter than Resend where strictness finds bugs: it rejects
// top-level fields the API does not define. What it checks:
//
//   - only POST /emails and POST /emails/batch exist: other paths answer
//     404 not_found, other methods 405 method_not_allowed;
//   - Authorization: Bearer with one of the server's keys; a missing header
//     answers 401 missing_api_key, another key 403 invalid_api_key;
//   - an Idempotency-Key of 1 to 256 characters, else 400
//     invalid_idempotency_key;
//   - a JSON object body (else 400 validation_error) with from, to and
//     subject and one of html, text or template (else 422
//     missing_required_field); from, to (a string or an array of 1 to 50),
//     cc, bcc and reply_to must be addresses like a@example.com or
//     Name <a@example.com> (422 invalid_from_address, validation_error);
//     tags must be {name, value} of ASCII letters, digits, '_' and '-'
//     (422 validation_error); attachments need content or path (422
//     invalid_attachment);
//   - for POST /emails/batch, a JSON array of 1 to 100 such objects (else
//     400 or 422 validation_error) and an x-batch-validation header of
//     strict (the default) or permissive (else 422 validation_error). In
//     strict mode one invalid email refuses the whole batch with that
//     email's error, its index in the message; in permissive mode the
//     valid emails are sent and each invalid one is reported in errors;
//   - idempotency, for both endpoints: the same key and body within 24
//     hours answers the first answer again and sends nothing; the same key
//     with another body (or on the other endpoint) answers 409
//     invalid_idempotent_request; while the first request with a key is
//     being processed, another answers 409 concurrent_idempotent_requests.
//
// POST /emails answers 200 {"id": "<uuid>"}; POST /emails/batch answers
// 200 {"data": [{"id": "<uuid>"}, ...]} with one entry per email sent, in
// the order of the request, and in permissive mode, when some emails were
// invalid, "errors": [{"index": i, "message": "..."}] (index in the
// request's array). Every error answers
// {"statusCode": N, "message": "...", "name": "..."}.
//
// Faults: [Server.SetFaultMode] switches, at any time and for every
// request (or every n-th) until changed, between answering 500, hanging
// until the client gives up, dropping the connection before doing the
// work, and doing the work (the emails recorded under the idempotency key)
// and then dropping the connection, the fault after which a client must
// not send the email again under another key; [Stats].Faults counts them.
// [Server.SetHook] decides a fault per request, [Server.Fail] answers an
// error to the next n requests. Rate limits: [Server.SetRateLimit] (fixed
// windows) and [Server.SetSlidingRateLimit] (a sliding window that counts
// refused requests too), with Resend's ratelimit-* and retry-after
// headers; [Server.SetClock] makes them deterministic in tests.
//
// Webhooks: with [Server.SetWebhook], every accepted email queues the
// events Resend would post about it, signed as Resend signs them (Svix),
// and [Server.DeliverWebhooks] posts them; see webhook.go's
// [Server.SetWebhook] for which events.
//
// [NewServer] starts one on a loopback port. A [Server] is also an
// [http.Handler], so a program can serve it on an address of its choice:
//
//	log.Fatal(http.ListenAndServe("127.0.0.1:8025", resendtest.New()))
package resendtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"time"
)

// APIKey is the key a new Server accepts; change it with SetAPIKey, or
// accept more with AddAPIKey.
const APIKey = "re_test_resendtest_key"

// MaxBatch is the most emails POST /emails/batch takes in one request.
const MaxBatch = 100

// idempotencyTTL is how long Resend remembers an idempotency key.
const idempotencyTTL = 24 * time.Hour

// maxBody bounds a request body, as Resend bounds an email with its
// attachments (40 MB).
const maxBody = 40 << 20

// Email is one email the server accepted.
type Email struct {
	ID             string            // the id the server answered
	IdempotencyKey string            // the Idempotency-Key header of its request, or ""
	Batch          bool              // whether it came through POST /emails/batch
	From           string            // as sent
	To             []string          // as sent; a single string becomes one element
	Cc, Bcc        []string          // as sent
	ReplyTo        []string          // as sent; a single string becomes one element
	Subject        string            // as sent
	HTML, Text     string            // as sent
	Tags           []Tag             // as sent, in order
	Headers        map[string]string // as sent
	ScheduledAt    string            // as sent
	Received       time.Time         // when the request arrived
}

// Tag is an email tag as sent.
type Tag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// BatchError is an entry of the errors a permissive batch answers: the
// email at Index of the request's array was not sent, for Message.
type BatchError struct {
	Index   int    `json:"index"`
	Message string `json:"message"`
}

// Request is one request the server received, whatever its fate.
type Request struct {
	N              int       // 1 for the first request the server received, and so on
	Method, Path   string    // as received
	IdempotencyKey string    // the Idempotency-Key header, or ""
	Received       time.Time // when it arrived
	Status         int       // the status answered; 0 while in progress or when abandoned
	Name           string    // the error name answered, or "" for a success
	EmailID        string    // the id answered by POST /emails (a replay answers the first id)
	EmailIDs       []string  // the ids answered by POST /emails/batch, in order (a replay answers the first ones)
	Errors         int       // how many emails a permissive batch reported in errors
	Abandoned      bool      // the client gave up, or Close cut the request short, during a Delay or Late, or Drop closed the connection
}

// Fault tells the server to misbehave with one request. The zero Fault
// changes nothing.
type Fault struct {
	// Status, when not 0, answers the request with this status and an
	// error body, before any other check. Name and Message fill the body;
	// when empty they default to what Resend says for the status.
	Status  int
	Name    string
	Message string
	// RetryAfter, when set, is sent as the Retry-After header of a faulted
	// answer, in seconds (Resend's form, such as "1").
	RetryAfter string

	// Delay holds the request this long before the server handles it (or
	// answers the fault), or until the client gives up. A request the
	// client gave up on during Delay is not processed: no email is
	// recorded. With Status 0, the idempotency key counts as in progress
	// during the Delay.
	Delay time.Duration

	// Late processes the request (the emails are recorded) and then holds
	// the answer this long, or until the client gives up: the client sees
	// a timeout for emails that were sent.
	Late time.Duration

	// Drop processes the request (the emails are recorded, or a request
	// with a known key is replayed) and then closes the connection without
	// answering: the client sees a lost connection for emails that were
	// sent. It aborts the handler with
	// http.ErrAbortHandler, which net/http's server turns into a closed
	// connection; a caller of ServeHTTP without that server sees the panic.
	Drop bool

	// DropFirst closes the connection as soon as the request arrives,
	// before any check, without recording anything or answering: the
	// client sees a lost connection for emails that were not sent. It
	// aborts the handler as Drop does.
	DropFirst bool
}

// FaultMode is a fault that [Server.SetFaultMode] applies to requests
// until it is changed, for example while a drain runs.
type FaultMode int

const (
	// NoFault, the zero value, applies no fault.
	NoFault FaultMode = iota
	// Answer500 answers 500 internal_server_error at once, before any
	// check: nothing is recorded.
	Answer500
	// Hang holds the request, doing nothing, until the client gives up or
	// the server closes: nothing is recorded. The idempotency key counts
	// as in progress meanwhile.
	Hang
	// DropBefore closes the connection before doing the work (as
	// [Fault.DropFirst]): nothing is recorded, nothing is answered.
	DropBefore
	// AcceptThenDrop does the work (records the emails under the
	// request's idempotency key, so that a retry with the key is a
	// replay) and then closes the connection without answering (as
	// [Fault.Drop]): the client never learns that the emails were sent.
	AcceptThenDrop
)

// String returns the mode's name, such as "accept-then-drop".
func (m FaultMode) String() string {
	switch m {
	case NoFault:
		return "none"
	case Answer500:
		return "500"
	case Hang:
		return "hang"
	case DropBefore:
		return "drop-before"
	case AcceptThenDrop:
		return "accept-then-drop"
	}
	return fmt.Sprintf("FaultMode(%d)", int(m))
}

// fault returns the Fault that carries out m.
func (m FaultMode) fault() Fault {
	switch m {
	case Answer500:
		return Fault{Status: http.StatusInternalServerError}
	case Hang:
		return Fault{Delay: hangFor}
	case DropBefore:
		return Fault{DropFirst: true}
	case AcceptThenDrop:
		return Fault{Drop: true}
	}
	return Fault{}
}

// hangFor is how long Hang holds a request: longer than any client waits.
const hangFor = 365 * 24 * time.Hour

// FaultCounts counts the requests each [FaultMode] was applied to.
type FaultCounts struct {
	Answered500         int // Answer500
	Hung                int // Hang
	DroppedBefore       int // DropBefore
	AcceptedThenDropped int // AcceptThenDrop
}

func (c *FaultCounts) add(m FaultMode) {
	switch m {
	case Answer500:
		c.Answered500++
	case Hang:
		c.Hung++
	case DropBefore:
		c.DroppedBefore++
	case AcceptThenDrop:
		c.AcceptedThenDropped++
	}
}

// Hook decides the fault for one request. It runs on the request's
// goroutine, before the server handles the request, and must be safe for
// concurrent use.
type Hook func(Request) Fault

// Stats counts what a Server saw. See [Server.Stats].
type Stats struct {
	Calls        int // requests received, whatever their fate
	RateLimited  int // requests the rate limit refused with 429
	Emails       int // emails accepted; a replay adds none
	MaxPerWindow int // the most requests one API key made in one rate-limit window (any window, when it slides)

	// Faults counts the requests that the fault set with
	// [Server.SetFaultMode] was applied to, by mode.
	Faults FaultCounts

	// PerKey holds the same counts for each API key presented, by key
	// ("" for requests without one).
	PerKey map[string]KeyStats
}

// KeyStats counts the requests made with one API key.
type KeyStats struct {
	Calls        int // requests received with this key
	RateLimited  int // of them, refused by the rate limit
	Emails       int // emails accepted from them
	MaxPerWindow int // the most of them in one rate-limit window
}

// Server is a fake Resend API. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of a server started by NewServer, such as
	// "http://127.0.0.1:43127", with no trailing slash. Give it to the
	// Resend client with a trailing slash.
	URL string

	ts   *httptest.Server
	done chan struct{}
	once sync.Once

	mu       sync.Mutex
	apiKeys  map[string]bool
	start    time.Time
	now      func() time.Time
	limit    int
	window   time.Duration
	sliding  bool
	mode     FaultMode
	every    int
	modeSeen int // requests that met mode since it was set
	faults   FaultCounts
	counters map[string]*counter // by API key presented
	hook     Hook
	failN    int
	fail     Fault
	delay    time.Duration
	reject   func(string) bool
	reqs     []Request
	emails   []Email
	recorded chan struct{} // closed and replaced whenever emails are recorded
	keys     map[string]*keyState
	hooks    webhooks // see webhook.go
}

// counter is the rate-limit window and the counts of one API key.
type counter struct {
	winIndex int64       // fixed windows: the current window
	winCount int         // fixed windows: requests in it
	recent   []time.Time // sliding window: arrivals within it, oldest first
	KeyStats
}

// arrive counts a request at now against the window and returns how many
// requests the window holds with it, and when the next slot frees (reset:
// the time until the count drops, wait: the time until a request would be
// accepted).
func (c *counter) arrive(s *Server, now time.Time) (count int, reset, wait time.Duration) {
	if !s.sliding {
		if i := s.windowIndex(now); i != c.winIndex {
			c.winIndex, c.winCount = i, 0
		}
		c.winCount++
		reset = s.start.Add(time.Duration(c.winIndex+1) * s.window).Sub(now)
		return c.winCount, reset, reset
	}
	drop := 0
	for drop < len(c.recent) && now.Sub(c.recent[drop]) >= s.window {
		drop++
	}
	c.recent = append(c.recent[drop:], now)
	count = len(c.recent)
	reset = c.recent[0].Add(s.window).Sub(now)
	wait = reset
	if s.limit > 0 && count > s.limit {
		// Accepted again once count-(limit-1) arrivals have left the
		// window, this one included.
		wait = c.recent[count-s.limit].Add(s.window).Sub(now)
	}
	return count, reset, wait
}

// keyState is what the server remembers of an idempotency key.
type keyState struct {
	hash     [32]byte
	answer   []byte   // the JSON body of the first answer, replayed
	id       string   // the id it answered (POST /emails)
	ids      []string // the ids it answered (POST /emails/batch)
	errors   int      // the errors it reported (POST /emails/batch)
	at       time.Time
	inFlight bool
}

// New returns a Server that does not listen: serve it with any
// http.Server, or call its ServeHTTP. Its URL is empty.
func New() *Server {
	return &Server{
		done:     make(chan struct{}),
		apiKeys:  map[string]bool{APIKey: true},
		now:      time.Now,
		start:    time.Now(),
		window:   time.Second,
		counters: map[string]*counter{},
		keys:     map[string]*keyState{},
	}
}

// NewServer returns a Server listening on a loopback port. Close it when
// done.
func NewServer() *Server {
	s := New()
	s.ts = httptest.NewServer(s)
	s.URL = s.ts.URL
	return s
}

// Close stops a server started by NewServer, cutting short any Delay or
// Late, and waits for the requests in progress. It may be called on any
// Server, more than once.
func (s *Server) Close() {
	s.once.Do(func() { close(s.done) })
	if s.ts != nil {
		s.ts.Close()
	}
}

// SetAPIKey makes key the only key the server accepts.
func (s *Server) SetAPIKey(key string) {
	s.mu.Lock()
	s.apiKeys = map[string]bool{key: true}
	s.mu.Unlock()
}

// AddAPIKey makes the server accept key too, as another team's key: the
// rate limit and [Server.Stats] count each key on its own.
func (s *Server) AddAPIKey(key string) {
	s.mu.Lock()
	s.apiKeys[key] = true
	s.mu.Unlock()
}

// SetRateLimit makes the server accept at most n requests per window for
// each API key, from all clients together, and answer the others 429
// rate_limit_exceeded. Windows are fixed: they start when the server was
// created and follow each other. Every request counts, refused ones
// included, and a batch counts as one request. n <= 0 turns the limit off
// (the default). Resend's default is 2 per second. SetRateLimit also sets
// the window [Server.MaxPerWindow] uses. See [Server.SetSlidingRateLimit]
// for the harder limit, and its documentation for the headers.
func (s *Server) SetRateLimit(n int, window time.Duration) {
	s.setRateLimit(n, window, false)
}

// SetSlidingRateLimit is [Server.SetRateLimit] with a sliding window: a
// request is refused when, counting it, more than n requests with its API
// key arrived within the window that ends with it. Refused requests count
// too, so a client that retries too early keeps the window full. Against
// it, calls spaced exactly window/n apart draw 429s whenever one is a
// little late; this is the worst a provider that documents "n per second"
// may do.
//
// With a limit set (either kind), every answer to a request that reached
// the limit carries Resend's headers: ratelimit-limit (n),
// ratelimit-remaining (how many more requests the window takes now),
// ratelimit-reset (whole seconds, at least 1, until the count goes down:
// the end of a fixed window, or when the oldest request leaves a sliding
// one); a 429 also carries retry-after, the whole seconds (at least 1)
// after which a request would be accepted.
func (s *Server) SetSlidingRateLimit(n int, window time.Duration) {
	s.setRateLimit(n, window, true)
}

func (s *Server) setRateLimit(n int, window time.Duration, sliding bool) {
	if window <= 0 {
		window = time.Second
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit, s.window, s.sliding = n, window, sliding
	for _, c := range s.counters {
		c.winIndex, c.winCount, c.recent = s.windowIndex(s.now()), 0, nil
	}
}

// SetClock makes the server read the time from now instead of time.Now,
// for the rate limit, idempotency's 24 hours and the times it records.
// nil restores time.Now. Set it before the first request.
func (s *Server) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.mu.Lock()
	s.now = now
	s.start = now()
	s.mu.Unlock()
}

// SetFaultMode applies mode to every request from now on (every n-th one
// when every > 1), until the next call; SetFaultMode(NoFault, 0) stops.
// It may be called at any time, for example while a drain runs. A fault
// from the hook ([Server.SetHook]) or from [Server.Fail] takes precedence
// for its request. [Stats].Faults counts the requests mode was applied to.
func (s *Server) SetFaultMode(mode FaultMode, every int) {
	s.mu.Lock()
	s.mode, s.every, s.modeSeen = mode, max(every, 1), 0
	s.mu.Unlock()
}

// Fail makes the next n requests answer status with the error name (and
// Resend's message for it). 429 answers carry retry-after: 1. n < 0 means
// every request until the next call of Fail; Fail(0, 0, "") stops.
func (s *Server) Fail(n, status int, name string) {
	f := Fault{Status: status, Name: name}
	if status == http.StatusTooManyRequests {
		f.RetryAfter = "1"
	}
	s.mu.Lock()
	s.failN, s.fail = n, f
	s.mu.Unlock()
}

// SetDelay holds every request d before handling it, as [Fault.Delay]
// does. 0 stops.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// SetHook makes h decide each request's fault. A zero Fault from h lets
// Fail and SetDelay apply. nil removes the hook.
func (s *Server) SetHook(h Hook) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

// SetRejectRecipient makes the server refuse as invalid every email with
// a recipient (in to) for which f returns true, as Resend refuses an
// address it cannot send to: POST /emails and a strict batch answer 422
// validation_error, a permissive batch reports the email in errors and
// sends the others. nil removes it. f must be safe for concurrent use.
func (s *Server) SetRejectRecipient(f func(to string) bool) {
	s.mu.Lock()
	s.reject = f
	s.mu.Unlock()
}

// Emails returns the emails accepted so far, in order. A replayed request
// adds none.
func (s *Server) Emails() []Email {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Email, len(s.emails))
	copy(out, s.emails)
	return out
}

// WaitEmails blocks until the server has accepted at least n emails, by
// either endpoint, or ctx ends, and returns the emails accepted so far.
func (s *Server) WaitEmails(ctx context.Context, n int) ([]Email, error) {
	for {
		s.mu.Lock()
		if len(s.emails) >= n {
			out := append([]Email(nil), s.emails...)
			s.mu.Unlock()
			return out, nil
		}
		if s.recorded == nil {
			s.recorded = make(chan struct{})
		}
		ch := s.recorded
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return s.Emails(), fmt.Errorf("resendtest: waiting for %d emails: %w", n, ctx.Err())
		}
	}
}

// Requests returns every request received so far, in order of arrival.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.reqs))
	copy(out, s.reqs)
	return out
}

// Stats returns the counts so far, in total and per API key.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{PerKey: make(map[string]KeyStats, len(s.counters))}
	for k, c := range s.counters {
		st.PerKey[k] = c.KeyStats
		st.Calls += c.Calls
		st.RateLimited += c.RateLimited
		st.Emails += c.Emails
		st.MaxPerWindow = max(st.MaxPerWindow, c.MaxPerWindow)
	}
	st.Faults = s.faults
	return st
}

// RateLimited returns how many requests the rate limit refused, for all
// keys together.
func (s *Server) RateLimited() int { return s.Stats().RateLimited }

// MaxPerWindow returns the largest number of requests that arrived with
// one API key in one rate-limit window (one second unless SetRateLimit or
// SetSlidingRateLimit says otherwise; with a sliding window, in any window
// that ends with a request), refused ones included: the highest request
// rate the server saw.
func (s *Server) MaxPerWindow() int { return s.Stats().MaxPerWindow }

func (s *Server) windowIndex(t time.Time) int64 {
	return int64(t.Sub(s.start) / s.window)
}

// ServeHTTP answers one request as Resend would.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	now := s.now()
	s.mu.Unlock()
	key, hasKey := r.Header["Idempotency-Key"]
	idemKey := ""
	if hasKey {
		idemKey = strings.Join(key, ",")
	}
	token, hasBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !hasBearer {
		token = ""
	}

	s.mu.Lock()
	n := len(s.reqs) + 1
	s.reqs = append(s.reqs, Request{N: n, Method: r.Method, Path: r.URL.Path, IdempotencyKey: idemKey, Received: now})
	c := s.counters[token]
	if c == nil {
		c = &counter{winIndex: s.windowIndex(now)}
		s.counters[token] = c
	}
	winCount, reset, wait := c.arrive(s, now)
	c.Calls++
	c.MaxPerWindow = max(c.MaxPerWindow, winCount)
	limit := s.limit
	hook, knownKey, reject := s.hook, s.apiKeys[token], s.reject
	s.mu.Unlock()

	a := &answerer{s: s, w: w, n: n}

	// Faults come first: a load balancer in front of Resend does not read
	// the request.
	var f Fault
	if hook != nil {
		f = hook(Request{N: n, Method: r.Method, Path: r.URL.Path, IdempotencyKey: idemKey, Received: now})
	}
	s.mu.Lock()
	if f == (Fault{}) && s.failN != 0 {
		f = s.fail
		if s.failN > 0 {
			s.failN--
		}
	}
	if f == (Fault{}) && s.mode != NoFault {
		if s.modeSeen%s.every == 0 {
			f = s.mode.fault()
			s.faults.add(s.mode)
		}
		s.modeSeen++
	}
	if f.Delay == 0 {
		f.Delay = s.delay
	}
	s.mu.Unlock()
	if f.DropFirst {
		a.abandoned()
		panic(http.ErrAbortHandler) // net/http closes the connection without an answer
	}
	if f.Status != 0 {
		if !s.hold(r.Context(), f.Delay) {
			a.abandoned()
			return
		}
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		if f.Status == http.StatusTooManyRequests && limit > 0 {
			rateHeaders(w, limit, 0, reset)
		}
		a.error(f.Status, f.Name, f.Message)
		return
	}

	batch := r.URL.Path == "/emails/batch"
	switch {
	case r.URL.Path != "/emails" && !batch:
		a.error(http.StatusNotFound, "not_found", "")
		return
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		a.error(http.StatusMethodNotAllowed, "method_not_allowed", "")
		return
	}

	switch {
	case strings.TrimSpace(token) == "":
		a.error(http.StatusUnauthorized, "missing_api_key", "")
		return
	case !knownKey:
		a.error(http.StatusForbidden, "invalid_api_key", "")
		return
	}

	if limit > 0 {
		remaining := max(limit-winCount, 0)
		rateHeaders(w, limit, remaining, reset)
		if winCount > limit {
			w.Header().Set("Retry-After", strconv.Itoa(ceilSeconds(wait)))
			s.mu.Lock()
			c.RateLimited++
			s.mu.Unlock()
			a.error(http.StatusTooManyRequests, "rate_limit_exceeded", "")
			return
		}
	}

	if hasKey && (len(idemKey) < 1 || len(idemKey) > 256) {
		a.error(http.StatusBadRequest, "invalid_idempotency_key", "")
		return
	}

	mode := ""
	if batch {
		mode = r.Header.Get("X-Batch-Validation")
		switch mode {
		case "":
			mode = "strict"
		case "strict", "permissive":
		default:
			a.error(http.StatusUnprocessableEntity, "validation_error", "The x-batch-validation header must be strict or permissive.")
			return
		}
	}
	body, status, name, msg := readBody(w, r)
	if status != 0 {
		a.error(status, name, msg)
		return
	}
	var (
		emails    []Email
		canon     []byte
		batchErrs []BatchError
	)
	if batch {
		emails, batchErrs, canon, status, name, msg = parseBatch(body, mode, reject)
	} else {
		var e Email
		e, canon, status, name, msg = parseEmail(body, reject)
		emails = []Email{e}
	}
	if status != 0 {
		a.error(status, name, msg)
		return
	}
	for i := range emails {
		emails[i].IdempotencyKey, emails[i].Received, emails[i].Batch = idemKey, now, batch
	}

	// Idempotency: look the key up, and hold it while processing. The
	// path and the validation mode are part of what must match.
	hash := sha256.Sum256(append([]byte(r.URL.Path+"\n"+mode+"\n"), canon...))
	if hasKey {
		s.mu.Lock()
		ks := s.keys[idemKey]
		if ks != nil && !ks.inFlight && now.Sub(ks.at) >= idempotencyTTL {
			delete(s.keys, idemKey)
			ks = nil
		}
		switch {
		case ks != nil && ks.hash != hash:
			s.mu.Unlock()
			a.error(http.StatusConflict, "invalid_idempotent_request", "")
			return
		case ks != nil && ks.inFlight:
			s.mu.Unlock()
			a.error(http.StatusConflict, "concurrent_idempotent_requests", "")
			return
		case ks != nil:
			done := *ks
			s.mu.Unlock()
			if f.Drop {
				// The replay is the work; its answer is lost too.
				a.abandoned()
				panic(http.ErrAbortHandler)
			}
			a.success(done.answer, done.id, done.ids, done.errors)
			return
		}
		s.keys[idemKey] = &keyState{hash: hash, at: now, inFlight: true}
		s.mu.Unlock()
	}

	if !s.hold(r.Context(), f.Delay) {
		if hasKey {
			s.mu.Lock()
			delete(s.keys, idemKey)
			s.mu.Unlock()
		}
		a.abandoned()
		return
	}

	ids := make([]string, len(emails))
	for i := range emails {
		ids[i] = newUUID()
		emails[i].ID = ids[i]
	}
	var answer []byte
	var id string
	if batch {
		data := make([]map[string]string, len(ids))
		for i, id := range ids {
			data[i] = map[string]string{"id": id}
		}
		answer, _ = json.Marshal(struct {
			Data   []map[string]string `json:"data"`
			Errors []BatchError        `json:"errors,omitempty"`
		}{data, batchErrs})
	} else {
		id, ids = ids[0], nil
		answer, _ = json.Marshal(map[string]string{"id": id})
	}
	s.mu.Lock()
	s.emails = append(s.emails, emails...)
	s.queueWebhooks(emails)
	c.Emails += len(emails)
	if s.recorded != nil {
		close(s.recorded)
		s.recorded = nil
	}
	if hasKey {
		ks := s.keys[idemKey]
		ks.answer, ks.id, ks.ids, ks.errors, ks.inFlight = answer, id, ids, len(batchErrs), false
	}
	s.mu.Unlock()

	if f.Drop {
		a.abandoned()
		panic(http.ErrAbortHandler) // net/http closes the connection without an answer
	}
	if !s.hold(r.Context(), f.Late) {
		a.abandoned()
		return
	}
	a.success(answer, id, ids, len(batchErrs))
}

// parseBatch reads and checks the body of POST /emails/batch in mode
// strict or permissive. In strict mode the first invalid email fails the
// whole batch; in permissive mode each invalid one becomes a BatchError.
// canon is the array in a canonical form for comparing replays.
func parseBatch(body []byte, mode string, reject func(string) bool) (emails []Email, errs []BatchError, canon []byte, status int, name, msg string) {
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil || items == nil {
		return nil, nil, nil, 400, "validation_error", "The request body must be a JSON array of emails."
	}
	if len(items) == 0 || len(items) > MaxBatch {
		return nil, nil, nil, 422, "validation_error", fmt.Sprintf("A batch holds 1 to %d emails, not %d.", MaxBatch, len(items))
	}
	canons := make([]json.RawMessage, len(items))
	for i, raw := range items {
		e, c, st, nm, m := parseEmail(raw, reject)
		if st == 0 {
			emails = append(emails, e)
			canons[i] = c
			continue
		}
		if m == "" {
			m = messages[nm]
		}
		if mode == "strict" {
			return nil, nil, nil, st, nm, fmt.Sprintf("emails[%d]: %s", i, m)
		}
		errs = append(errs, BatchError{Index: i, Message: m})
		canons[i] = raw // json.Marshal below compacts it
	}
	canon, err := json.Marshal(canons)
	if err != nil {
		return nil, nil, nil, 400, "validation_error", "The request body must be a JSON array of emails."
	}
	return emails, errs, canon, 0, "", ""
}

// hold waits d, or until the client gives up or the server closes. It
// reports whether d passed.
func (s *Server) hold(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-s.done:
	}
	return false
}

func rateHeaders(w http.ResponseWriter, limit, remaining int, reset time.Duration) {
	w.Header().Set("Ratelimit-Limit", strconv.Itoa(limit))
	w.Header().Set("Ratelimit-Remaining", strconv.Itoa(remaining))
	w.Header().Set("Ratelimit-Reset", strconv.Itoa(ceilSeconds(reset)))
}

func ceilSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// answerer writes one answer and notes it in the request log.
type answerer struct {
	s *Server
	w http.ResponseWriter
	n int
}

func (a *answerer) note(status int, name, id string, ids []string, errs int) {
	a.s.mu.Lock()
	r := &a.s.reqs[a.n-1]
	r.Status, r.Name, r.EmailID, r.EmailIDs, r.Errors = status, name, id, ids, errs
	r.Abandoned = status == 0
	a.s.mu.Unlock()
}

// success answers 200 with answer, the JSON body of the first answer to
// the request's idempotency key.
func (a *answerer) success(answer []byte, id string, ids []string, errs int) {
	a.note(http.StatusOK, "", id, ids, errs)
	a.w.Header().Set("Content-Type", "application/json")
	a.w.WriteHeader(http.StatusOK)
	_, _ = a.w.Write(answer)
}

// abandoned notes a request whose client gave up, or that the server's
// Close cut short; nothing useful can be answered.
func (a *answerer) abandoned() {
	a.note(0, "", "", nil, 0)
	a.w.WriteHeader(http.StatusServiceUnavailable)
}
func (a *answerer) error(status int, name, message string) {
	if name == "" {
		name = defaultNames[status]
		if name == "" {
			name = strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
		}
	}
	if message == "" {
		message = messages[name]
		if message == "" {
			message = http.StatusText(status)
		}
	}
	a.note(status, name, "", nil, 0)
	a.w.Header().Set("Content-Type", "application/json")
	a.w.WriteHeader(status)
	_ = json.NewEncoder(a.w).Encode(struct {
		StatusCode int    `json:"statusCode"`
		Message    string `json:"message"`
		Name       string `json:"name"`
	}{status, message, name})
}

// defaultNames are the error names a Fault with only a Status gets.
var defaultNames = map[int]string{
	400: "validation_error",
	401: "missing_api_key",
	403: "invalid_api_key",
	404: "not_found",
	405: "method_not_allowed",
	409: "invalid_idempotent_request",
	422: "validation_error",
	429: "rate_limit_exceeded",
	500: "internal_server_error",
	502: "internal_server_error",
	503: "internal_server_error",
	504: "internal_server_error",
}

// messages are Resend's messages for its error names.
var messages = map[string]string{
	"invalid_idempotency_key":        "The key must be between 1-256 chars.",
	"validation_error":               "We found an error with one or more fields in the request.",
	"missing_api_key":                "Missing API key in the authorization header.",
	"restricted_api_key":             "This API key is restricted to only send emails.",
	"invalid_api_key":                "API key is invalid.",
	"not_found":                      "The requested endpoint does not exist.",
	"method_not_allowed":             "Method is not allowed for the requested path.",
	"invalid_idempotent_request":     "Same idempotency key used with a different request payload.",
	"concurrent_idempotent_requests": "Same idempotency key used while original request is still in progress.",
	"invalid_attachment":             "Attachment must have either a `content` or `path`.",
	"invalid_from_address":           "Invalid `from` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.",
	"missing_required_field":         "The request body is missing one or more required fields.",
	"daily_quota_exceeded":           "You have reached your daily email sending quota.",
	"monthly_quota_exceeded":         "You have reached your monthly email sending quota.",
	"rate_limit_exceeded":            "Too many requests. You can only make 2 requests per second.",
	"security_error":                 "We may have found a security issue with the request.",
	"application_error":              "An unexpected error occurred.",
	"internal_server_error":          "An unexpected error occurred.",
}

// knownFields are the top-level fields of SendEmailRequest in the OpenAPI
// description.
var knownFields = map[string]bool{
	"from": true, "to": true, "subject": true, "bcc": true, "cc": true,
	"reply_to": true, "html": true, "text": true, "template": true,
	"headers": true, "scheduled_at": true, "attachments": true, "tags": true,
	"topic_id": true,
}

// readBody reads the JSON body of a request. On failure it returns the
// status, name and message to answer.
func readBody(w http.ResponseWriter, r *http.Request) (body []byte, status int, name, msg string) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, 400, "validation_error", "Content-Type must be application/json."
		}
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBody)); err != nil {
		return nil, 400, "validation_error", "The request body could not be read."
	}
	return buf.Bytes(), 0, "", ""
}

// parseEmail checks one email object, the body of POST /emails or an
// element of the array POST /emails/batch takes. On failure it returns the
// status, name and message to answer. canon is the object in a canonical
// form (keys sorted, compact) for comparing replays. reject, when not nil,
// refuses a recipient as invalid.
func parseEmail(raw []byte, reject func(string) bool) (e Email, canon []byte, status int, name, msg string) {
	fail := func(st int, nm, format string, args ...any) (Email, []byte, int, string, string) {
		return Email{}, nil, st, nm, fmt.Sprintf(format, args...)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return fail(400, "validation_error", "The request body must be a JSON object.")
	}
	for k := range fields {
		if !knownFields[k] {
			return fail(422, "validation_error", "Unknown field `%s`.", k)
		}
	}
	for _, k := range []string{"from", "to", "subject"} {
		if v, ok := fields[k]; !ok || string(v) == "null" || string(v) == `""` {
			return fail(422, "missing_required_field", "Missing `%s` field.", k)
		}
	}
	str := func(k string, dst *string) bool {
		v, ok := fields[k]
		return !ok || json.Unmarshal(v, dst) == nil
	}
	if !str("from", &e.From) || !str("subject", &e.Subject) || !str("html", &e.HTML) ||
		!str("text", &e.Text) || !str("scheduled_at", &e.ScheduledAt) {
		return fail(422, "validation_error", "A field has the wrong type: from, subject, html, text and scheduled_at are strings.")
	}
	if _, hasTemplate := fields["template"]; hasTemplate {
		var tpl struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(fields["template"], &tpl) != nil || tpl.ID == "" {
			return fail(422, "validation_error", "Invalid `template` field: it needs an `id`.")
		}
		if e.HTML != "" || e.Text != "" {
			return fail(422, "validation_error", "Use either `template` or `html`/`text`, not both.")
		}
	} else if e.HTML == "" && e.Text == "" {
		return fail(422, "missing_required_field", "Missing `html` or `text` field.")
	}
	if !validAddress(e.From) {
		return fail(422, "invalid_from_address", "")
	}
	for _, f := range []struct {
		key string
		dst *[]string
		max int
	}{{"to", &e.To, 50}, {"cc", &e.Cc, 0}, {"bcc", &e.Bcc, 0}, {"reply_to", &e.ReplyTo, 0}} {
		v, ok := fields[f.key]
		if !ok {
			continue
		}
		list, good := addressList(v)
		if !good || len(list) == 0 || (f.max > 0 && len(list) > f.max) {
			return fail(422, "validation_error", "Invalid `%s` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.", f.key)
		}
		*f.dst = list
	}
	if reject != nil {
		for _, to := range e.To {
			if reject(to) {
				return fail(422, "validation_error", "Invalid `to` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.")
			}
		}
	}
	if v, ok := fields["tags"]; ok {
		var tags []map[string]any
		if json.Unmarshal(v, &tags) != nil {
			return fail(422, "validation_error", "Invalid `tags` field: an array of {name, value}.")
		}
		for _, t := range tags {
			nm, _ := t["name"].(string)
			val, _ := t["value"].(string)
			if len(t) != 2 || !validTag(nm) || !validTag(val) {
				return fail(422, "validation_error", "Tags should only contain ASCII letters, numbers, underscores, or dashes, at most 256 characters.")
			}
			e.Tags = append(e.Tags, Tag{Name: nm, Value: val})
		}
	}
	if v, ok := fields["headers"]; ok {
		if json.Unmarshal(v, &e.Headers) != nil {
			return fail(422, "validation_error", "Invalid `headers` field: an object of strings.")
		}
	}
	if v, ok := fields["attachments"]; ok {
		var atts []map[string]json.RawMessage
		if json.Unmarshal(v, &atts) != nil {
			return fail(422, "invalid_attachment", "")
		}
		for _, at := range atts {
			if at["content"] == nil && at["path"] == nil {
				return fail(422, "invalid_attachment", "")
			}
		}
	}
	canon, err := json.Marshal(fields) // sorts keys and compacts values
	if err != nil {
		return fail(400, "validation_error", "The request body must be a JSON object.")
	}
	return e, canon, 0, "", ""
}

// addressList reads a string or an array of strings of valid addresses.
func addressList(v json.RawMessage) ([]string, bool) {
	var one string
	if json.Unmarshal(v, &one) == nil {
		return []string{one}, validAddress(one)
	}
	var list []string
	if json.Unmarshal(v, &list) != nil {
		return nil, false
	}
	for _, a := range list {
		if !validAddress(a) {
			return nil, false
		}
	}
	return list, true
}

// validAddress accepts "a@example.com" and "Name <a@example.com>" whose
// domain has a dot.
func validAddress(s string) bool {
	if strings.ContainsAny(s, "\r\n") {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return false
	}
	_, domain, _ := strings.Cut(a.Address, "@")
	return strings.Contains(domain, ".")
}

func validTag(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// newUUID returns a random (version 4) UUID, the form of Resend's ids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
