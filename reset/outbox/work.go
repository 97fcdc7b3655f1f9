package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/passreset/passreset/internal/backoff"
	"github.com/passreset/passreset/internal/pace"
	"github.com/passreset/passreset/internal/redact"
	"github.com/passreset/passreset/reset"
)

// item is a claimed envelope and its opened content.
type item struct {
	e Envelope
	c content
}

// claimAndWork claims up to Batch envelopes and carries them out: batch
// envelopes whole, messages whose outcome is unknown alone, and the rest
// in one new batch with a BatchMailer (alone otherwise). It returns how
// many it carried out (envelopes given back unchanged do not count: the
// caller would claim them again at once).
func (o *Outbox) claimAndWork(ctx context.Context, worker string) (int, error) {
	now := o.now()
	envs, err := o.store.Claim(ctx, worker, now, now.Add(o.opt.Lease), o.batch)
	if err != nil {
		return 0, fmt.Errorf("outbox: claiming: %w", err)
	}
	if len(envs) == 0 {
		return 0, nil
	}
	l := o.holdLeases(worker, envs)
	defer l.close()
	// Work in hand is finished even when ctx ends (only the wait for the
	// provider budget is cut short): the lease would otherwise hold the
	// mail back.
	wctx := context.WithoutCancel(ctx)
	done := len(envs)
	var fresh []item
	for _, e := range envs {
		c, err := o.seal.open(e.ID, e.KeyID, e.Sealed)
		switch {
		case errors.Is(err, errNoKey):
			// Sealed by an instance further along a key rotation: leave
			// it, in its place, to one that has the key.
			o.d.Logger.WarnContext(wctx, "outbox: envelope sealed with a key this instance does not have; given back for another instance",
				"envelope_id", e.ID, "key_id", e.KeyID)
			o.giveBack(wctx, worker, l, e)
			done--
			continue
		case err != nil:
			o.bury(wctx, worker, l, e, c, err)
			continue
		}
		switch {
		case e.Kind == KindBatch:
			if !o.sendBatch(ctx, worker, l, e, c) {
				done--
			}
		case c.Unknown:
			if !o.sendAlone(ctx, worker, l, item{e, c}) {
				done--
			}
		default:
			if it, ok := o.ready(wctx, worker, l, e, c); ok {
				fresh = append(fresh, it)
			}
		}
	}
	if o.batcher != nil && len(fresh) > 1 {
		if !o.formBatch(ctx, worker, l, fresh) {
			done -= len(fresh)
		}
		return done, nil
	}
	for _, it := range fresh {
		if !o.sendAlone(ctx, worker, l, it) {
			done--
		}
	}
	return done, nil
}

// ready makes sure an opened envelope holds its email, carrying out a
// request first (lookup, cooldown, token, rendering) and saving the
// sealed email, so that a retry sends the same email. It reports false,
// having dealt with the envelope, when there is nothing to send now.
func (o *Outbox) ready(ctx context.Context, worker string, l *leases, e Envelope, c content) (item, bool) {
	if c.Msg != nil {
		return item{e, c}, true
	}
	if e.Kind != KindRequest {
		o.bury(ctx, worker, l, e, c, errors.New("message envelope without an email"))
		return item{}, false
	}
	// The cooldown is skipped only for a request that passed it already
	// (its email was rendered, then moved aside, then revived). The
	// cooldown is owned by the envelope: if this worker dies after
	// starting it and before saving the email, the worker that claims
	// the envelope next finds the cooldown its own and carries on.
	msg, err := o.d.Service.CarryOut(o.d.Trace.Context(ctx, c.Trace), reset.PublicRequest{ID: e.ID, Email: c.Email, Link: c.Link, SkipCooldown: c.Passed})
	switch {
	case errors.Is(err, reset.ErrUnknownUser), errors.Is(err, reset.ErrThrottled), errors.Is(err, reset.ErrSuppressed), errors.Is(err, reset.ErrInvalidInput):
		o.remove(ctx, worker, l, e.ID)
		return item{}, false
	case err != nil:
		o.d.Emit(reset.Event{Kind: reset.EventFailed, Err: err})
		o.retry(ctx, worker, l, e, c, err, true, 0)
		return item{}, false
	}
	c.Passed, c.Msg = true, &msg
	e.Sealed, e.KeyID, err = o.seal.seal(e.ID, c)
	if err == nil {
		err = o.store.Save(ctx, worker, e, true)
	}
	if err != nil {
		// Not saved: the token is issued but its email is not. The lease
		// runs out and the envelope is claimed again; it owns its
		// cooldown, so it goes on with a new token.
		o.errLog.Log(ctx, o.d.Logger, slog.LevelError, "outbox: saving a rendered email", err, "envelope_id", e.ID)
		l.release(e.ID)
		return item{}, false
	}
	return item{e, c}, true
}

