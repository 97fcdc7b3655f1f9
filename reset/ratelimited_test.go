package reset_test

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

// budgetRecorder is a memstore whose Budgeter records each reservation
// and grants it at once, so that a test sees the budget the outbox asks
// for without waiting for it.
type budgetRecorder struct {
	*memstore.Store
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

// ratedMailer is a scriptedMailer that advertises its provider's rate.
type ratedMailer struct {
	*scriptedMailer
	perSecond float64
	burst     int
}

var _ reset.RateLimitedMailer = ratedMailer{}

func (m ratedMailer) ProviderRate() (float64, int) { return m.perSecond, m.burst }

// The outbox draws from the shared budget at the Mailer's advertised rate
// when OutboxOptions.Rate is 0; an explicit Rate overrides it, a negative
// one turns the budget off, and a Mailer that advertises nothing leaves
// it off.
func TestOutboxBudgetFromMailer(t *testing.T) {
	two := func(m *scriptedMailer) reset.Mailer { return ratedMailer{m, 2, 1} }
	for _, tc := range []struct {
		name   string
		mailer func(*scriptedMailer) reset.Mailer
		rate   float64
		burst  int
		want   *reservation
	}{
		{"advertised 2/s", two, 0, 0, &reservation{reset.DefaultOutboxBudgetKey, 500 * time.Millisecond, 1}},
		{"advertised burst", func(m *scriptedMailer) reset.Mailer { return ratedMailer{m, 10, 3} }, 0, 0, &reservation{reset.DefaultOutboxBudgetKey, 100 * time.Millisecond, 3}},
		{"explicit Burst kept", two, 0, 2, &reservation{reset.DefaultOutboxBudgetKey, 500 * time.Millisecond, 2}},
		{"explicit Rate overrides", two, 4, 0, &reservation{reset.DefaultOutboxBudgetKey, 250 * time.Millisecond, 1}},
		{"negative Rate: none", two, -1, 0, nil},
		{"advertises no limit", func(m *scriptedMailer) reset.Mailer { return ratedMailer{m, 0, 0} }, 0, 0, nil},
		{"not a RateLimitedMailer", func(m *scriptedMailer) reset.Mailer { return m }, 0, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &budgetRecorder{Store: memstore.New()}
			m := &scriptedMailer{}
			e := newOutboxEnv(t, func(c *reset.Config) {
				c.Store, c.Mailer = store, tc.mailer(m)
				c.Outbox.Rate, c.Outbox.Burst = tc.rate, tc.burst
			})
			for _, addr := range []string{userEmail, "second@anywhere.com"} {
				if err := e.svc.Request(t.Context(), addr, ""); err != nil {
					t.Fatal(err)
				}
			}
			e.drain(t)
			if got := len(m.accepted); got != 2 {
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

func TestOutboxRateNaN(t *testing.T) {
	cfg := reset.Config{Store: memstore.New(), Users: &resettest.Users{}, Mailer: &scriptedMailer{},
		ResetURL: "https://app.example.com/r", Outbox: &reset.OutboxOptions{Keys: []reset.SealKey{testKey}, Rate: math.NaN()}}
	if _, err := reset.New(cfg); err == nil || !strings.Contains(err.Error(), "Outbox.Rate") {
		t.Fatalf("New with Outbox.Rate NaN = %v, want an error naming Outbox.Rate", err)
	}
}
