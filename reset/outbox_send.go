package reset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// outcome is what became of one Mailer call, as far as the outbox can
// tell.
type outcome int

const (
	outSent      outcome = iota // the provider accepted it
	outPermanent                // refused for good: move aside
	outRateLimit                // refused for the rate limit: pause everyone, retry uncounted
	outUnknown                  // no answer (timeout, broken connection): retry with the same key, uncounted
	outTransient                // a definite transient failure: retry, counted
	outLeaseLost                // cancelled: another worker holds the envelope now
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
	case errors.Is(err, ErrPermanent):
		return outPermanent
	case errors.Is(err, ErrRateLimited):
		return outRateLimit
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		sctx.Err() != nil, errors.As(err, &timeout) && timeout.Timeout():
		return outUnknown
	}
	return outTransient
}

// call makes one Mailer call about the envelopes ids: it waits for the
// provider budget (giving up if ctx ends), then runs f under the call's
// context, and classifies the result. A rate-limit answer pauses the
// budget for everyone; wait is then how long.
func (s *Service) call(ctx context.Context, l *leases, ids []string, f func(ctx context.Context) error) (out outcome, wait time.Duration, err error) {
	if err := s.reserve(ctx); err != nil {
		return outUnknown, 0, err
	}
	sctx, done := l.sendContext(context.WithoutCancel(ctx), ids)
	err = f(sctx)
	out = classify(sctx, err)
	done()
	var rl *RateLimitError
	if out == outRateLimit && errors.As(err, &rl) {
		wait = s.pause(ctx, rl)
	}
	return out, wait, err
}

// sendOne delivers the message of one claimed envelope with Mailer.Send.
func (s *Service) sendOne(ctx context.Context, worker string, l *leases, e Envelope, c content) {
	d := s.durable
	msg := *c.Msg
	if l.lostAny(e.ID) {
		return // another worker has it now
	}
	out, wait, err := s.call(ctx, l, []string{e.ID}, func(ctx context.Context) error { return s.cfg.Mailer.Send(ctx, msg) })
	if errors.Is(err, errBudgetWait) {
		l.release(e.ID)
		s.save(ctx, worker, e, false) // unchanged: due again at once
		return
	}
	switch out {
	case outSent:
		s.sent(ctx, msg)
		l.release(e.ID)
		if err := d.store.Delete(ctx, worker, e.ID); err != nil {
			// Sent but not deleted: a retry sends the same body with the
			// same idempotency key, which the provider drops.
			s.log.ErrorContext(ctx, "outbox delete after send", "message_id", e.ID, "err", err)
		}
		return
	case outLeaseLost:
		return
	}
	s.emit(Event{Kind: EventSendFailed, MessageID: msg.ID, MailKind: msg.Kind, Err: err})
	err = fmt.Errorf("reset: sending %s email: %w", msg.Kind, err)
	l.release(e.ID)
	switch out {
	case outPermanent:
		s.bury(ctx, worker, e, c, err)
	default:
		d.failed.Add(1)
		s.retry(ctx, worker, e, c, err, out == outTransient, wait)
	}
}

// sent records a message the Mailer accepted.
func (s *Service) sent(ctx context.Context, msg Message) {
	s.durable.sent.Add(1)
	s.emit(Event{Kind: EventSent, MessageID: msg.ID, MailKind: msg.Kind})
	s.log.InfoContext(ctx, "email sent", "message_id", msg.ID, "kind", msg.Kind, "to", redact(msg.To))
}

// logRetry logs a failure that will be retried, once, at WARN.
func (s *Service) logRetry(ctx context.Context, e Envelope, c content, cause error, in time.Duration) {
	attrs := []any{"message_id", e.ID, "attempts", e.Attempts, "retry_in", in.Round(time.Millisecond), "err", cause}
	if c.Msg != nil {
		attrs = append(attrs, "kind", c.Msg.Kind, "to", redact(c.Msg.To))
	}
	s.log.Log(ctx, slog.LevelWarn, "outbox delivery failed; will retry", attrs...)
}