// sendAlone sends the email of one envelope with Mailer.Send. It reports
// false when it gave the envelope back unchanged.
func (o *Outbox) sendAlone(ctx context.Context, worker string, l *leases, it item) bool {
	e, c := it.e, it.c
	msg := *c.Msg
	if l.lost(e.ID) {
		return true // another worker has it now
	}
	out, wait, err := o.call(ctx, l, []string{e.ID}, func(ctx context.Context) error {
		return o.d.Mailer.Send(o.d.Trace.Context(ctx, c.Trace), msg)
	})
	switch out {
	case outNotCalled:
		o.giveBack(context.WithoutCancel(ctx), worker, l, e)
		return false
	case outSent:
		o.sent(ctx, msg, idKey(e), e.ID)
		o.remove(ctx, worker, l, e.ID)
		return true
	case outLeaseLost:
		return true
	}
	ctx = context.WithoutCancel(ctx)
	o.d.Emit(reset.Event{Kind: reset.EventSendFailed, MessageID: msg.ID, MailKind: msg.Kind, Err: err})
	err = fmt.Errorf("sending %s email: %w", msg.Kind, err)
	switch out {
	case outPermanent:
		o.bury(ctx, worker, l, e, c, err)
		return true
	case outUnknown:
		if !o.markUnknown(ctx, l, &e, &c) {
			return true // the lease runs out; it is claimed again
		}
	}
	o.retry(ctx, worker, l, e, c, err, out == outTransient, wait)
	return true
}

// markUnknown seals into e that it was handed to the provider without an
// answer, so that it is only ever sent again as it is. It reports false,
// having stopped renewing e, when it could not.
func (o *Outbox) markUnknown(ctx context.Context, l *leases, e *Envelope, c *content) bool {
	if c.Unknown {
		return true
	}
	c.Unknown = true
	sealed, keyID, err := o.seal.seal(e.ID, *c)
	if err != nil {
		o.d.Logger.ErrorContext(ctx, "outbox: sealing", idKey(*e), e.ID, "err", err)
		l.release(e.ID)
		return false
	}
	e.Sealed, e.KeyID = sealed, keyID
	return true
}

// sent records an email the provider accepted; ids names the envelope
// that held it (and the batch it went in).
func (o *Outbox) sent(ctx context.Context, msg reset.Message, ids ...any) {
	o.d.Emit(reset.Event{Kind: reset.EventSent, MessageID: msg.ID, MailKind: msg.Kind})
	o.d.Logger.InfoContext(ctx, "email sent", append(ids, "message_id", msg.ID, "kind", msg.Kind)...)
}

// logIDs are the log attributes that name e and, when it holds one, its
// email: the envelope's ID under [idKey], its kind as envelope_kind, and
// the email's message_id and kind.
func logIDs(e Envelope, c content) []any {
	ids := []any{idKey(e), e.ID, "envelope_kind", e.Kind}
	if c.Msg != nil {
		ids = append(ids, "message_id", c.Msg.ID, "kind", c.Msg.Kind)
	}
	return ids
}

