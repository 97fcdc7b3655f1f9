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

	"golang.org/x/time/rate"

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

// newMailer returns a Mailer aimed at srv with fast retries and no pacing;
// edit adjusts the options.
func newMailer(t *testing.T, srv *resendtest.Server, edit func(*resendmailer.Options)) *resendmailer.Mailer {
	t.Helper()
	opts := resendmailer.Options{
		APIKey:      resendtest.APIKey,
		From:        "Acme Security <security@acme.example>",
		BaseURL:     srv.URL,
		Timeout:     5 * time.Second,
		MaxElapsed:  10 * time.Second,
		BackoffBase: time.Millisecond,
		BackoffMax:  5 * time.Second,
		Rate:        rate.Inf,
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
		APIKey:      "re_x",
		From:        "Acme <a@acme.example>\r\nBcc: victim@example.com",
		ReplyTo:     "not an address",
		Tags:        []resendmailer.Tag{{Name: "kind", Value: "x"}, {Name: "bad name", Value: "v"}, {Name: "ok", Value: "bad/value"}},
		BaseURL:     "ftp://example.com",
		MaxAttempts: -1,
		Rate:        -1,
	})
	if err == nil {
		t.Fatal("New accepted bad options")
	}
	for _, want := range []string{"From contains a line break", "ReplyTo", "Tags[0]", "reserved", "Tags[1]", "Tags[2]", "BaseURL", "MaxAttempts", "Rate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "re_x") {
		t.Errorf("error %q holds the API key", err)
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
	check("Tags", e.Tags, []resendtest.Tag{{Name: "category", Value: "password_reset"}, {Name: "app", Value: "web-1"}, {Name: "kind", Value: "password_reset"}})
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
	want := []resendtest.Tag{{Name: "category", Value: "password_reset"}, {Name: "kind", Value: "password_changed"}}
	if got := srv.Emails()[0].Tags; !reflect.DeepEqual(got, want) {
		t.Errorf("tags = %v, want %v", got, want)
	}
	m = newMailer(t, srv, func(o *resendmailer.Options) { o.Tags = []resendmailer.Tag{} })
	if err := m.Send(context.Background(), message("c0ffee2")); err != nil {
		t.Fatal(err)
	}
	want = []resendtest.Tag{{Name: "kind", Value: "password_reset"}}
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

func TestRetryAfterIsHonoured(t *testing.T) {
	srv := newServer(t)
	srv.SetHook(func(r resendtest.Request) resendtest.Fault {
		if r.N == 1 {
			return resendtest.Fault{Status: 429, Name: "rate_limit_exceeded", RetryAfter: "1"}
		}
		return resendtest.Fault{}
	})
	m := newMailer(t, srv, nil)
	if err := m.Send(context.Background(), message("ra1")); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if got := statuses(srv); !reflect.DeepEqual(got, []int{429, 200}) {
		t.Fatalf("statuses = %v, want [429 200]", got)
	}
	if gap := reqs[1].Received.Sub(reqs[0].Received); gap < time.Second {
		t.Errorf("retried %v after a 429 with retry-after: 1, want at least 1s", gap)
	}
	if n := len(srv.Emails()); n != 1 {
		t.Errorf("%d emails, want 1", n)
	}
}

func TestServerRateLimitIsWaitedOut(t *testing.T) {
	srv := newServer(t)
	srv.SetRateLimit(1, time.Second)
	m := newMailer(t, srv, nil) // no client-side pacing: the server has to say so
	for _, id := range []string{"rl1", "rl2"} {
		if err := m.Send(context.Background(), message(id)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.Emails()); n != 2 {
		t.Errorf("%d emails, want 2", n)
	}
	if srv.RateLimited() < 1 {
		t.Errorf("the server refused no request; statuses %v", statuses(srv))
	}
	for _, r := range srv.Requests() {
		if r.Status != 200 && r.Status != 429 {
			t.Errorf("request %d answered %d", r.N, r.Status)
		}
	}
}

func TestRetryAfterBeyondBackoffMaxGivesUp(t *testing.T) {
	srv := newServer(t)
	srv.SetHook(func(resendtest.Request) resendtest.Fault {
		return resendtest.Fault{Status: 429, Name: "rate_limit_exceeded", RetryAfter: "3600"}
	})
	m := newMailer(t, srv, nil)
	err := m.Send(context.Background(), message("ra2"))
	if !errors.Is(err, resendmailer.ErrTransient) || !strings.Contains(err.Error(), "1h0m0s") {
		t.Fatalf("err = %v, want ErrTransient naming the requested wait", err)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestServerErrorsAreRetried(t *testing.T) {
	srv := newServer(t)
	srv.Fail(2, 500, "internal_server_error")
	m := newMailer(t, srv, nil)
	if err := m.Send(context.Background(), message("r500")); err != nil {
		t.Fatal(err)
	}
	if got := statuses(srv); !reflect.DeepEqual(got, []int{500, 500, 200}) {
		t.Errorf("statuses = %v, want [500 500 200]", got)
	}
	if n := len(srv.Emails()); n != 1 {
		t.Errorf("%d emails, want exactly 1", n)
	}
}

func TestConcurrentIdempotentRequestIsRetried(t *testing.T) {
	srv := newServer(t)
	srv.Fail(1, 409, "concurrent_idempotent_requests")
	m := newMailer(t, srv, nil)
	if err := m.Send(context.Background(), message("c409")); err != nil {
		t.Fatal(err)
	}
	if got := statuses(srv); !reflect.DeepEqual(got, []int{409, 200}) {
		t.Errorf("statuses = %v, want [409 200]", got)
	}
}

func TestUnendingOutageGivesUpWithinMaxElapsed(t *testing.T) {
	srv := newServer(t)
	srv.Fail(-1, 503, "internal_server_error")
	const maxElapsed = 300 * time.Millisecond
	m := newMailer(t, srv, func(o *resendmailer.Options) {
		o.MaxAttempts = 1000
		o.MaxElapsed = maxElapsed
		o.BackoffBase = 5 * time.Millisecond
		o.BackoffMax = 50 * time.Millisecond
	})
	start := time.Now()
	err := m.Send(context.Background(), message("r503"))
	elapsed := time.Since(start)
	if !errors.Is(err, resendmailer.ErrTransient) || errors.Is(err, resendmailer.ErrPermanent) || errors.Is(err, reset.ErrPermanent) {
		t.Fatalf("err = %v, want ErrTransient", err)
	}
	var re *resendmailer.Error
	if !errors.As(err, &re) || re.StatusCode != 503 {
		t.Fatalf("err = %v, want it to wrap the last 503", err)
	}
	if !strings.Contains(err.Error(), "gave up after") {
		t.Errorf("err = %q, want it to say it gave up", err)
	}
	if elapsed > maxElapsed+2*time.Second { // loose: only "bounded", not "fast"
		t.Errorf("Send took %v with MaxElapsed %v", elapsed, maxElapsed)
	}
	if n := len(srv.Requests()); n < 2 {
		t.Errorf("%d requests, want retries", n)
	}
}

func TestMaxAttemptsBoundsRequests(t *testing.T) {
	srv := newServer(t)
	srv.Fail(-1, 502, "")
	m := newMailer(t, srv, func(o *resendmailer.Options) { o.MaxAttempts = 3 })
	err := m.Send(context.Background(), message("max3"))
	if !errors.Is(err, resendmailer.ErrTransient) {
		t.Fatalf("err = %v, want ErrTransient", err)
	}
	if n := len(srv.Requests()); n != 3 {
		t.Errorf("%d requests, want exactly 3", n)
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

func TestCancelDuringBackoffReturnsPromptly(t *testing.T) {
	srv := newServer(t)
	// Retry-After makes the backoff 30 s, so a prompt return can only come
	// from the cancellation.
	srv.SetHook(func(resendtest.Request) resendtest.Fault {
		return resendtest.Fault{Status: 503, RetryAfter: "30"}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := newMailer(t, srv, func(o *resendmailer.Options) {
		o.BackoffMax = time.Minute
		o.MaxElapsed = time.Minute
		// The Mailer logs "retrying" just before it starts waiting.
		o.Logger = slog.New(recordFunc(func(r slog.Record) {
			if strings.Contains(r.Message, "retrying") {
				cancel()
			}
		}))
	})
	start := time.Now()
	err := m.Send(ctx, message("cancel1"))
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("Send returned %v after the cancel", elapsed)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "503") {
		t.Errorf("err = %q, want it to mention the last failure", err)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("%d requests, want 1: no request after the cancel", n)
	}
}

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
	if !errors.Is(err, context.Canceled) || errors.Is(err, resendmailer.ErrTransient) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestSlowServerHitsAttemptTimeout(t *testing.T) {
	srv := newServer(t)
	srv.SetDelay(time.Minute)
	m := newMailer(t, srv, func(o *resendmailer.Options) {
		o.Timeout = 100 * time.Millisecond
		o.MaxAttempts = 2
	})
	start := time.Now()
	err := m.Send(context.Background(), message("slow1"))
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("Send took %v against a server that answers after a minute", elapsed)
	}
	if !errors.Is(err, resendmailer.ErrTransient) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrTransient wrapping context.DeadlineExceeded", err)
	}
	if n := len(srv.Requests()); n != 2 {
		t.Errorf("%d requests, want 2 (one per attempt)", n)
	}
	if n := len(srv.Emails()); n != 0 {
		t.Errorf("%d emails, want 0", n)
	}
}

func TestLostAnswerIsRetriedWithoutDuplicate(t *testing.T) {
	srv := newServer(t)
	// The first request is processed but its answer comes too late.
	srv.SetHook(func(r resendtest.Request) resendtest.Fault {
		if r.N == 1 {
			return resendtest.Fault{Late: time.Minute}
		}
		return resendtest.Fault{}
	})
	m := newMailer(t, srv, func(o *resendmailer.Options) { o.Timeout = 200 * time.Millisecond })
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
// with the server's first request slow, so that the other arrives while
// it is in progress and is told to come back (409
// concurrent_idempotent_requests). It returns their errors joined.
func twoProcessesAtOnce(t *testing.T, srv *resendtest.Server, send func(*resendmailer.Mailer) error) error {
	t.Helper()
	srv.SetHook(func(r resendtest.Request) resendtest.Fault {
		if r.N == 1 {
			return resendtest.Fault{Delay: 300 * time.Millisecond}
		}
		return resendtest.Fault{}
	})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		m := newMailer(t, srv, func(o *resendmailer.Options) {
			o.MaxAttempts = 100 // enough to outlast the slow first request
			o.BackoffBase = 20 * time.Millisecond
			o.BackoffMax = 100 * time.Millisecond
		})
		wg.Go(func() { errs[i] = send(m) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func TestBurstIsPaced(t *testing.T) {
	srv := newServer(t)
	const perSecond = 20
	srv.SetRateLimit(perSecond, time.Second)
	m := newMailer(t, srv, func(o *resendmailer.Options) {
		o.Rate = perSecond
		o.Burst = 1
		o.MaxElapsed = 30 * time.Second
	})
	const n = 50
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = m.Send(context.Background(), message(fmt.Sprintf("burst%02d", i))) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("send %d: %v", i, err)
		}
	}
	emails := srv.Emails()
	keys := map[string]int{}
	for _, e := range emails {
		keys[e.IdempotencyKey]++
	}
	if len(emails) != n || len(keys) != n {
		t.Errorf("%d emails with %d distinct keys, want %d each", len(emails), len(keys), n)
	}
	// A token bucket of rate r and burst b admits at most b + r·T requests
	// in any span T: 21 in a one-second window here.
	if got := srv.MaxPerWindow(); got > perSecond+1 {
		t.Errorf("the server saw %d requests in one second, want at most %d", got, perSecond+1)
	}
	// Without pacing, 30 of the 50 would be refused. Arrival jitter at a
	// window's edge may cost one now and then.
	if got := srv.RateLimited(); got > 3 {
		t.Errorf("the server refused %d requests for the rate limit", got)
	}
	t.Logf("max per window %d, refused %d, requests %d", srv.MaxPerWindow(), srv.RateLimited(), len(srv.Requests()))
}

func TestNoRateSlotBeforeDeadline(t *testing.T) {
	srv := newServer(t)
	m := newMailer(t, srv, func(o *resendmailer.Options) {
		o.Rate = rate.Every(time.Hour) // one request, then none for an hour
	})
	if err := m.Send(context.Background(), message("slot1")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	err := m.Send(ctx, message("slot2"))
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("Send waited %v for a slot it could not get before its deadline", elapsed)
	}
	if !errors.Is(err, resendmailer.ErrTransient) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrTransient and context.DeadlineExceeded", err)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestUnreachableServerIsTransient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	m, err := resendmailer.New(resendmailer.Options{
		APIKey: "re_x", From: "a@acme.example", BaseURL: "http://" + addr,
		MaxAttempts: 2, BackoffBase: time.Millisecond, Rate: rate.Inf,
	})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Send(context.Background(), message("down1"))
	if !errors.Is(err, resendmailer.ErrTransient) {
		t.Fatalf("err = %v, want ErrTransient", err)
	}
	var re *resendmailer.Error
	if errors.As(err, &re) {
		t.Errorf("err = %v holds an *Error, but no answer came", err)
	}
}

func TestUnreadableSuccessIsRetried(t *testing.T) {
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
	m, err := resendmailer.New(resendmailer.Options{
		APIKey: "re_x", From: "a@acme.example", BaseURL: ts.URL,
		BackoffBase: time.Millisecond, Rate: rate.Inf,
	})
	if err != nil {
		t.Fatal(err)
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
		o.MaxAttempts = 4
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
		}
		return resendtest.Fault{}
	})
	var errs []error
	errs = append(errs, m.Send(context.Background(), message("log1")))
	bad := message("log2")
	bad.To = "not-an-address"
	errs = append(errs, m.Send(context.Background(), bad))
	if errs[0] != nil || errs[1] == nil {
		t.Fatalf("errors = %v, want nil then a failure", errs)
	}
	out := logs.String()
	if !strings.Contains(out, "message_id=log1") || !strings.Contains(out, "status=500") {
		t.Errorf("log lacks the message id or status:\n%s", out)
	}
	for _, secret := range []string{resendtest.APIKey, secretToken, recipient, "not-an-address"} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q:\n%s", secret, out)
		}
		if strings.Contains(errs[1].Error(), secret) && secret != "not-an-address" {
			t.Errorf("error %q holds %q", errs[1], secret)
		}
	}
}
