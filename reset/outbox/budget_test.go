package outbox_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
)

// budgetRecorder is a counting store whose budget records each
// reservation and grants it at once, so that a test sees the budget the
// outbox asks for without waiting for it.
type budgetRecorder struct {
	*countingStore
	mu       sync.Mutex
	reserved []reservation
}

type reservation struct {
	key      string
	interval time.Duration
	burst    int
}

func (b *budgetRecorder) Reserve(ctx context.Context, key string, now time.Time, interval time.Duration, burst int) (time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reserved = append(b.reserved, reservation{key, interval, burst})
	return now, nil
}

func (b *budgetRecorder) reservations() []reservation {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]reservation(nil), b.reserved...)
}

// ratedMailer is a scriptedMailer that advertises its provider's rate,
// which may change between calls (a mailer that reads the provider's
// rate-limit headers).
type ratedMailer struct {
	*scriptedMailer
	mu        sync.Mutex
	perSecond float64
}

var _ reset.RateLimitedMailer = (*ratedMailer)(nil)

func (m *ratedMailer) ProviderRate() (float64, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.perSecond, 5
}

func (m *ratedMailer) set(r float64) {
	m.mu.Lock()
	m.perSecond = r
	m.mu.Unlock()
}

// The outbox draws from the shared budget at nine tenths of the Mailer's
// advertised rate, one call at a time, when Options.Rate is 0; an
// explicit Rate is used as it is, a negative one turns the budget off,
// and a Mailer that advertises nothing leaves it off.
func TestBudgetFromMailer(t *testing.T) {
	two := func(m *scriptedMailer) reset.Mailer { return &ratedMailer{scriptedMailer: m, perSecond: 2} }
	interval := func(perSecond float64) time.Duration { return time.Duration(float64(time.Second) / perSecond) }
	for _, tc := range []struct {
		name   string
		mailer func(*scriptedMailer) reset.Mailer
		rate   float64
		want   *reservation
	}{
		{"advertised 2/s", two, 0, &reservation{"mail", interval(1.8), 1}},
		{"explicit Rate", two, 4, &reservation{"mail", 250 * time.Millisecond, 1}},
		{"negative Rate: none", two, -1, nil},
		{"advertises no limit", func(m *scriptedMailer) reset.Mailer { return &ratedMailer{scriptedMailer: m} }, 0, nil},
		{"not a RateLimitedMailer", func(m *scriptedMailer) reset.Mailer { return m }, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &budgetRecorder{countingStore: newCountingStore()}
			m := &scriptedMailer{}
			e := newEnv(t, func(c *reset.Config, o *outbox.Options) {
				c.Store, c.Mailer, o.Rate = store, tc.mailer(m), tc.rate
			})
			for _, addr := range []string{userEmail, "second@anywhere.com"} {
				if err := e.svc.Request(t.Context(), addr, ""); err != nil {
					t.Fatal(err)
				}
			}
			e.drain(t)
			if got := len(m.delivered()); got != 2 {
				t.Fatalf("%d messages sent, want 2", got)
			}
			got := store.reservations()
			if tc.want == nil {
				if len(got) != 0 {
					t.Fatalf("reservations %+v, want none", got)
				}
				return
			}
			if len(got) != 2 {
				t.Fatalf("reservations %+v, want one per call (2)", got)
			}
			for _, r := range got {
				if r != *tc.want {
					t.Fatalf("reserved %+v, want %+v", r, *tc.want)
				}
			}
		})
	}
}

// The advertised rate is read before every call, and a rate-limit answer
// halves this instance's rate (then it recovers slowly).
func TestBudgetFollowsTheMailerAndBacksOff(t *testing.T) {
	store := &budgetRecorder{countingStore: newCountingStore()}
	m := &ratedMailer{scriptedMailer: &scriptedMailer{}, perSecond: 10}
	limited := true
	m.fail = func(reset.Message, int) error {
		if limited {
			limited = false
			return &reset.RateLimitError{RetryAfter: time.Second, Err: errors.New("429")}
		}
		return nil
	}
	e := newEnv(t, func(c *reset.Config, _ *outbox.Options) { c.Store, c.Mailer, c.Cooldown = store, m, -1 })
	send := func() {
		if err := e.svc.Request(t.Context(), userEmail, ""); err != nil {
			t.Fatal(err)
		}
		e.drain(t)
		e.clock.Advance(time.Minute)
	}
	send()    // 10/s advertised: 9/s; answered 429
	send()    // the retry and the new request: at half the rate
	m.set(20) // the provider says more now
	send()    //
	got := store.reservations()
	want := []time.Duration{time.Second / 9, 2 * time.Second / 9}
	if len(got) < 4 || got[0].interval != want[0] || got[1].interval < want[1]-time.Millisecond {
		t.Fatalf("intervals %+v, want %v then about %v after the 429", got, want[0], want[1])
	}
	if last := got[len(got)-1].interval; last >= got[1].interval {
		t.Fatalf("interval %v after the advertised rate doubled, want below %v", last, got[1].interval)
	}
}

