package resendtest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// The sliding window refuses a third call within any second, wherever the
// second starts, and counts refused calls: a client that retries while
// the window is full keeps it full.
func TestSlidingRateLimit(t *testing.T) {
	srv := resendtest.NewServer()
	defer srv.Close()
	clock := &fakeClock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	srv.SetClock(clock.now)
	srv.SetSlidingRateLimit(2, time.Second)

	call := func() answer { return post(t, srv, "POST", "/emails", nil, validBody) }
	// Calls at 0, 0.9 and 1.1 s: a fixed window starting at 0 would take
	// all three (two in [0,1), one in [1,2)); the sliding second that ends
	// at 1.1 s holds 0.9 s and 1.1 s only, so it takes them, and the
	// call at 1.5 s is the third in (0.5, 1.5].
	steps := []struct {
		after  time.Duration
		status int
		remain string
		retry  string
	}{
		{0, 200, "1", ""},
		{900 * time.Millisecond, 200, "0", ""},
		{200 * time.Millisecond, 200, "0", ""},  // at 1.1 s: the call at 0 left the window
		{400 * time.Millisecond, 429, "0", "1"}, // at 1.5 s: 0.9 and 1.1 are in it
		{500 * time.Millisecond, 429, "0", "1"}, // at 2.0 s: 1.1 and the refused 1.5 are in it
		{1100 * time.Millisecond, 200, "1", ""}, // at 3.1 s: the window is empty
		{100 * time.Millisecond, 200, "0", ""},  // at 3.2 s
		{100 * time.Millisecond, 429, "0", "1"}, // at 3.3 s: the third in (2.3, 3.3]
	}
	for i, st := range steps {
		clock.advance(st.after)
		a := call()
		if a.status != st.status {
			t.Fatalf("call %d: %d, want %d", i, a.status, st.status)
		}
		for h, want := range map[string]string{"Ratelimit-Limit": "2", "Ratelimit-Remaining": st.remain, "Retry-After": st.retry} {
			if got := a.header.Get(h); got != want {
				t.Errorf("call %d: %s %q, want %q", i, h, got, want)
			}
		}
		if r, err := strconv.Atoi(a.header.Get("Ratelimit-Reset")); err != nil || r < 1 {
			t.Errorf("call %d: ratelimit-reset %q", i, a.header.Get("Ratelimit-Reset"))
		}
	}
	st := srv.Stats()
	if st.Calls != len(steps) || st.RateLimited != 3 || st.Emails != 5 {
		t.Errorf("stats = %+v, want %d calls, 3 refused, 5 emails", st, len(steps))
	}
	if st.MaxPerWindow != 3 {
		t.Errorf("MaxPerWindow = %d, want 3 (refused calls count)", st.MaxPerWindow)
	}
}

// Against a sliding window, calls spaced exactly 1/rate apart are fine,
// and one that comes a little early is refused though a fixed window
// would take it.
func TestSlidingRateLimitRefusesWhatAFixedWindowTakes(t *testing.T) {
	for _, sliding := range []bool{false, true} {
		srv := resendtest.NewServer()
		clock := &fakeClock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
		srv.SetClock(clock.now)
		if sliding {
			srv.SetSlidingRateLimit(2, time.Second)
		} else {
			srv.SetRateLimit(2, time.Second)
		}
		var got []int
		// 0.4, 0.9 (window [0,1)), then 1.2: the sliding second
		// (0.2, 1.2] holds 0.4, 0.9 and 1.2.
		for _, d := range []time.Duration{400, 500, 300} {
			clock.advance(d * time.Millisecond)
			got = append(got, post(t, srv, "POST", "/emails", nil, validBody).status)
		}
		want := "[200 200 200]"
		if sliding {
			want = "[200 200 429]"
		}
		if fmt.Sprint(got) != want {
			t.Errorf("sliding %v: %v, want %s", sliding, got, want)
		}
		srv.Close()
	}
}

// rawPost sends a request and returns the status, or the error when no
// answer came.
func rawPost(srv *resendtest.Server, ctx context.Context, key, body string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/emails", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+resendtest.APIKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	// Without GetBody net/http cannot replay the request on its own after
	// a lost answer (it does so for a request with an Idempotency-Key on
	// a reused connection): each call here is one request.
	req.GetBody = nil
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Each fault mode, switched at run time, does what it says and is counted.
func TestFaultModes(t *testing.T) {
	srv := resendtest.NewServer()
	defer srv.Close()
	ctx := context.Background()

	srv.SetFaultMode(resendtest.Answer500, 0)
	if st, err := rawPost(srv, ctx, "k/500", validBody); err != nil || st != 500 {
		t.Errorf("Answer500: %d, %v", st, err)
	}

	srv.SetFaultMode(resendtest.DropBefore, 0)
	if _, err := rawPost(srv, ctx, "k/before", validBody); err == nil {
		t.Error("DropBefore: an answer came")
	}
	if n := len(srv.Emails()); n != 0 {
		t.Errorf("DropBefore recorded %d emails", n)
	}

	srv.SetFaultMode(resendtest.AcceptThenDrop, 0)
	if _, err := rawPost(srv, ctx, "k/after", validBody); err == nil {
		t.Error("AcceptThenDrop: an answer came")
	}
	if e := srv.Emails(); len(e) != 1 || e[0].IdempotencyKey != "k/after" {
		t.Errorf("AcceptThenDrop recorded %+v, want one email under k/after", e)
	}

	srv.SetFaultMode(resendtest.Hang, 0)
	arrived := make(chan struct{})
	srv.SetHook(func(r resendtest.Request) resendtest.Fault {
		if r.IdempotencyKey == "k/hang" {
			close(arrived)
		}
		return resendtest.Fault{} // the mode applies
	})
	hctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := rawPost(srv, hctx, "k/hang", validBody); done <- err }()
	<-arrived
	cancel() // the client gives up on the held request
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Hang: %v, want the client's cancellation", err)
	}
	srv.SetHook(nil)

	srv.SetFaultMode(resendtest.NoFault, 0)
	// The retries: the dropped-before one is sent now, the accepted one is
	// a replay, the hung one is sent now.
	for _, k := range []string{"k/before", "k/after", "k/hang", "k/500"} {
		if st, err := rawPost(srv, ctx, k, validBody); err != nil || st != 200 {
			t.Errorf("retry of %s: %d, %v", k, st, err)
		}
	}
	keys := map[string]int{}
	for _, e := range srv.Emails() {
		keys[e.IdempotencyKey]++
	}
	if len(keys) != 4 || len(srv.Emails()) != 4 {
		t.Errorf("emails by key %v, want each of 4 keys once", keys)
	}
	want := resendtest.FaultCounts{Answered500: 1, Hung: 1, DroppedBefore: 1, AcceptedThenDropped: 1}
	if got := srv.Stats().Faults; got != want {
		t.Errorf("fault counts %+v, want %+v", got, want)
	}

	// Every n-th request.
	srv.SetFaultMode(resendtest.Answer500, 3)
	var got []int
	for i := range 6 {
		st, _ := rawPost(srv, ctx, fmt.Sprintf("k/every%d", i), validBody)
		got = append(got, st)
	}
	if fmt.Sprint(got) != "[500 200 200 500 200 200]" {
		t.Errorf("every 3rd: %v", got)
	}
}
