// Package sqlretry is the retry loop of the SQL stores: it runs a
// statement again after an error the store's own classification calls
// transient, with capped, jittered waits. What is transient (error
// numbers, SQLSTATEs, lost connections) stays in each store, beside the
// SQL it runs.
package sqlretry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/passreset/passreset/internal/backoff"
)

// Verdict is what a store's classification says of an error.
type Verdict int

const (
	// Fail gives up: the error is not worth retrying.
	Fail Verdict = iota
	// Retry tries again while attempts remain.
	Retry
	// Final gives up at once and reports the error as classified, never
	// as having given up after attempts: it says what happened.
	Final
)

// Do runs f until it succeeds and returns nil, or gives up and returns
// f's last error as classify reported it: when classify says Fail or
// Final, after attempts tries, or when ctx ends during a wait. An error
// after more than one try (but not a Final one) says "gave up after N
// attempts: "; one that ended a wait says so too. Retry number n waits
// backoff.Delay(n, delay, maxDelay).
func Do(ctx context.Context, attempts int, delay, maxDelay time.Duration, classify func(error) (Verdict, error), f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil {
			return nil
		}
		v, reported := classify(err)
		if v == Final {
			return reported
		}
		if v == Fail || attempt >= attempts {
			if attempt > 1 {
				return fmt.Errorf("gave up after %d attempts: %w", attempt, reported)
			}
			return reported
		}
		if werr := backoff.Sleep(ctx, backoff.Delay(attempt, delay, maxDelay)); werr != nil {
			return fmt.Errorf("%w (while retrying after: %w)", werr, err)
		}
	}
}

// Permanent marks an error that must not be retried even if it wraps a
// transient one: [Retrier] reports it at once, as it is.
type Permanent struct{ Err error }

func (p Permanent) Error() string { return p.Err.Error() }
func (p Permanent) Unwrap() error { return p.Err }

// Retrier is a store's retry loop: [Do] with the store's settings and its
// classification of errors.
type Retrier struct {
	Prefix          string // the store's error prefix, such as "mysqlstore"
	Attempts        int
	Delay, MaxDelay time.Duration
	// Transient reports whether an error is worth retrying. Context
	// errors never are.
	Transient func(error) bool
	// Report, when not nil, turns an error that ends the retries into the
	// one reported.
	Report func(error) error
}

// Run runs f until it succeeds, fails with an error that is not transient
// or is [Permanent], runs out of attempts or ctx ends, and wraps the final
// error as "<prefix>: <op>: ...".
func (r Retrier) Run(ctx context.Context, op string, f func() error) error {
	if err := Do(ctx, r.Attempts, r.Delay, r.MaxDelay, r.classify, f); err != nil {
		return fmt.Errorf("%s: %s: %w", r.Prefix, op, err)
	}
	return nil
}

// classify is the retry verdict on err.
func (r Retrier) classify(err error) (Verdict, error) {
	report := func(err error) error {
		if r.Report != nil {
			return r.Report(err)
		}
		return err
	}
	var p Permanent
	switch {
	case errors.As(err, &p):
		return Final, report(p.Err)
	case r.Transient(err):
		return Retry, err
	}
	return Fail, report(err)
}
