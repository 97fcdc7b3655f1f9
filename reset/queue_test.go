package reset_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

// timedMailer records when each call came (on the bubble's clock) and
// answers with script(call).
type timedMailer struct {
	mu        sync.Mutex
	calls     []reset.Message
	at        []time.Time
	script    func(call int) error
	perSecond float64 // advertised, when positive
}

func (m *timedMailer) Send(_ context.Context, msg reset.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, msg)
	m.at = append(m.at, time.Now())
	if m.script != nil {
		return m.script(len(m.calls))
	}
	return nil
}

func (m *timedMailer) snapshot() ([]reset.Message, []time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]reset.Message(nil), m.calls...), append([]time.Time(nil), m.at...)
}

type ratedTimedMailer struct{ *timedMailer }

func (m ratedTimedMailer) ProviderRate() (float64, int) { return m.perSecond, 1 }

// inBubble runs f with a Service on the in-process queue, inside a
// synctest bubble: the queue's timers run on the bubble's clock.
func inBubble(t *testing.T, mailer reset.Mailer, f func(svc *reset.Service, events *eventLog)) {
	synctest.Test(t, func(t *testing.T) {
		users := &resettest.Users{}
		users.Add(userID, userEmail, oldPass)
		for i := range 10 {
			users.Add(fmt.Sprintf("u%d", i+10), fmt.Sprintf("user%d@anywhere.com", i), oldPass)
		}
		events := &eventLog{}
		svc, err := reset.New(reset.Config{KeepSessions: true, Store: memstore.New(), Users: users, Mailer: mailer,
			ResetURL: "https://app.example.com/r", Logger: slog.New(slog.DiscardHandler), OnEvent: events.add, Cooldown: -1})
		if err != nil {
			t.Fatal(err)
		}
		f(svc, events)
		if err := svc.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// The in-process queue retries a temporary failure and an unknown outcome
// with the same message (so the same idempotency key), waiting a growing
// backoff between tries.
func TestQueueRetriesTheSameMessage(t *testing.T) {
	m := &timedMailer{script: func(call int) error {
		switch call {
		case 1:
			return errors.New("503 Service Unavailable")
		case 2:
			return fmt.Errorf("%w: connection dropped", reset.ErrOutcomeUnknown)
		}
		return nil
	}}
	inBubble(t, m, func(svc *reset.Service, events *eventLog) {
		if err := svc.Request(t.Context(), userEmail, ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Minute) // fake time: every retry is due
		synctest.Wait()
		calls, at := m.snapshot()
		if len(calls) != 3 || calls[1].IdempotencyKey() != calls[0].IdempotencyKey() || calls[2].Text != calls[0].Text {
			t.Fatalf("calls %d, want the same message three times", len(calls))
		}
		if at[1].Sub(at[0]) < 500*time.Millisecond || at[2].Sub(at[1]) < time.Second {
			t.Fatalf("retries at %v and %v after the first, want backoff of at least 0.5 s then 1 s", at[1].Sub(at[0]), at[2].Sub(at[0]))
		}
		if events.count(reset.EventRetry) != 2 || events.count(reset.EventSent) != 1 {
			t.Fatalf("events: %d retries, %d sent", events.count(reset.EventRetry), events.count(reset.EventSent))
		}
	})
}

// A permanent failure is not retried; a temporary one is given up after
// four tries.
func TestQueueGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"permanent", fmt.Errorf("%w: 422", reset.ErrPermanent), 1},
		{"temporary", errors.New("503"), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &timedMailer{script: func(int) error { return tc.err }}
			inBubble(t, m, func(svc *reset.Service, _ *eventLog) {
				if err := svc.Request(t.Context(), userEmail, ""); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Hour)
				synctest.Wait()
				if calls, _ := m.snapshot(); len(calls) != tc.want {
					t.Fatalf("%d tries, want %d", len(calls), tc.want)
				}
			})
		})
	}
}