// A rate-limit answer pauses the budget for every worker sharing the
// store and counts no attempt.
func TestRateLimitPauses(t *testing.T) {
	m := &batchMailer{max: 10}
	m.script = func(call int, _ context.Context, _ string, _ []reset.Message) ([]error, error, bool) {
		if call == 1 {
			return nil, &reset.RateLimitError{RetryAfter: time.Hour, Err: errors.New("429")}, false
		}
		return nil, nil, true
	}
	e := newBatchEnv(t, m, 2, func(_ *reset.Config, o *outbox.Options) { o.MaxAttempts = 1 })
	e.drain(t)
	at, err := e.store.Store.Reserve(t.Context(), "mail", time.Now(), time.Millisecond, 1)
	if err != nil || time.Until(at) < 59*time.Minute {
		t.Fatalf("Reserve after a 429 = %v, %v; want about an hour from now", at, err)
	}
	if r := e.report(t); r.Pending != 1 || r.Dead != 0 { // one batch envelope
		t.Fatalf("report %+v", r)
	}
	if n := e.drain(t); n != 0 {
		t.Fatalf("claimed %d before the Retry-After ended", n)
	}
	e.clock.Advance(time.Hour)
	e.drain(t)
	wantOnce(t, m, 2)
}

// A worker whose lease was taken while its send was in flight has the
// send cancelled by its heartbeat, and saves nothing.
func TestLeaseLostCancelsSend(t *testing.T) {
	entered := make(chan struct{})
	var cause error
	m := &batchMailer{max: 10}
	m.hang = func(call int, ctx context.Context) error {
		if call == 1 {
			close(entered)
			<-ctx.Done()
			cause = context.Cause(ctx)
			return ctx.Err()
		}
		return nil
	}
	e := newBatchEnv(t, m, 1, func(_ *reset.Config, o *outbox.Options) { o.Lease = time.Second })
	done := make(chan struct{})
	go func() { defer close(done); e.ob.Drain(context.Background()) }()
	<-entered
	// Another worker takes the envelope (as if the lease had run out).
	far := e.clock.Now().Add(24 * time.Hour)
	got, err := e.store.Claim(t.Context(), "thief", far, far.Add(time.Hour), 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("Claim = %d, %v", len(got), err)
	}
	<-done
	if !errors.Is(cause, outbox.ErrLeaseLost) {
		t.Fatalf("send cancelled with %v, want ErrLeaseLost", cause)
	}
	if err := e.store.Replace(t.Context(), "thief", []string{got[0].ID}, nil, time.Time{}); err != nil {
		t.Fatalf("the new holder lost its lease: %v", err)
	}
}

// A call that waits for the provider budget is reported with its wait:
// here a pause another instance set, then the pace of 10 calls a second.
func TestBudgetWaitIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, func(c *reset.Config, o *outbox.Options) { c.Now, o.Rate = nil, 10 })
		if err := e.store.Pause(t.Context(), "mail", time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		for _, addr := range []string{userEmail, "second@anywhere.com"} {
			if _, err := e.svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: addr}); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		if n := e.drain(t); n != 2 {
			t.Fatalf("drained %d, want 2", n)
		}
		if took := time.Since(start); took < time.Minute {
			t.Fatalf("drain took %v, want the minute's pause", took)
		}
		var waits []time.Duration
		e.events.mu.Lock()
		for _, ev := range e.events.ev {
			if ev.Kind == reset.EventBudgetWait {
				waits = append(waits, ev.Wait)
			}
		}
		e.events.mu.Unlock()
		if len(waits) != 2 || waits[0] != time.Minute || waits[1] != 100*time.Millisecond {
			t.Fatalf("budget waits %v, want [1m 100ms]", waits)
		}
	})
}

// lateBudget is a budgetRecorder whose first late reservations hand out a
// slot that passed a second ago, as a worker sees it when it wakes (or
// the store answers) long after its slot.
type lateBudget struct {
	*budgetRecorder
	late int
}

func (b *lateBudget) Reserve(ctx context.Context, key string, now time.Time, interval time.Duration, burst int) (time.Time, error) {
	at, err := b.budgetRecorder.Reserve(ctx, key, now, interval, burst)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.reserved) <= b.late {
		at = at.Add(-time.Second)
	}
	return at, err
}

// A worker too late for its slot takes the next one instead of calling at
// once, so that it cannot bunch with the punctual calls after it (a
// provider counting a sliding window would refuse the third call in one
// second); after three late slots in a row it calls anyway.
func TestLateSlotTakesTheNext(t *testing.T) {
	for _, tc := range []struct {
		late, wantReservations int
	}{
		{0, 1},
		{1, 2},
		{10, 4}, // three slots given up, then it goes
	} {
		store := &lateBudget{budgetRecorder: &budgetRecorder{countingStore: newCountingStore()}, late: tc.late}
		m := &scriptedMailer{}
		e := newEnv(t, func(c *reset.Config, o *outbox.Options) {
			c.Store, c.Mailer = store, &ratedMailer{scriptedMailer: m, perSecond: 2}
		})
		if err := e.svc.Request(t.Context(), userEmail, ""); err != nil {
			t.Fatal(err)
		}
		e.drain(t)
		if got := len(m.delivered()); got != 1 {
			t.Fatalf("late %d: %d messages sent, want 1", tc.late, got)
		}
		if got := len(store.reservations()); got != tc.wantReservations {
			t.Errorf("late %d: %d reservations for one call, want %d", tc.late, got, tc.wantReservations)
		}
	}
}
