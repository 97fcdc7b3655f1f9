package resendmailer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
)

const (
	secretToken = "tok_SECRET_4f1c9a"
	secretLink  = "https://app.example/reset?token=" + secretToken
	recipient   = "ada@example.com"
)

// message returns a rendered reset message whose body holds the link.
func message(id string) reset.Message {
	return reset.Message{
		ID:      id,
		Kind:    reset.KindReset,
		To:      recipient,
		Subject: "Reset your password",
		Text:    "Open " + secretLink + " to choose a new password.\n",
		HTML:    `<p><a href="` + secretLink + `">Choose a new password</a></p>`,
	}
}

// newMailer returns a Mailer aimed at srv; edit adjusts the options.
func newMailer(t *testing.T, srv *resendtest.Server, edit func(*resendmailer.Options)) *resendmailer.Mailer {
	t.Helper()
	opts := resendmailer.Options{
		APIKey:  resendtest.APIKey,
		From:    "Acme Security <security@acme.example>",
		BaseURL: srv.URL,
		Timeout: 5 * time.Second,
	}
	if edit != nil {
		edit(&opts)
	}
	m, err := resendmailer.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newServer(t *testing.T) *resendtest.Server {
	srv := resendtest.NewServer()
	t.Cleanup(srv.Close)
	return srv
}

// statuses lists the status answered to each request.
func statuses(srv *resendtest.Server) []int {
	var out []int
	for _, r := range srv.Requests() {
		out = append(out, r.Status)
	}
	return out
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := resendmailer.New(resendmailer.Options{})
	if err == nil || !strings.Contains(err.Error(), "APIKey is required") || !strings.Contains(err.Error(), "From is required") {
		t.Fatalf("New(zero) = %v, want an error naming APIKey and From", err)
	}
	_, err = resendmailer.New(resendmailer.Options{
		APIKey:  "re_x",
		From:    "Acme <a@acme.example>\r\nBcc: victim@example.com",
		ReplyTo: "nobody-valid",
		Tags:    []resendmailer.Tag{{Name: "kind", Value: "x"}, {Name: "bad name", Value: "v"}, {Name: "ok", Value: "bad/value"}},
		BaseURL: "ftp://example.com",
		Timeout: -1,
	})
	if err == nil {
		t.Fatal("New accepted bad options")
	}
	for _, want := range []string{"From contains a line break", "ReplyTo", "Tags[0]", "reserved", "Tags[1]", "Tags[2]", "BaseURL", "Timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	for _, secret := range []string{"re_x", "victim@example.com", "nobody-valid"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q holds %q", err, secret)
		}
	}
	// A BaseURL is never quoted: it may hold credentials, and net/url's
	// errors quote their input.
	for _, base := range []string{"https://user:pa%zzss@x.example/", "https://user:s3cret@x.example/", "ht!tp://s3cret", "https://[s3cret"} {
		_, err := resendmailer.New(resendmailer.Options{APIKey: "re_x", From: "a@acme.example", BaseURL: base})
		if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "pa%zzss") {
			t.Errorf("New(BaseURL %q) = %v, want an error that does not quote it", base, err)
		}
	}

	hc := &http.Client{}
	if _, err := resendmailer.New(resendmailer.Options{APIKey: "re_x", From: "a@acme.example", HTTPClient: hc}); err != nil {
		t.Fatal(err)
	}
	if hc.Transport != nil {
		t.Error("New modified the HTTPClient it was given")
	}
}

