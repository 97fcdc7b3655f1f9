package reset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/passreset/passreset/internal/backoff"
	"github.com/passreset/passreset/internal/pace"
	"github.com/passreset/passreset/internal/redact"
)

// The in-process queue's retries: a message is tried up to memAttempts
// times, waiting a jittered backoff between memRetryBase and memRetryMax,
// or the provider's Retry-After, between tries.
const (
	memAttempts  = 4
	memRetryBase = time.Second
	memRetryMax  = 30 * time.Second
	sendTimeout  = 30 * time.Second // one Mailer call
)

// Delay bounds of the background work a public request starts.
const (
	minDelay = 2 * time.Millisecond
	maxDelay = 20 * time.Millisecond
)

// memQueue is the in-process [Queue], the default. Public requests and
// trusted messages share QueueSize; notices have room of their own and
// are never refused while the queue runs. Workers carry out the jobs,
// pace the Mailer's calls at the margin below a [RateLimitedMailer]'s
// rate, and retry what failed.
type memQueue struct {
	size, workers int
	d             Delivery

	mu      sync.Mutex
	cond    *sync.Cond
	jobs    []Job // public requests and trusted messages
	notices []Job
	used    int  // jobs queued or about to be (a public request waits a moment)
	closing bool // no more work will be put: workers finish what is queued
	closed  bool // Put refuses
	delayed sync.WaitGroup

	ctx    context.Context // the workers'; cancelled when Shutdown gives up
	cancel context.CancelFunc
	done   chan struct{}

	budget pace.Local
	factor pace.Factor
}

func newMemQueue(size, workers int) *memQueue {
	q := &memQueue{size: size, workers: workers, done: make(chan struct{})}
	q.cond = sync.NewCond(&q.mu)
	q.ctx, q.cancel = context.WithCancel(context.Background())
	return q
}

// Attach starts the workers.
func (q *memQueue) Attach(d Delivery) error {
	q.d = d
	var wg sync.WaitGroup
	for range q.workers {
		wg.Go(q.work)
	}
	go func() { wg.Wait(); close(q.done) }()
	return nil
}

// Full reports whether QueueSize jobs are queued.
func (q *memQueue) Full() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.used >= q.size
}

// Put queues j. A public request reaches the workers after a short random
// delay, once the answer to the request that queued it has been written:
// its work then competes for the CPU with later requests, known and
// unknown alike, not with this one's answer.
func (q *memQueue) Put(_ context.Context, j Job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	switch {
	case j.Message != nil && j.Message.Kind == KindChanged:
		q.notices = append(q.notices, j)
		q.cond.Signal()
	case j.Message == nil:
		q.used++
		q.delayed.Add(1)
		time.AfterFunc(minDelay+mrand.N(maxDelay-minDelay), func() {
			defer q.delayed.Done()
			q.mu.Lock()
			q.jobs = append(q.jobs, j)
			q.cond.Signal()
			q.mu.Unlock()
		})
	default:
		q.used++
		q.jobs = append(q.jobs, j)
		q.cond.Signal()
	}
	return nil
}

// next takes the next job, notices first; it reports false when the
// workers are to stop.
func (q *memQueue) next() (Job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.notices) == 0 && len(q.jobs) == 0 && !q.closing && q.ctx.Err() == nil {
		q.cond.Wait()
	}
	if q.ctx.Err() != nil {
		return Job{}, false
	}
	var j Job
	switch {
	case len(q.notices) > 0:
		j, q.notices = q.notices[0], q.notices[1:]
	case len(q.jobs) > 0:
		j, q.jobs = q.jobs[0], q.jobs[1:]
		q.used--
	default:
		return Job{}, false
	}
	return j, true
}

func (q *memQueue) work() {
	for {
		j, ok := q.next()
		if !ok {
			return
		}
		q.run(q.ctx, j)
	}
}

// run carries out one job.
func (q *memQueue) run(ctx context.Context, j Job) {
	ctx = q.d.Trace.Context(ctx, j.Trace)
	if j.Message == nil {
		msg, err := q.d.Service.CarryOut(ctx, *j.Request)
		switch {
		case errors.Is(err, ErrUnknownUser), errors.Is(err, ErrThrottled), errors.Is(err, ErrSuppressed):
			return
		case err != nil && ctx.Err() != nil:
			// Shutdown gave up waiting: not a failure of the request.
			q.d.Logger.WarnContext(ctx, "public reset request not carried out: the queue was stopped", "to", redactAddr(j.Request.Email))
			return
		case err != nil:
			q.d.Emit(Event{Kind: EventFailed, Err: err})
			q.d.Logger.ErrorContext(ctx, "public reset request failed", "to", redactAddr(j.Request.Email), "err", err)
			return
		}
		j.Message = &msg
	}
	q.send(ctx, *j.Message)
}

