package reset

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// BatchMailer is an optional [Mailer] capability: sending many messages in
// one call to the provider (Resend's batch endpoint sends up to 100). The
// durable outbox's workers use it when the Mailer implements it.
//
// SendBatch sends msgs under the idempotency key key, which identifies
// this exact batch: a retry of the same batch (after a timeout or a lost
// connection) must use the same key and the same messages, in the same
// order, so that the provider sends each message at most once.
//
// It returns one error per message (nil for a message the provider
// accepted) and an error for the call as a whole. When the call as a whole
// failed (err != nil), the outcome of every message is unknown and the
// per-message slice may be nil: the caller retries the same batch with the
// same key, or, for an error matching [ErrPermanent], gives up on it. When
// err is nil, each per-message error says what became of that message: an
// error matching ErrPermanent moves it aside; any other is retried later,
// in another batch under another key.
type BatchMailer interface {
	Mailer
	SendBatch(ctx context.Context, key string, msgs []Message) (perMessage []error, err error)
	// MaxBatch is the largest number of messages SendBatch accepts.
	MaxBatch() int
}

// RateLimitedMailer is an optional [Mailer] capability: a Mailer that
// knows its provider's rate limit says so, and the durable outbox uses it
// as its shared budget when [OutboxOptions.Rate] is 0. So a Resend user
// who sets nothing gets every instance paced together at Resend's limit,
// while an SMTP mailer, whose server has no fixed limit, advertises none.
//
// ProviderRate returns how many calls a second the provider accepts from
// the whole account (one message, or one batch, is one call) and how many
// may start at once from an idle budget. perSecond <= 0 means no known
// limit; burst < 1 means 1. It must be safe for concurrent use and
// return the same values every time: the outbox reads it once, in [New].
type RateLimitedMailer interface {
	Mailer
	ProviderRate() (perSecond float64, burst int)
}

// ErrRateLimited marks a Mailer error that says the provider refused the
// call for its rate limit. A Mailer wraps it in a [*RateLimitError] that
// carries how long the provider asked to wait.
var ErrRateLimited = errors.New("reset: provider rate limit")

// RateLimitError is what a Mailer returns when the provider refused a call
// for its rate limit. The durable outbox then pauses every worker of every
// instance that shares the Store (see [Budgeter]) for RetryAfter.
type RateLimitError struct {
	RetryAfter time.Duration // how long the provider asked to wait; 0 if it did not say
	Err        error         // the provider's error
}

// Error returns a description with the wait.
func (e *RateLimitError) Error() string {
	return fmt.Sprintf("reset: provider rate limit (retry after %v): %v", e.RetryAfter, e.Err)
}

// Is reports whether target is ErrRateLimited.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// Unwrap returns the provider's error.
func (e *RateLimitError) Unwrap() error { return e.Err }

// Budgeter is an optional Store capability: a send budget shared by every
// instance that uses the store, so that together they stay within the
// provider's rate limit (a per-account limit, such as Resend's 2 requests a
// second, holds for all instances at once).
type Budgeter interface {
	// Reserve takes one call from the budget named key, which allows
	// interval between calls on average with bursts of burst calls, at now.
	// It returns when the call may be made: now, or a later time the caller
	// must wait for (the reservation is already taken). It must be atomic
	// across instances: of concurrent reservations each gets its own slot.
	//
	// Precisely (the generic cell rate algorithm): the budget keeps one
	// time, tat, zero for a new key. Reserve sets t = max(tat, now), stores
	// tat = t + interval and returns max(now, t - (burst-1)*interval).
	Reserve(ctx context.Context, key string, now time.Time, interval time.Duration, burst int) (at time.Time, err error)

	// Pause sets the budget's tat to until if it is earlier, so that no
	// reservation made afterwards is before until - (burst-1)*interval.
	// The core passes a provider's Retry-After plus that margin.
	Pause(ctx context.Context, key string, until time.Time) error
}

// LeaseRenewer is an optional [OutboxStore] capability: extending the
// leases a live worker holds, so that leases can be short (a dead worker's
// claims come back within seconds) while a slow send keeps its claim.
type LeaseRenewer interface {
	// Renew extends to leaseUntil the leases that worker holds on the
	// envelopes with ids, and returns the ids whose lease it no longer
	// holds (they were claimed by another worker after the lease ended).
	Renew(ctx context.Context, worker string, ids []string, leaseUntil time.Time) (lost []string, err error)
}