// retry schedules e again after a failure, or moves it aside when its
// attempts or its age are used up. Only answered failures count as
// attempts (count); wait, when positive, is the least delay (a provider's
// Retry-After).
func (o *Outbox) retry(ctx context.Context, worker string, l *leases, e Envelope, c content, cause error, count bool, wait time.Duration) {
	if count {
		e.Attempts++
	}
	now := o.now()
	delay := max(wait, backoff.Delay(max(e.Attempts, e.Claims, 1), retryBase, retryMax))
	switch {
	case e.Attempts >= o.opt.MaxAttempts:
		o.bury(ctx, worker, l, e, c, fmt.Errorf("gave up after %d attempts: %w", e.Attempts, cause))
		return
	case now.Add(delay).Sub(e.CreatedAt) >= o.opt.MaxAge && c.Unknown:
		o.bury(ctx, worker, l, e, c, fmt.Errorf("outcome unknown: the provider may have sent it, and a retry after MaxAge (%v) could send it twice: %w", o.opt.MaxAge, cause))
		return
	case now.Add(delay).Sub(e.CreatedAt) >= o.opt.MaxAge:
		o.bury(ctx, worker, l, e, c, fmt.Errorf("gave up after MaxAge (%v): %w", o.opt.MaxAge, cause))
		return
	}
	e.NotBefore = now.Add(delay)
	e.LastError = lastError(cause)
	o.d.Emit(reset.Event{Kind: reset.EventRetry, MessageID: e.ID, Err: cause})
	o.d.Logger.WarnContext(ctx, "outbox: delivery failed; will retry", append(logIDs(e, c),
		"attempts", e.Attempts, "retry_in", delay.Round(time.Millisecond), "err", cause)...)
	l.release(e.ID)
	o.save(ctx, worker, e)
}

// bury moves an envelope aside. A reset email's rendered content is
// erased (its link carries a token) and the request kept, so that
// reviving it issues a new token; a notice, which holds no secret, and a
// batch, which may only ever be sent again whole, are kept as they are.
func (o *Outbox) bury(ctx context.Context, worker string, l *leases, e Envelope, c content, cause error) {
	ids := logIDs(e, c)
	if e.Kind == KindRequest && c.Msg != nil {
		c.Msg, c.Unknown = nil, false
		if sealed, keyID, err := o.seal.seal(e.ID, c); err == nil {
			e.Sealed, e.KeyID = sealed, keyID
		}
	}
	e.Dead = true
	e.LastError = lastError(cause)
	o.d.Emit(reset.Event{Kind: reset.EventDead, MessageID: e.ID, Err: cause})
	o.d.Logger.ErrorContext(ctx, "outbox: envelope moved aside", append(ids, "err", cause)...)
	l.release(e.ID)
	o.save(ctx, worker, e)
}

// idKey is the log key of an envelope's ID.
func idKey(e Envelope) string {
	if e.Kind == KindBatch {
		return "batch_key"
	}
	return "envelope_id"
}

// giveBack ends the lease on e without changing it: it keeps its place
// in the queue.
func (o *Outbox) giveBack(ctx context.Context, worker string, l *leases, e Envelope) {
	l.release(e.ID)
	o.save(ctx, worker, e)
}

// save stores e and ends its lease.
func (o *Outbox) save(ctx context.Context, worker string, e Envelope) {
	if err := o.store.Save(ctx, worker, e, false); err != nil {
		o.errLog.Log(ctx, o.d.Logger, slog.LevelError, "outbox: save", err, idKey(e), e.ID)
	}
}

// remove deletes envelope id, whose work is done.
func (o *Outbox) remove(ctx context.Context, worker string, l *leases, id string) {
	l.release(id)
	if err := o.store.Replace(context.WithoutCancel(ctx), worker, []string{id}, nil, time.Time{}); err != nil {
		// Sent but not deleted: the next claim sends the same email under
		// the same idempotency key, which the provider drops.
		o.errLog.Log(ctx, o.d.Logger, slog.LevelError, "outbox: delete after send", err, "envelope_id", id)
	}
}

// lastError is an error's text fit to store: no whole address (a
// provider's refusal may quote the recipient), at most 500 bytes.
func lastError(err error) string {
	s := redact.Text(err.Error())
	if len(s) > 500 {
		s = s[:500]
	}
	return s
}

// outcome is what became of one Mailer call, as far as the outbox can
// tell.
type outcome int

const (
	outSent      outcome = iota // the provider accepted it
	outPermanent                // refused for good: move aside
	outRateLimit                // refused for the rate limit: pause everyone, retry uncounted
	outUnknown                  // no answer: retry as it is, same key, uncounted
	outTransient                // refused for now: retry, counted
	outLeaseLost                // cancelled: another worker holds the envelope now
	outNotCalled                // the budget wait was cut short: nothing was sent
)

