package reset

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/passreset/passreset/internal/backoff"
)

// The provider budget (OutboxOptions.Rate): before each Mailer call a
// worker reserves a slot in a budget shared through the Store (a
// Budgeter), or kept in this process when the Store has none, and waits
// for it. The budget runs on the wall clock (time.Now), whatever
// Config.Now says: the provider counts real seconds.

// localBudget is the process-local Budgeter used when the Store is not
// one. It holds the same arithmetic the stores implement.
type localBudget struct {
	mu  sync.Mutex
	tat map[string]time.Time
}

// gcra is one reservation: the new tat and when the call may start.
func gcra(tat, now time.Time, interval time.Duration, burst int) (newTat, at time.Time) {
	t := tat
	if now.After(t) {
		t = now
	}
	at = t.Add(-time.Duration(burst-1) * interval)
	if now.After(at) {
		at = now
	}
	return t.Add(interval), at
}

func (b *localBudget) Reserve(ctx context.Context, key string, now time.Time, interval time.Duration, burst int) (time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tat == nil {
		b.tat = map[string]time.Time{}
	}
	tat, at := gcra(b.tat[key], now, interval, burst)
	b.tat[key] = tat
	return at, nil
}

func (b *localBudget) Pause(ctx context.Context, key string, until time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tat == nil {
		b.tat = map[string]time.Time{}
	}
	if until.After(b.tat[key]) {
		b.tat[key] = until
	}
	return nil
}

// errBudgetWait is the cause of a wait for the budget cut short by ctx.
var errBudgetWait = errors.New("reset: waiting for the provider budget")

// interval is the spacing of calls the budget allows; 0 for none.
func (d *durable) interval() time.Duration {
	if d.opt.Rate <= 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / d.opt.Rate)
}

// reserve takes one call from the provider budget and waits for its slot.
// It returns an error only when ctx ends first.
func (s *Service) reserve(ctx context.Context) error {
	d := s.durable
	iv := d.interval()
	if iv == 0 {
		return nil
	}
	now := time.Now()
	at, err := d.budget.Reserve(ctx, d.opt.BudgetKey, now, iv, d.opt.Burst)
	if err != nil {
		// The shared budget is out of reach: pace this process alone
		// rather than stop sending.
		s.log.WarnContext(ctx, "outbox: provider budget unavailable; pacing this process alone", "err", err)
		at, _ = d.local.Reserve(ctx, d.opt.BudgetKey, now, iv, d.opt.Burst)
	}
	if wait := time.Until(at); wait > 0 && backoff.Sleep(ctx, wait) != nil {
		return errBudgetWait
	}
	return nil
}

// pause makes every worker sharing the budget wait out a provider's
// Retry-After, and returns how long they wait.
func (s *Service) pause(ctx context.Context, rl *RateLimitError) time.Duration {
	d := s.durable
	wait := rl.RetryAfter
	if wait <= 0 {
		wait = max(d.interval(), time.Second)
	}
	until := time.Now().Add(wait)
	margin := time.Duration(max(d.opt.Burst-1, 0)) * d.interval()
	if err := d.budget.Pause(ctx, d.opt.BudgetKey, until.Add(margin)); err != nil {
		s.log.WarnContext(ctx, "outbox: pausing the provider budget", "err", err)
		d.local.Pause(ctx, d.opt.BudgetKey, until.Add(margin))
	}
	return wait
}
