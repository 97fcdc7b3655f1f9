package resendmailer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
)

// batch returns n messages to r<prefix><i>@example.com.
func batch(prefix string, n int) []reset.Message {
	msgs := make([]reset.Message, n)
	for i := range msgs {
		msgs[i] = message(fmt.Sprintf("%s%03d", prefix, i))
		msgs[i].To = fmt.Sprintf("r%s%d@example.com", prefix, i)
	}
	return msgs
}

// checkSentOnce checks that the server accepted exactly msgs, each once,
// under the batch key key.
func checkSentOnce(t *testing.T, srv *resendtest.Server, key string, msgs []reset.Message) {
	t.Helper()
	emails := srv.Emails()
	seen := map[string]int{}
	for _, e := range emails {
		seen[e.To[0]]++
		if e.IdempotencyKey != key || !e.Batch {
			t.Errorf("email to %s: key %q, batch %v; want %q through the batch endpoint", e.To[0], e.IdempotencyKey, e.Batch, key)
		}
	}
	for _, m := range msgs {
		if seen[m.To] != 1 {
			t.Errorf("%s received %d emails, want 1", m.To, seen[m.To])
		}
	}
	if len(emails) != len(msgs) {
		t.Errorf("%d emails, want %d", len(emails), len(msgs))
	}
}

func TestSendBatchSendsEveryMessage(t *testing.T) {
	srv := newServer(t)
	m := newMailer(t, srv, nil)
	if m.MaxBatch() != 100 {
		t.Errorf("MaxBatch() = %d, want 100", m.MaxBatch())
	}
	msgs := batch("ok", 3)
	per, err := m.SendBatch(context.Background(), "batch/ok", msgs)
	if err != nil || len(per) != 3 {
		t.Fatalf("SendBatch = %v, %v; want 3 nil errors", per, err)
	}
	for i, e := range per {
		if e != nil {
			t.Errorf("message %d: %v", i, e)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	emails, err := srv.WaitEmails(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range emails {
		if e.To[0] != msgs[i].To || e.Subject != msgs[i].Subject || e.Text != msgs[i].Text || e.HTML != msgs[i].HTML {
			t.Errorf("email %d = %+v, want message %d", i, e, i)
		}
		if len(e.Tags) != 3 || e.Tags[1] != (resendtest.Tag{Name: "kind", Value: reset.KindReset}) || e.Tags[2] != (resendtest.Tag{Name: "message_id", Value: msgs[i].ID}) {
			t.Errorf("email %d tags = %v", i, e.Tags)
		}
	}
	checkSentOnce(t, srv, "batch/ok", msgs)
	if st := srv.Stats(); st.Calls != 1 {
		t.Errorf("%d calls, want 1", st.Calls)
	}
}

func TestSendBatchAmbiguousFailureIsRetriedWithTheSameKey(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault resendtest.Fault
	}{
		{"answer too late", resendtest.Fault{Late: time.Minute}},
		{"connection dropped", resendtest.Fault{Drop: true}},
		{"503", resendtest.Fault{Status: 503}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t)
			srv.SetHook(func(r resendtest.Request) resendtest.Fault {
				if r.N == 1 {
					return tc.fault
				}
				return resendtest.Fault{}
			})
			m := newMailer(t, srv, func(o *resendmailer.Options) { o.Timeout = 200 * time.Millisecond })
			msgs := batch("amb", 5)
			per, err := m.SendBatch(context.Background(), "batch/amb", msgs)
			if err == nil || per != nil || errors.Is(err, reset.ErrPermanent) {
				t.Fatalf("SendBatch = %v, %v; want an error for the whole call", per, err)
			}
			// The queue's retry of the same batch under the same key. On
			// a loaded machine a replay may time out too: retry until one
			// answers; all carry the key and the last succeeds.
			for range 10 {
				if per, err = m.SendBatch(context.Background(), "batch/amb", msgs); err == nil {
					break
				}
			}
			if err != nil || len(per) != 5 || errors.Join(per...) != nil {
				t.Fatalf("SendBatch = %v, %v", per, err)
			}
			reqs := srv.Requests()
			last := reqs[len(reqs)-1]
			if len(reqs) < 2 || last.Status != 200 {
				t.Fatalf("requests = %+v, want a failed one and a replay", reqs)
			}
			for _, r := range reqs {
				if r.IdempotencyKey != "batch/amb" {
					t.Errorf("request %d has key %q, want batch/amb", r.N, r.IdempotencyKey)
				}
			}
			checkSentOnce(t, srv, "batch/amb", msgs)
			for i, e := range srv.Emails() {
				if last.EmailIDs[i] != e.ID {
					t.Errorf("replay answered id %s for email %d, want %s", last.EmailIDs[i], i, e.ID)
				}
			}
		})
	}
}