func TestSendDeliversEveryField(t *testing.T) {
	srv := newServer(t)
	m := newMailer(t, srv, func(o *resendmailer.Options) {
		o.ReplyTo = "Support <support@acme.example>"
		o.Tags = []resendmailer.Tag{{Name: "category", Value: "password_reset"}, {Name: "app", Value: "web-1"}}
	})
	msg := message("7f3a")
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	emails := srv.Emails()
	if len(emails) != 1 {
		t.Fatalf("%d emails recorded, want 1", len(emails))
	}
	e := emails[0]
	check := func(field string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	check("From", e.From, "Acme Security <security@acme.example>")
	check("To", e.To, []string{recipient})
	check("Subject", e.Subject, msg.Subject)
	check("Text", e.Text, msg.Text)
	check("HTML", e.HTML, msg.HTML)
	check("ReplyTo", e.ReplyTo, []string{"Support <support@acme.example>"})
	check("Tags", e.Tags, []resendtest.Tag{{Name: "category", Value: "password_reset"}, {Name: "app", Value: "web-1"}, {Name: "kind", Value: "password_reset"}, {Name: "message_id", Value: "7f3a"}})
	check("IdempotencyKey", e.IdempotencyKey, "password_reset/7f3a")
	check("Cc", e.Cc, []string(nil))
	check("Bcc", e.Bcc, []string(nil))
	if len(srv.Requests()) != 1 {
		t.Errorf("%d requests, want 1", len(srv.Requests()))
	}
	if strings.Contains(e.IdempotencyKey, secretToken) {
		t.Error("the idempotency key holds the token")
	}
}

func TestDefaultTags(t *testing.T) {
	srv := newServer(t)
	m := newMailer(t, srv, nil)
	msg := message("c0ffee")
	msg.Kind = reset.KindChanged
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	want := []resendtest.Tag{{Name: "category", Value: "password_reset"}, {Name: "kind", Value: "password_changed"}, {Name: "message_id", Value: "c0ffee"}}
	if got := srv.Emails()[0].Tags; !reflect.DeepEqual(got, want) {
		t.Errorf("tags = %v, want %v", got, want)
	}
	m = newMailer(t, srv, func(o *resendmailer.Options) { o.Tags = []resendmailer.Tag{} })
	if err := m.Send(context.Background(), message("c0ffee2")); err != nil {
		t.Fatal(err)
	}
	want = []resendtest.Tag{{Name: "kind", Value: "password_reset"}, {Name: "message_id", Value: "c0ffee2"}}
	if got := srv.Emails()[1].Tags; !reflect.DeepEqual(got, want) {
		t.Errorf("tags with Tags: []Tag{} = %v, want %v", got, want)
	}
}

func TestPermanentFailuresAreNotRetried(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(srv *resendtest.Server, o *resendmailer.Options, msg *reset.Message)
		status int
		ename  string
	}{
		{"422 invalid recipient", func(_ *resendtest.Server, _ *resendmailer.Options, msg *reset.Message) {
			msg.To = "not-an-address"
		}, 422, "validation_error"},
		{"422 no content", func(_ *resendtest.Server, _ *resendmailer.Options, msg *reset.Message) {
			msg.Text, msg.HTML = "", ""
		}, 422, "missing_required_field"},
		{"401 missing key", func(srv *resendtest.Server, _ *resendmailer.Options, _ *reset.Message) {
			srv.Fail(1, 401, "missing_api_key")
		}, 401, "missing_api_key"},
		{"403 wrong key", func(_ *resendtest.Server, o *resendmailer.Options, _ *reset.Message) {
			o.APIKey = "re_wrong"
		}, 403, "invalid_api_key"},
		{"400 validation", func(srv *resendtest.Server, _ *resendmailer.Options, _ *reset.Message) {
			srv.Fail(1, 400, "validation_error")
		}, 400, "validation_error"},
		{"404 wrong base URL", func(srv *resendtest.Server, o *resendmailer.Options, _ *reset.Message) {
			o.BaseURL = srv.URL + "/v0/"
		}, 404, "not_found"},
		{"429 daily quota", func(srv *resendtest.Server, _ *resendmailer.Options, _ *reset.Message) {
			srv.Fail(1, 429, "daily_quota_exceeded")
		}, 429, "daily_quota_exceeded"},
		{"451 security error", func(srv *resendtest.Server, _ *resendmailer.Options, _ *reset.Message) {
			srv.Fail(1, 451, "security_error")
		}, 451, "security_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			msg := message("perm1")
			m := newMailer(t, srv, func(o *resendmailer.Options) { tt.setup(srv, o, &msg) })
			err := m.Send(context.Background(), msg)
			checkPermanent(t, err, tt.status, tt.ename)
			if n := len(srv.Requests()); n != 1 {
				t.Errorf("%d requests, want exactly 1", n)
			}
			if n := len(srv.Emails()); n != 0 {
				t.Errorf("%d emails recorded, want 0", n)
			}
		})
	}
}

