package reset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Queue carries out the Service's mail in the background: it decides when
// each email is sent, paces the calls to the provider and retries them.
// [Config.Queue] sets one; nil means the in-process queue, which keeps
// its work in memory. Package outbox has a durable one, shared by every
// instance through a database.
//
// A Service calls Attach once, from [New], and then Full and Put from any
// goroutine: implementations must be safe for concurrent use.
type Queue interface {
	// Attach gives the queue what it needs from the Service: the Mailer,
	// the logger, the events and the Service itself. A queue serves one
	// Service: Attach returns an error when it is called a second time.
	Attach(d Delivery) error

	// Full reports whether the queue holds as much work as it should. The
	// Service then drops a public request (counted, logged, and answered
	// like any other) and refuses a trusted one with [ErrQueueFull] before
	// it changes anything. It must be cheap: it is on every request's path.
	Full() bool

	// Put queues j. It does not wait for j to be carried out, and for a
	// public request it must cost the same whatever the address.
	Put(ctx context.Context, j Job) error
}

// Job is one piece of work for a [Queue]: exactly one of Request and
// Message is set.
type Job struct {
	// Request is a public request still to be carried out: the queue calls
	// [Service.CarryOut] with it and sends the email that returns.
	Request *PublicRequest
	// Message is a rendered email to send: a trusted request's, or a
	// "password changed" notice (Kind KindChanged), which a queue must
	// never drop.
	Message *Message
	// Trace holds the trace context of the call that queued the job, as
	// [Config.Trace] wrote it (nil without one). A queue keeps it with the
	// job and restores it, with [Propagation.Context], into the ctx of the
	// Mailer call that carries the job out.
	Trace map[string]string
}

// Propagation carries a trace context (such as W3C traceparent) from the
// call that queues work to the Mailer call that carries it out, through a
// [Queue], without package reset knowing the tracing library: package
// telemetry has one for OpenTelemetry. Its zero value carries nothing.
// Both functions must be safe for concurrent use.
type Propagation struct {
	// Inject returns the fields that describe ctx's trace context, nil
	// for none. They are queued with the job (sealed, in the outbox), and
	// must hold no secret.
	Inject func(ctx context.Context) map[string]string
	// Extract returns ctx with the trace contexts that traces describe:
	// one is the parent of the Mailer call, several (the members of one
	// batch call) are its links.
	Extract func(ctx context.Context, traces []map[string]string) context.Context
}

// fields returns Inject(ctx), or nil without Inject.
func (p Propagation) fields(ctx context.Context) map[string]string {
	if p.Inject == nil {
		return nil
	}
	return p.Inject(ctx)
}

// Context returns ctx with the trace contexts of traces restored by
// Extract; ctx as it is without Extract or without any trace.
func (p Propagation) Context(ctx context.Context, traces ...map[string]string) context.Context {
	if p.Extract == nil {
		return ctx
	}
	var some []map[string]string
	for _, t := range traces {
		if len(t) > 0 {
			some = append(some, t)
		}
	}
	if len(some) == 0 {
		return ctx
	}
	return p.Extract(ctx, some)
}

// PublicRequest is a public password-lost request waiting in a [Queue].
type PublicRequest struct {
	// ID identifies the request. It owns the address's cooldown (see
	// [Cooldowner]): carried out again after its worker died, the same
	// request goes on instead of being throttled by itself.
	ID    string
	Email string // the typed address
	Link  string // the caller's link base, or "" for Config.ResetURL
	// SkipCooldown carries the request out without the cooldown. A queue
	// sets it only for a request that passed the cooldown once already
	// (an operator revived it after its email failed for good).
	SkipCooldown bool
}

// Delivery is what a [Service] hands its [Queue] in Attach.
type Delivery struct {
	Service *Service     // carries out public requests: see [Service.CarryOut]
	Mailer  Mailer       // [Config.Mailer]
	Logger  *slog.Logger // the Service's logger
	// Emit reports an [Event] to [Config.OnEvent], with its Time filled in.
	Emit func(Event)
	Now  func() time.Time // [Config.Now], in UTC
	// Trace restores a [Job]'s trace context into the ctx of its Mailer
	// call: [Config.Trace].
	Trace Propagation
}

// RateLimitedMailer is an optional [Mailer] capability: a Mailer that
// knows its provider's rate limit says so, and both queues pace their
// calls by it, at a margin below it (nine tenths), so that every default
// composes: a Resend user who sets nothing stays under Resend's limit.
// An SMTP mailer, whose server has no fixed limit, advertises none.
//
// ProviderRate returns how many calls a second the provider accepts from
// the whole account (one message, or one batch, is one call) and how many
// may start at once; perSecond <= 0 means no known limit. The queues read
// it before every call, so a Mailer that learns the limit from the
// provider's answers may change it; they start calls one at a time
// whatever burst says. It must be safe for concurrent use.
type RateLimitedMailer interface {
	Mailer
	ProviderRate() (perSecond float64, burst int)
}

// ErrRateLimited marks a Mailer error that says the provider refused the
// call for its rate limit. A Mailer wraps it in a [*RateLimitError] that
// carries how long the provider asked to wait.
var ErrRateLimited = errors.New("reset: provider rate limit")

// RateLimitError is what a Mailer returns when the provider refused a call
// for its rate limit. The queue then waits out RetryAfter before its next
// call (the durable outbox: every instance does) and slows down.
type RateLimitError struct {
	RetryAfter time.Duration // how long the provider asked to wait; 0 if it did not say
	Err        error         // the provider's error
}

// Error returns a description with the wait.
func (e *RateLimitError) Error() string {
	return fmt.Sprintf("reset: provider rate limit (retry after %v): %v", e.RetryAfter, e.Err)
}

// Unwrap returns ErrRateLimited and the provider's error, so that
// errors.Is finds both.
func (e *RateLimitError) Unwrap() []error { return []error{ErrRateLimited, e.Err} }