// A rate-limit answer's Retry-After is honoured, and the queue paces its
// calls at nine tenths of the Mailer's advertised rate.
func TestQueuePacesAndHonoursRetryAfter(t *testing.T) {
	m := &timedMailer{perSecond: 10, script: func(call int) error {
		if call == 1 {
			return &reset.RateLimitError{RetryAfter: 7 * time.Second, Err: errors.New("429")}
		}
		return nil
	}}
	inBubble(t, ratedTimedMailer{m}, func(svc *reset.Service, _ *eventLog) {
		for i := range 6 {
			if err := svc.Request(t.Context(), fmt.Sprintf("user%d@anywhere.com", i), ""); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		_, at := m.snapshot()
		if len(at) != 7 {
			t.Fatalf("%d calls, want 7 (one retried)", len(at))
		}
		if at[1].Sub(at[0]) < 7*time.Second {
			t.Fatalf("next call %v after a 429 asking for 7 s", at[1].Sub(at[0]))
		}
		for i := 2; i < len(at); i++ {
			// Nine tenths of 10/s, halved after the 429 and recovering
			// slowly: never closer than 1/9 s.
			if gap := at[i].Sub(at[i-1]); gap < time.Second/9 {
				t.Fatalf("calls %d and %d %v apart, want at least %v", i-1, i, gap, time.Second/9)
			}
		}
	})
}

// Shutdown bounds the retries: when its context ends, the queue stops.
func TestQueueShutdownBoundsRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &timedMailer{script: func(int) error { return errors.New("503") }}
		users := &resettest.Users{}
		users.Add(userID, userEmail, oldPass)
		svc, err := reset.New(reset.Config{KeepSessions: true, Store: memstore.New(), Users: users, Mailer: m,
			ResetURL: "https://app.example.com/r", Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Request(t.Context(), userEmail, ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := svc.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want the deadline", err)
		}
		synctest.Wait() // every goroutine of the queue ended
		if calls, _ := m.snapshot(); len(calls) >= 4 {
			t.Fatalf("%d tries after Shutdown gave up", len(calls))
		}
	})
}

// A trusted request's queued email carries the link RequestTrusted
// returned: the queue sends the rendered email, it does not carry the
// request out again.
func TestQueuedTrustedEmailCarriesTheReturnedLink(t *testing.T) {
	m := &timedMailer{}
	inBubble(t, m, func(svc *reset.Service, _ *eventLog) {
		iss, err := svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: userEmail})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		calls, _ := m.snapshot()
		if len(calls) != 1 || calls[0].ID != iss.MessageID || resettest.Token(calls[0].Text) != resettest.Token(iss.Link) {
			t.Fatalf("sent %d emails; want one carrying the returned link", len(calls))
		}
		if _, err := svc.Inspect(t.Context(), resettest.Token(iss.Link)); err != nil {
			t.Fatalf("the returned link: %v", err)
		}
	})
}

// A Shutdown that gives up cancels the call in flight: that is a warning
// that the email was not sent, not an error.
func TestQueueShutdownCancelIsNotAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs safeBuffer
		m := resettest.MailerFunc(func(ctx context.Context, _ reset.Message) error {
			<-ctx.Done() // a provider that does not answer before shutdown
			return fmt.Errorf("post: %w", ctx.Err())
		})
		users := &resettest.Users{}
		users.Add(userID, userEmail, oldPass)
		svc, err := reset.New(reset.Config{KeepSessions: true, Store: memstore.New(), Users: users, Mailer: m,
			ResetURL: "https://app.example.com/r", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Request(t.Context(), userEmail, ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // the worker is in Send
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := svc.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want the deadline", err)
		}
		synctest.Wait()
		logs.mu.Lock()
		out := logs.String()
		logs.mu.Unlock()
		if strings.Contains(out, "level=ERROR") || !strings.Contains(out, "email not sent: the queue was stopped") {
			t.Fatalf("log after a cancelled shutdown, want a warning and no ERROR:\n%s", out)
		}
	})
}

type traceKey struct{}

// Config.Trace carries the caller's trace context through the in-process
// queue to the Mailer call, for public and trusted requests alike.
func TestQueueCarriesTrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var seen []string
		m := resettest.MailerFunc(func(ctx context.Context, _ reset.Message) error {
			v, _ := ctx.Value(traceKey{}).(string)
			mu.Lock()
			seen = append(seen, v)
			mu.Unlock()
			return nil
		})
		prop := reset.Propagation{
			Inject: func(ctx context.Context) map[string]string {
				if v, _ := ctx.Value(traceKey{}).(string); v != "" {
					return map[string]string{"trace": v}
				}
				return nil
			},
			Extract: func(ctx context.Context, traces []map[string]string) context.Context {
				return context.WithValue(ctx, traceKey{}, traces[0]["trace"])
			},
		}
		users := &resettest.Users{}
		users.Add(userID, userEmail, oldPass)
		users.Add("u2", "second@anywhere.com", oldPass)
		svc, err := reset.New(reset.Config{KeepSessions: true, Store: memstore.New(), Users: users, Mailer: m, Cooldown: -1, Trace: prop,
			ResetURL: "https://app.example.com/r", Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Shutdown(context.Background())
		if err := svc.Request(context.WithValue(t.Context(), traceKey{}, "public"), userEmail, ""); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		if _, err := svc.RequestTrusted(context.WithValue(t.Context(), traceKey{}, "trusted"), reset.TrustedRequest{Email: "second@anywhere.com"}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(seen, []string{"public", "trusted"}) {
			t.Fatalf("the Mailer saw trace contexts %q, want [public trusted]", seen)
		}
	})
}