func checkPermanent(t *testing.T, err error, status int, name string) {
	t.Helper()
	if !errors.Is(err, resendmailer.ErrPermanent) || !errors.Is(err, reset.ErrPermanent) || errors.Is(err, resendmailer.ErrTransient) {
		t.Fatalf("err = %v, want ErrPermanent and reset.ErrPermanent only", err)
	}
	var re *resendmailer.Error
	if !errors.As(err, &re) {
		t.Fatalf("err = %v holds no *Error", err)
	}
	if re.StatusCode != status || re.Name != name {
		t.Errorf("*Error = %d %q, want %d %q", re.StatusCode, re.Name, status, name)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(status)) || !strings.Contains(err.Error(), name) {
		t.Errorf("err %q does not name the status and %q", err, name)
	}
}

func TestSameKeyOtherBodyIsPermanent(t *testing.T) {
	srv := newServer(t)
	m := newMailer(t, srv, nil)
	msg := message("dup1")
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	msg.Subject = "Something else"
	err := m.Send(context.Background(), msg)
	checkPermanent(t, err, 409, "invalid_idempotent_request")
	if got := statuses(srv); !reflect.DeepEqual(got, []int{200, 409}) {
		t.Errorf("statuses = %v, want [200 409]", got)
	}
}

func TestInvalidMessageMakesNoRequest(t *testing.T) {
	srv := newServer(t)
	m := newMailer(t, srv, nil)
	for _, msg := range []reset.Message{
		{Kind: reset.KindReset, To: recipient, Subject: "s", Text: "t"},                        // no ID
		{ID: "x", Kind: "bad kind", To: recipient, Subject: "s", Text: "t"},                    // kind not a tag value
		{ID: "x", Kind: reset.KindReset, To: "a@example.com\r\nBcc: b@example.com", Text: "t"}, // header injection
		{ID: strings.Repeat("x", 300), Kind: reset.KindReset, To: recipient, Text: "t"},        // key too long
	} {
		if err := m.Send(context.Background(), msg); !errors.Is(err, resendmailer.ErrPermanent) || !errors.Is(err, reset.ErrPermanent) {
			t.Errorf("Send(%.40q) = %v, want ErrPermanent", msg.ID, err)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests, want 0", n)
	}
}

// checkCalls checks that the server saw n requests: one per call; the
// Mailer retried nothing (nor did net/http on its behalf).
func checkCalls(t *testing.T, srv *resendtest.Server, n int) {
	t.Helper()
	if got := len(srv.Requests()); got != n {
		t.Errorf("%d requests, want %d: one per call", got, n)
	}
}

func TestRateLimitCarriesRetryAfter(t *testing.T) {
	srv := newServer(t)
	srv.SetHook(func(r resendtest.Request) resendtest.Fault {
		return resendtest.Fault{Status: 429, Name: "rate_limit_exceeded", RetryAfter: "3600"}
	})
	m := newMailer(t, srv, nil)
	err := m.Send(context.Background(), message("ra1"))
	var rl *reset.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != time.Hour {
		t.Fatalf("err = %v, want a *reset.RateLimitError with RetryAfter 1h", err)
	}
	if !errors.Is(err, resendmailer.ErrTransient) || errors.Is(err, reset.ErrPermanent) || errors.Is(err, reset.ErrOutcomeUnknown) {
		t.Errorf("err = %v, want transient only", err)
	}
	checkCalls(t, srv, 1)
}

// Without Retry-After, a 429 waits for ratelimit-reset.
func TestRateLimitFallsBackToRatelimitReset(t *testing.T) {
	srv := newServer(t)
	srv.SetRateLimit(5, time.Hour) // sets the headers; reset is within the hour
	srv.SetHook(func(resendtest.Request) resendtest.Fault {
		return resendtest.Fault{Status: 429, Name: "rate_limit_exceeded"} // no Retry-After
	})
	m := newMailer(t, srv, nil)
	err := m.Send(context.Background(), message("rr1"))
	var rl *reset.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter <= 0 || rl.RetryAfter > time.Hour {
		t.Fatalf("err = %v, want a *reset.RateLimitError with the ratelimit-reset wait", err)
	}
	checkCalls(t, srv, 1)
}

// Against a sliding window of 2, the third call within the window is
// refused with the server's wait; the Mailer does not wait or retry.
func TestServerRateLimitIsReported(t *testing.T) {
	srv := newServer(t)
	srv.SetSlidingRateLimit(2, time.Hour) // one long window: no call leaves it during the test
	m := newMailer(t, srv, nil)
	var errs []error
	for _, id := range []string{"rl1", "rl2", "rl3"} {
		errs = append(errs, m.Send(context.Background(), message(id)))
	}
	var rl *reset.RateLimitError
	if errs[0] != nil || errs[1] != nil || !errors.As(errs[2], &rl) || rl.RetryAfter <= 0 {
		t.Fatalf("errors = %v, want nil, nil, a *reset.RateLimitError with a wait", errs)
	}
	if st := srv.Stats(); st.Calls != 3 || st.RateLimited != 1 || st.Emails != 2 {
		t.Errorf("stats = %+v, want 3 calls, 1 refused, 2 emails", st)
	}
}

// ProviderRate advertises Resend's default until Resend says otherwise
// in ratelimit-limit, then follows it.
func TestProviderRateFollowsResend(t *testing.T) {
	srv := newServer(t)
	m := newMailer(t, srv, nil)
	if r, b := m.ProviderRate(); r != 2 || b != 1 {
		t.Errorf("ProviderRate() = %v, %d before any answer; want 2, 1", r, b)
	}
	if err := m.Send(context.Background(), message("pr1")); err != nil {
		t.Fatal(err)
	}
	if r, b := m.ProviderRate(); r != 2 || b != 1 {
		t.Errorf("ProviderRate() = %v, %d after an answer without the header; want 2, 1", r, b)
	}
	srv.SetSlidingRateLimit(10, time.Second)
	if err := m.Send(context.Background(), message("pr2")); err != nil {
		t.Fatal(err)
	}
	if r, b := m.ProviderRate(); r != 10 || b != 1 {
		t.Errorf("ProviderRate() = %v, %d after ratelimit-limit: 10; want 10, 1", r, b)
	}
}

func TestServerErrorIsTransient(t *testing.T) {
	for _, tc := range []struct {
		status int
		name   string
	}{{500, "internal_server_error"}, {503, ""}, {409, "concurrent_idempotent_requests"}, {408, ""}} {
		srv := newServer(t)
		srv.Fail(1, tc.status, tc.name)
		m := newMailer(t, srv, nil)
		err := m.Send(context.Background(), message("r500"))
		var re *resendmailer.Error
		if !errors.Is(err, resendmailer.ErrTransient) || errors.Is(err, reset.ErrPermanent) ||
			errors.Is(err, reset.ErrOutcomeUnknown) || errors.Is(err, reset.ErrRateLimited) || !errors.As(err, &re) || re.StatusCode != tc.status {
			t.Errorf("%d %s: err = %v, want a transient *Error", tc.status, tc.name, err)
		}
		// The queue's retry, with the same key, sends it.
		if err := m.Send(context.Background(), message("r500")); err != nil {
			t.Fatal(err)
		}
		if got := statuses(srv); !reflect.DeepEqual(got, []int{tc.status, 200}) {
			t.Errorf("%d: statuses = %v, want [%d 200]", tc.status, got, tc.status)
		}
		if n := len(srv.Emails()); n != 1 {
			t.Errorf("%d emails, want exactly 1", n)
		}
	}
}

// The flap: accept, then drop the connection, again and again. Every
// Send reports an unknown outcome (never a transient failure, which
// would let the queue resend under another key), each Send is one
// request, and the server holds the email once, under its key.
func TestFlapAcceptThenDrop(t *testing.T) {
	srv := newServer(t)
	srv.SetFaultMode(resendtest.AcceptThenDrop, 0)
	m := newMailer(t, srv, nil)
	msg := message("flap1")
	const tries = 6
	for i := range tries {
		err := m.Send(context.Background(), msg)
		if !errors.Is(err, reset.ErrOutcomeUnknown) || errors.Is(err, resendmailer.ErrTransient) || errors.Is(err, reset.ErrPermanent) {
			t.Fatalf("try %d: err = %v, want reset.ErrOutcomeUnknown only", i, err)
		}
	}
	checkCalls(t, srv, tries)
	if st := srv.Stats(); st.Faults.AcceptedThenDropped != tries {
		t.Errorf("faults = %+v, want %d accept-then-drop", st.Faults, tries)
	}
	emails := srv.Emails()
	if len(emails) != 1 || emails[0].IdempotencyKey != msg.IdempotencyKey() {
		t.Fatalf("emails = %+v, want one under %s", emails, msg.IdempotencyKey())
	}
	srv.SetFaultMode(resendtest.NoFault, 0)
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Emails()); n != 1 {
		t.Errorf("%d emails after the flap ended, want 1", n)
	}
	if last := srv.Requests()[tries]; last.Status != 200 || last.EmailID != emails[0].ID {
		t.Errorf("the last request = %+v, want a replay of %s", last, emails[0].ID)
	}
}