// send sends msg, pacing and retrying: an unknown outcome is retried with
// the same message, so under the same idempotency key.
func (q *memQueue) send(ctx context.Context, msg Message) {
	log := q.d.Logger
	for attempt := 1; ; attempt++ {
		if err := q.wait(ctx); err != nil {
			log.WarnContext(ctx, "email not sent: the queue was stopped", "message_id", msg.ID, "kind", msg.Kind)
			return
		}
		sctx, cancel := context.WithTimeout(ctx, sendTimeout)
		err := redact.Error(q.d.Mailer.Send(sctx, msg)) // a refusal may quote the recipient
		cancel()
		if err == nil {
			q.factor.Quiet()
			q.d.Emit(Event{Kind: EventSent, MessageID: msg.ID, MailKind: msg.Kind})
			log.InfoContext(ctx, "email sent", "message_id", msg.ID, "kind", msg.Kind, "to", redactAddr(msg.To))
			return
		}
		q.d.Emit(Event{Kind: EventSendFailed, MessageID: msg.ID, MailKind: msg.Kind, Err: err})
		if ctx.Err() != nil {
			// Shutdown gave up waiting and cancelled the call.
			log.WarnContext(ctx, "email not sent: the queue was stopped", "message_id", msg.ID, "kind", msg.Kind, "attempts", attempt, "err", err)
			return
		}
		if errors.Is(err, ErrPermanent) || attempt >= memAttempts {
			log.ErrorContext(ctx, "sending email failed", "message_id", msg.ID, "kind", msg.Kind, "to", redactAddr(msg.To), "attempts", attempt, "err", err)
			return
		}
		delay := backoff.Delay(attempt, memRetryBase, memRetryMax)
		if rl, ok := errors.AsType[*RateLimitError](err); ok {
			q.factor.Limited()
			if rl.RetryAfter > 0 {
				delay = rl.RetryAfter
			}
			q.budget.Pause(time.Now().Add(delay))
		} else {
			q.factor.Quiet()
		}
		q.d.Emit(Event{Kind: EventRetry, MessageID: msg.ID, MailKind: msg.Kind, Err: err})
		log.Log(ctx, slog.LevelWarn, "sending email failed; will retry", "message_id", msg.ID, "kind", msg.Kind,
			"to", redactAddr(msg.To), "attempts", attempt, "retry_in", delay.Round(time.Millisecond), "err", err)
		if backoff.Sleep(ctx, delay) != nil {
			return
		}
	}
}

// wait waits for this process's next slot under a [RateLimitedMailer]'s
// rate (at the margin below it, lowered after rate-limit answers),
// reporting a wait as an EventBudgetWait.
func (q *memQueue) wait(ctx context.Context) error {
	rl, ok := q.d.Mailer.(RateLimitedMailer)
	if !ok {
		return ctx.Err()
	}
	r, _ := rl.ProviderRate()
	iv := pace.Interval(r * pace.Margin * q.factor.Get())
	if iv == 0 {
		return ctx.Err()
	}
	for tries := 0; ; tries++ {
		at := q.budget.Reserve(time.Now(), iv)
		wait := time.Until(at)
		if wait > 0 {
			q.d.Emit(Event{Kind: EventBudgetWait, Wait: wait})
		}
		if err := backoff.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("reset: waiting for the provider's rate: %w", err)
		}
		// Too late for its slot, a call would bunch with the next one:
		// it takes the next slot instead (see pace.Late).
		if !pace.Late(at, time.Now(), iv, tries) {
			return nil
		}
	}
}

// shutdown refuses new work, lets the workers finish what is queued and
// waits for them, or for ctx: when ctx ends first, work in flight is
// cancelled and what is still queued is dropped.
func (q *memQueue) shutdown(ctx context.Context) error {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	delayed := make(chan struct{})
	go func() {
		q.delayed.Wait()
		q.mu.Lock()
		q.closing = true
		q.cond.Broadcast()
		q.mu.Unlock()
		close(delayed)
	}()
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
		q.mu.Lock()
		q.cancel()
		q.cond.Broadcast()
		q.mu.Unlock()
		<-delayed
		return ctx.Err()
	}
}