// An accepted batch whose answer was lost comes back as an unknown outcome
// (not a transient failure), and the queue's retry of the same batch with
// the same key sends nothing twice.
func TestSendBatchUnknownOutcomeSurfacesAndRetrySendsOnce(t *testing.T) {
	srv := newServer(t)
	srv.SetHook(func(r resendtest.Request) resendtest.Fault {
		return resendtest.Fault{Drop: r.N == 1}
	})
	m := newMailer(t, srv, nil)
	msgs := batch("out", 4)
	per, err := m.SendBatch(context.Background(), "batch/out", msgs)
	if err == nil || per != nil || errors.Is(err, reset.ErrPermanent) || errors.Is(err, resendmailer.ErrTransient) || !errors.Is(err, reset.ErrOutcomeUnknown) {
		t.Fatalf("SendBatch = %v, %v; want no per-message errors and an unknown outcome", per, err)
	}
	if per, err := m.SendBatch(context.Background(), "batch/out", msgs); err != nil || errors.Join(per...) != nil {
		t.Fatalf("retry: %v, %v", per, err)
	}
	checkSentOnce(t, srv, "batch/out", msgs)
}

func TestSendBatchServerErrorIsTransient(t *testing.T) {
	srv := newServer(t)
	srv.Fail(1, 503, "")
	m := newMailer(t, srv, nil)
	msgs := batch("e5", 2)
	if _, err := m.SendBatch(context.Background(), "batch/e5", msgs); !errors.Is(err, resendmailer.ErrTransient) || errors.Is(err, reset.ErrPermanent) {
		t.Fatalf("err = %v, want transient", err)
	}
	if _, err := m.SendBatch(context.Background(), "batch/e5", msgs); err != nil {
		t.Fatal(err)
	}
	checkSentOnce(t, srv, "batch/e5", msgs)
}

func TestSendBatchPartialFailure(t *testing.T) {
	srv := newServer(t)
	srv.SetRejectRecipient(func(to string) bool { return to == "rpart1@example.com" })
	m := newMailer(t, srv, nil)
	msgs := batch("part", 4)
	msgs[3].To = "" // cannot become a request at all
	per, err := m.SendBatch(context.Background(), "batch/part", msgs)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range per {
		bad := i == 1 || i == 3
		if bad != (e != nil) || (bad && (!errors.Is(e, reset.ErrPermanent) || !errors.Is(e, resendmailer.ErrPermanent))) {
			t.Errorf("message %d: %v", i, e)
		}
	}
	if !strings.Contains(per[1].Error(), "refused") || !strings.Contains(per[1].Error(), msgs[1].IdempotencyKey()) {
		t.Errorf("error %q does not name the message and the refusal", per[1])
	}
	checkSentOnce(t, srv, "batch/part", []reset.Message{msgs[0], msgs[2]})
	if r := srv.Requests(); len(r) != 1 || r[0].Errors != 1 {
		t.Errorf("requests = %+v, want one that reported one error", r)
	}
}