// Each fault, as the Mailer classifies it: one request each.
func TestFaultClassification(t *testing.T) {
	for _, tc := range []struct {
		mode    resendtest.FaultMode
		unknown bool // else transient
		emails  int  // recorded by the faulty call
	}{
		{resendtest.Answer500, false, 0},
		{resendtest.DropBefore, true, 0}, // written, then no answer: the client cannot know
		{resendtest.Hang, true, 0},
		{resendtest.AcceptThenDrop, true, 1},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			srv := newServer(t)
			srv.SetFaultMode(tc.mode, 0)
			m := newMailer(t, srv, func(o *resendmailer.Options) { o.Timeout = 200 * time.Millisecond })
			err := m.Send(context.Background(), message("f1"))
			if got := errors.Is(err, reset.ErrOutcomeUnknown); got != tc.unknown || errors.Is(err, resendmailer.ErrTransient) == tc.unknown {
				t.Fatalf("err = %v; unknown %v, want %v", err, got, tc.unknown)
			}
			if n := len(srv.Emails()); n != tc.emails {
				t.Errorf("%d emails, want %d", n, tc.emails)
			}
			checkCalls(t, srv, 1)
			srv.SetFaultMode(resendtest.NoFault, 0)
			if err := m.Send(context.Background(), message("f1")); err != nil {
				t.Fatal(err)
			}
			if n := len(srv.Emails()); n != 1 {
				t.Errorf("%d emails after the retry, want 1", n)
			}
		})
	}
}