// classify decides the outcome of a Mailer call that returned err within
// sctx.
func classify(sctx context.Context, err error) outcome {
	var timeout interface{ Timeout() bool }
	switch {
	case err == nil:
		return outSent
	case errors.Is(context.Cause(sctx), ErrLeaseLost):
		return outLeaseLost
	case errors.Is(err, reset.ErrPermanent):
		return outPermanent
	case errors.Is(err, reset.ErrRateLimited):
		return outRateLimit
	case errors.Is(err, reset.ErrOutcomeUnknown), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled), sctx.Err() != nil, errors.As(err, &timeout) && timeout.Timeout():
		return outUnknown
	}
	return outTransient
}

// call makes one Mailer call about the envelopes ids: it waits for the
// provider budget, then runs f under the call's context and classifies
// the result. When the budget wait is cut short (ctx ended) or the
// Store's budget fails, it calls nothing and returns outNotCalled: the
// caller gives the claim back unchanged. A rate-limit answer pauses the
// budget for everyone; wait is then how long.
func (o *Outbox) call(ctx context.Context, l *leases, ids []string, f func(ctx context.Context) error) (out outcome, wait time.Duration, err error) {
	if err := o.reserve(ctx); err != nil {
		return outNotCalled, 0, err
	}
	sctx, done := l.sendContext(context.WithoutCancel(ctx), ids)
	err = redact.Error(f(sctx)) // a refusal may quote the recipient
	out = classify(sctx, err)
	done()
	switch out {
	case outRateLimit:
		wait = o.pause(context.WithoutCancel(ctx), err)
	case outSent, outPermanent, outTransient:
		o.factor.Quiet()
	}
	return out, wait, err
}

// interval is the spacing of calls the budget allows now; 0 for none.
func (o *Outbox) interval() time.Duration {
	r := o.opt.Rate
	switch {
	case r < 0:
		return 0
	case r == 0:
		rl, ok := o.d.Mailer.(reset.RateLimitedMailer)
		if !ok {
			return 0
		}
		p, _ := rl.ProviderRate()
		r = p * pace.Margin
	}
	return pace.Interval(r * o.factor.Get())
}

// reserve takes one call from the Store's provider budget and waits for
// its slot, reporting a wait as an EventBudgetWait. The budget runs on the wall clock (time.Now), whatever the
// Service's clock says: the provider counts real seconds.
func (o *Outbox) reserve(ctx context.Context) error {
	for tries := 0; ; tries++ {
		iv := o.interval()
		if iv == 0 {
			return ctx.Err()
		}
		at, err := o.store.Reserve(ctx, o.opt.BudgetKey, time.Now(), iv, 1)
		if err != nil {
			if ctx.Err() == nil {
				o.errLog.Log(ctx, o.d.Logger, slog.LevelWarn, "outbox: provider budget unavailable; nothing sent", err)
			}
			return fmt.Errorf("outbox: provider budget: %w", err)
		}
		wait := time.Until(at)
		if wait > 0 {
			o.d.Emit(reset.Event{Kind: reset.EventBudgetWait, Wait: wait})
		}
		if err := backoff.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("outbox: waiting for the provider budget: %w", err)
		}
		// A worker that woke (or got the store's answer) too late for
		// its slot would bunch with the punctual calls after it: it
		// takes the next slot instead.
		if !pace.Late(at, time.Now(), iv, tries) {
			return nil
		}
	}
}

// pause makes every worker sharing the budget wait out a provider's
// Retry-After, lowers this instance's rate, and returns the wait.
func (o *Outbox) pause(ctx context.Context, err error) time.Duration {
	o.factor.Limited()
	var wait time.Duration
	if rl, ok := errors.AsType[*reset.RateLimitError](err); ok {
		wait = rl.RetryAfter
	}
	if wait <= 0 {
		wait = max(o.interval(), time.Second)
	}
	if perr := o.store.Pause(ctx, o.opt.BudgetKey, time.Now().Add(wait)); perr != nil {
		o.errLog.Log(ctx, o.d.Logger, slog.LevelWarn, "outbox: pausing the provider budget", perr)
	}
	o.d.Logger.Log(ctx, slog.LevelWarn, "outbox: the provider's rate limit was reached; every instance waits", "retry_after", wait)
	return wait
}