// A whole-call refusal (what a strict batch answers for one bad email, or a
// bad key) is permanent for the batch and made one request.
func TestSendBatchWholeCallRefusal(t *testing.T) {
	for _, tc := range []struct {
		status int
		name   string
	}{{422, "validation_error"}, {403, "invalid_api_key"}, {409, "invalid_idempotent_request"}, {429, "daily_quota_exceeded"}} {
		srv := newServer(t)
		srv.Fail(1, tc.status, tc.name)
		m := newMailer(t, srv, nil)
		per, err := m.SendBatch(context.Background(), "batch/strict", batch("st", 3))
		if per != nil || !errors.Is(err, reset.ErrPermanent) {
			t.Errorf("%d %s: SendBatch = %v, %v; want a permanent error for the call", tc.status, tc.name, per, err)
		}
		var re *resendmailer.Error
		if !errors.As(err, &re) || re.StatusCode != tc.status || re.Name != tc.name {
			t.Errorf("%d %s: err = %v, want it to hold the answer", tc.status, tc.name, err)
		}
		if n := len(srv.Requests()); n != 1 {
			t.Errorf("%d %s: %d requests, want 1", tc.status, tc.name, n)
		}
	}
}

func TestSendBatchRefusesWhatCannotBeSent(t *testing.T) {
	srv := newServer(t)
	m := newMailer(t, srv, nil)
	if per, err := m.SendBatch(context.Background(), "batch/big", batch("big", 101)); per != nil || !errors.Is(err, reset.ErrPermanent) {
		t.Errorf("101 messages: %v, %v; want a permanent error", per, err)
	}
	if _, err := m.SendBatch(context.Background(), strings.Repeat("k", 257), batch("k", 1)); !errors.Is(err, reset.ErrPermanent) {
		t.Errorf("long key: %v; want a permanent error", err)
	}
	if per, err := m.SendBatch(context.Background(), "batch/none", nil); per != nil || err != nil {
		t.Errorf("no messages: %v, %v", per, err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests, want 0", n)
	}
}

func TestRateLimitIsARateLimitError(t *testing.T) {
	srv := newServer(t)
	srv.SetHook(func(resendtest.Request) resendtest.Fault {
		return resendtest.Fault{Status: 429, Name: "rate_limit_exceeded", RetryAfter: "7"}
	})
	m := newMailer(t, srv, nil)
	_, batchErr := m.SendBatch(context.Background(), "batch/rl", batch("rl", 2))
	sendErr := m.Send(context.Background(), message("rl1"))
	for name, err := range map[string]error{"SendBatch": batchErr, "Send": sendErr} {
		var rl *reset.RateLimitError
		if !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
			t.Errorf("%s: err = %v, want a *reset.RateLimitError with RetryAfter 7s", name, err)
			continue
		}
		if !errors.Is(err, reset.ErrRateLimited) || errors.Is(err, reset.ErrPermanent) || !errors.Is(err, resendmailer.ErrTransient) {
			t.Errorf("%s: err = %v, want ErrRateLimited and transient", name, err)
		}
		var re *resendmailer.Error
		if !errors.As(err, &re) || re.StatusCode != 429 {
			t.Errorf("%s: err = %v, want it to hold the 429 answer", name, err)
		}
	}
	if n := len(srv.Requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

// The fake's own limiter (not a fault) answers 429 with the headers
// Resend sends, and the Mailer reports its wait.
func TestServerRateLimitIsARateLimitError(t *testing.T) {
	srv := newServer(t)
	srv.SetRateLimit(2, time.Hour) // one long window: the third call is refused
	m := newMailer(t, srv, nil)
	var errs []error
	for i := range 3 {
		_, err := m.SendBatch(context.Background(), fmt.Sprintf("batch/srl%d", i), batch(fmt.Sprint("srl", i), 2))
		errs = append(errs, err)
	}
	var rl *reset.RateLimitError
	if errs[0] != nil || errs[1] != nil || !errors.As(errs[2], &rl) || rl.RetryAfter <= 0 {
		t.Fatalf("errors = %v, want nil, nil, a *reset.RateLimitError with a wait", errs)
	}
	if st := srv.Stats(); st.Calls != 3 || st.RateLimited != 1 || st.Emails != 4 {
		t.Errorf("stats = %+v, want 3 calls, 1 refused, 4 emails", st)
	}
}

func TestSendBatchIdempotencyConflicts(t *testing.T) {
	srv := newServer(t)
	m := newMailer(t, srv, nil)
	msgs := batch("idem", 3)
	first, err := m.SendBatch(context.Background(), "batch/idem", msgs)
	if err != nil || errors.Join(first...) != nil {
		t.Fatal(first, err)
	}
	// The same batch again (another process, or a retry): a replay.
	if per, err := m.SendBatch(context.Background(), "batch/idem", msgs); err != nil || errors.Join(per...) != nil {
		t.Fatal(per, err)
	}
	// Other messages under the same key: refused for good.
	_, err = m.SendBatch(context.Background(), "batch/idem", batch("other", 3))
	var re *resendmailer.Error
	if !errors.Is(err, reset.ErrPermanent) || !errors.As(err, &re) || re.Name != "invalid_idempotent_request" {
		t.Errorf("err = %v, want permanent invalid_idempotent_request", err)
	}
	checkSentOnce(t, srv, "batch/idem", msgs)

	// The same key still in progress elsewhere: transient, and a retry
	// succeeds.
	srv.Fail(1, 409, "concurrent_idempotent_requests")
	one := newMailer(t, srv, nil)
	_, err = one.SendBatch(context.Background(), "batch/idem2", batch("idem2", 2))
	if !errors.Is(err, resendmailer.ErrTransient) || errors.Is(err, reset.ErrPermanent) {
		t.Errorf("err = %v, want transient", err)
	}
	if per, err := m.SendBatch(context.Background(), "batch/idem2", batch("idem2", 2)); err != nil || errors.Join(per...) != nil {
		t.Errorf("retry: %v, %v", per, err)
	}
}

// Two processes sending the same batch at once send it once.
func TestSendBatchConcurrentSameKeySendsOnce(t *testing.T) {
	srv := newServer(t)
	msgs := batch("two", 5)
	err := twoProcessesAtOnce(t, srv, func(m *resendmailer.Mailer) error {
		per, err := m.SendBatch(context.Background(), "batch/two", msgs)
		return errors.Join(err, errors.Join(per...))
	})
	if err != nil {
		t.Fatal(err)
	}
	checkSentOnce(t, srv, "batch/two", msgs)
}

// Each failure is logged once, by the caller: the Mailer logs its calls
// and refusals at Debug only.
func TestFailuresAreLoggedAtDebug(t *testing.T) {
	srv := newServer(t)
	var mu sync.Mutex
	var above []string
	debug := 0
	logger := slog.New(recordFunc(func(r slog.Record) {
		mu.Lock()
		defer mu.Unlock()
		if r.Level > slog.LevelDebug {
			above = append(above, r.Level.String()+" "+r.Message)
		} else {
			debug++
		}
	}))
	srv.Fail(-1, 503, "")
	m := newMailer(t, srv, func(o *resendmailer.Options) { o.Logger = logger })
	if err := m.Send(context.Background(), message("lg1")); err == nil {
		t.Fatal("Send succeeded against a failing server")
	}
	if _, err := m.SendBatch(context.Background(), "batch/lg", batch("lg", 2)); err == nil {
		t.Fatal("SendBatch succeeded against a failing server")
	}
	srv.Fail(-1, 422, "validation_error")
	_ = m.Send(context.Background(), message("lg2"))
	srv.Fail(0, 0, "")
	srv.SetRejectRecipient(func(string) bool { return true })
	_, _ = m.SendBatch(context.Background(), "batch/lg2", batch("lg2", 2))
	mu.Lock()
	defer mu.Unlock()
	if len(above) > 0 {
		t.Errorf("logged above Debug: %q", above)
	}
	if debug < 5 {
		t.Errorf("%d Debug records, want one per failed attempt and refusal", debug)
	}
}

// TestTenThousandMessagesTakeOneHundredCalls counts the API calls that
// 10,000 messages take in batches of MaxBatch.
func TestTenThousandMessagesTakeOneHundredCalls(t *testing.T) {
	srv := newServer(t)
	m := newMailer(t, srv, nil)
	calls, sent := sendAll(t, srv, m, 10000)
	if calls != 100 || sent != 10000 {
		t.Errorf("%d messages in %d calls, want 10000 in 100", sent, calls)
	}
}

// sendAll sends n messages in batches of m.MaxBatch() and returns the
// calls the server saw and the emails it accepted; each message must be
// accepted once, under its batch's key.
func sendAll(tb testing.TB, srv *resendtest.Server, m *resendmailer.Mailer, n int) (calls, sent int) {
	tb.Helper()
	before := srv.Stats()
	msgs := batch(fmt.Sprintf("all%d-", before.Calls), n)
	for start := 0; start < n; start += m.MaxBatch() {
		part := msgs[start:min(start+m.MaxBatch(), n)]
		per, err := m.SendBatch(context.Background(), fmt.Sprintf("batch/%d-%d", before.Calls, start), part)
		if err != nil || errors.Join(per...) != nil {
			tb.Fatalf("batch at %d: %v, %v", start, err, errors.Join(per...))
		}
	}
	after := srv.Stats()
	seen := map[string]int{}
	for _, e := range srv.Emails()[before.Emails:] {
		seen[e.To[0]+" "+e.IdempotencyKey]++
	}
	for i, msg := range msgs {
		if k := msg.To + fmt.Sprintf(" batch/%d-%d", before.Calls, i/m.MaxBatch()*m.MaxBatch()); seen[k] != 1 {
			tb.Fatalf("%q accepted %d times, want once", k, seen[k])
		}
	}
	return after.Calls - before.Calls, after.Emails - before.Emails
}

// BenchmarkSendBatch10k sends 10,000 messages in batches of MaxBatch
// against the fake, and reports messages per call, calls and the seconds
// it took. Pacing is the queue's: the fake has no rate limit here.
func BenchmarkSendBatch10k(b *testing.B) {
	srv := resendtest.NewServer()
	defer srv.Close()
	m, err := resendmailer.New(resendmailer.Options{APIKey: resendtest.APIKey, From: "security@acme.example", BaseURL: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	const n = 10000
	start := time.Now()
	var calls, sent int
	for b.Loop() {
		c, s := sendAll(b, srv, m, n)
		calls, sent = calls+c, sent+s
	}
	b.ReportMetric(float64(sent)/float64(calls), "msgs/call")
	b.ReportMetric(float64(calls)/float64(b.N), "calls/10k")
	b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/10k")
}

// The flap for a batch: accept, then drop, again and again. Every call is
// an unknown outcome for the whole batch, one request each, and the server
// holds each email once, under the batch's key.
func TestSendBatchFlapAcceptThenDrop(t *testing.T) {
	srv := newServer(t)
	srv.SetFaultMode(resendtest.AcceptThenDrop, 0)
	m := newMailer(t, srv, nil)
	msgs := batch("flap", 5)
	const tries = 5
	for i := range tries {
		per, err := m.SendBatch(context.Background(), "batch/flap", msgs)
		if per != nil || !errors.Is(err, reset.ErrOutcomeUnknown) || errors.Is(err, resendmailer.ErrTransient) || errors.Is(err, reset.ErrPermanent) {
			t.Fatalf("try %d: SendBatch = %v, %v; want reset.ErrOutcomeUnknown only", i, per, err)
		}
	}
	if n := len(srv.Requests()); n != tries {
		t.Errorf("%d requests, want %d", n, tries)
	}
	srv.SetFaultMode(resendtest.NoFault, 0)
	if per, err := m.SendBatch(context.Background(), "batch/flap", msgs); err != nil || errors.Join(per...) != nil {
		t.Fatalf("after the flap: %v, %v", per, err)
	}
	checkSentOnce(t, srv, "batch/flap", msgs)
}