// A 422 whose message names the recipient: the error keeps the status, the
// name and the plain words, not the address.
func TestErrorTextHoldsNoAddress(t *testing.T) {
	srv := newServer(t)
	srv.SetHook(func(resendtest.Request) resendtest.Fault {
		return resendtest.Fault{Status: 422, Name: "validation_error",
			Message: "Invalid `to` field: " + recipient + " (<" + recipient + ">) cannot receive email; key " + resendtest.APIKey}
	})
	m := newMailer(t, srv, nil)
	err := m.Send(context.Background(), message("addr1"))
	checkPermanent(t, err, 422, "validation_error")
	var re *resendmailer.Error
	errors.As(err, &re)
	for _, s := range []string{err.Error(), re.Message} {
		for _, secret := range []string{recipient, "example.com", resendtest.APIKey, secretToken} {
			if strings.Contains(s, secret) {
				t.Errorf("%q holds %q", s, secret)
			}
		}
	}
	if !strings.Contains(re.Message, "Invalid `to` field") {
		t.Errorf("Message = %q, want the plain words kept", re.Message)
	}
}

// recordFunc is a slog.Handler that calls itself with each record.
type recordFunc func(slog.Record)

func (f recordFunc) Enabled(context.Context, slog.Level) bool { return true }
func (f recordFunc) Handle(_ context.Context, r slog.Record) error {
	f(r)
	return nil
}
func (f recordFunc) WithAttrs([]slog.Attr) slog.Handler { return f }
func (f recordFunc) WithGroup(string) slog.Handler      { return f }

func TestCancelDuringAttemptReturnsPromptly(t *testing.T) {
	srv := newServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv.SetHook(func(resendtest.Request) resendtest.Fault {
		cancel() // the request has reached the server
		return resendtest.Fault{Delay: time.Minute}
	})
	m := newMailer(t, srv, nil)
	start := time.Now()
	err := m.Send(ctx, message("cancel2"))
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("Send returned %v after the cancel", elapsed)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, reset.ErrOutcomeUnknown) || errors.Is(err, resendmailer.ErrTransient) {
		t.Fatalf("err = %v, want context.Canceled and an unknown outcome (the request was written)", err)
	}
	checkCalls(t, srv, 1)
}

func TestSlowServerHitsTimeout(t *testing.T) {
	srv := newServer(t)
	srv.SetDelay(time.Minute)
	m := newMailer(t, srv, func(o *resendmailer.Options) { o.Timeout = 100 * time.Millisecond })
	start := time.Now()
	err := m.Send(context.Background(), message("slow1"))
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("Send took %v against a server that answers after a minute", elapsed)
	}
	if !errors.Is(err, reset.ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want an unknown outcome wrapping context.DeadlineExceeded", err)
	}
	checkCalls(t, srv, 1)
	if n := len(srv.Emails()); n != 0 {
		t.Errorf("%d emails, want 0", n)
	}
}

func TestLostAnswerThenRetrySendsOnce(t *testing.T) {
	srv := newServer(t)
	// The first request is processed but its answer comes too late.
	srv.SetHook(func(r resendtest.Request) resendtest.Fault {
		if r.N == 1 {
			return resendtest.Fault{Late: time.Minute}
		}
		return resendtest.Fault{}
	})
	m := newMailer(t, srv, func(o *resendmailer.Options) { o.Timeout = 200 * time.Millisecond })
	if err := m.Send(context.Background(), message("lost1")); !errors.Is(err, reset.ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want an unknown outcome", err)
	}
	if err := m.Send(context.Background(), message("lost1")); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[1].Status != 200 {
		t.Fatalf("requests = %+v, want a timed-out one and a replayed 200", reqs)
	}
	emails := srv.Emails()
	if len(emails) != 1 || reqs[1].EmailID != emails[0].ID {
		t.Errorf("emails = %d, replay answered %q, want one email whose id is replayed", len(emails), reqs[1].EmailID)
	}
}

func TestReplaySendsOnce(t *testing.T) {
	srv := newServer(t)
	m := newMailer(t, srv, nil)
	msg := message("replay1")
	for range 3 {
		if err := m.Send(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	// A second process (another Mailer) sending the same message.
	if err := newMailer(t, srv, nil).Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Emails()); n != 1 {
		t.Errorf("%d emails, want 1", n)
	}
	reqs := srv.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4", len(reqs))
	}
	for _, r := range reqs {
		if r.Status != 200 || r.EmailID != reqs[0].EmailID {
			t.Errorf("request %d: %d %q, want 200 %q", r.N, r.Status, r.EmailID, reqs[0].EmailID)
		}
	}
}

func TestTwoProcessesSendingAtOnceSendOnce(t *testing.T) {
	srv := newServer(t)
	msg := message("twice1")
	err := twoProcessesAtOnce(t, srv, func(m *resendmailer.Mailer) error { return m.Send(context.Background(), msg) })
	if err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Emails()); n != 1 {
		t.Errorf("%d emails, want 1; statuses %v", n, statuses(srv))
	}
	t.Logf("statuses %v", statuses(srv))
}

// twoProcessesAtOnce runs send with two Mailers (two processes) at once,
// with the server's first request slow, so that the other may arrive
// while it is in progress and be told to come back (409
// concurrent_idempotent_requests, transient). Then, as a queue would, it
// sends again with each Mailer whose call failed, and returns the errors
// of those second calls joined.
func twoProcessesAtOnce(t *testing.T, srv *resendtest.Server, send func(*resendmailer.Mailer) error) error {
	t.Helper()
	srv.SetHook(func(r resendtest.Request) resendtest.Fault {
		if r.N == 1 {
			return resendtest.Fault{Delay: 300 * time.Millisecond}
		}
		return resendtest.Fault{}
	})
	var wg sync.WaitGroup
	ms := []*resendmailer.Mailer{newMailer(t, srv, nil), newMailer(t, srv, nil)}
	errs := make([]error, len(ms))
	for i, m := range ms {
		wg.Go(func() { errs[i] = send(m) })
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, resendmailer.ErrTransient) {
			t.Errorf("process %d: %v, want nil or a transient 409", i, err)
		}
		errs[i] = send(ms[i])
	}
	return errors.Join(errs...)
}

func TestUnreachableServerIsTransient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	m, err := resendmailer.New(resendmailer.Options{APIKey: "re_x", From: "a@acme.example", BaseURL: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Send(context.Background(), message("down1"))
	if !errors.Is(err, resendmailer.ErrTransient) || errors.Is(err, reset.ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want ErrTransient: nothing was written", err)
	}
	var re *resendmailer.Error
	if errors.As(err, &re) {
		t.Errorf("err = %v holds an *Error, but no answer came", err)
	}
}

func TestUnreadableSuccessIsAnUnknownOutcome(t *testing.T) {
	// A 2xx answer without a JSON body: Resend may have sent the email,
	// and the retry with the same key must not send it again.
	var mu sync.Mutex
	calls := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if n == 1 {
			fmt.Fprint(w, "<html>gateway</html>")
			return
		}
		fmt.Fprint(w, `{"id":"49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"}`)
	}))
	defer ts.Close()
	m, err := resendmailer.New(resendmailer.Options{APIKey: "re_x", From: "a@acme.example", BaseURL: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), message("html1")); !errors.Is(err, reset.ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want an unknown outcome", err)
	}
	if err := m.Send(context.Background(), message("html1")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Errorf("%d calls, want 2", calls)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestNeverLogsSecrets(t *testing.T) {
	srv := newServer(t)
	var logs syncBuffer
	m := newMailer(t, srv, func(o *resendmailer.Options) {
		o.Timeout = 100 * time.Millisecond
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	srv.SetHook(func(r resendtest.Request) resendtest.Fault {
		switch r.N {
		case 1:
			return resendtest.Fault{Status: 500}
		case 2:
			return resendtest.Fault{Status: 429, RetryAfter: "0"}
		case 3:
			return resendtest.Fault{Delay: time.Minute} // times out
		case 4:
			return resendtest.Fault{Drop: true}
		}
		return resendtest.Fault{}
	})
	var errs []error
	for range 5 {
		errs = append(errs, m.Send(context.Background(), message("log1")))
	}
	bad := message("log2")
	bad.To = "not-an-address"
	errs = append(errs, m.Send(context.Background(), bad))
	if errs[4] != nil || errs[5] == nil {
		t.Fatalf("errors = %v, want success on the 5th call, then a failure", errs)
	}
	out := logs.String()
	if !strings.Contains(out, "message_id=log1") || !strings.Contains(out, "status=500") {
		t.Errorf("log lacks the message id or status:\n%s", out)
	}
	for _, secret := range []string{resendtest.APIKey, secretToken, recipient, "not-an-address"} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q:\n%s", secret, out)
		}
		for _, err := range errs {
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("error %q holds %q", err, secret)
			}
		}
	}
}
