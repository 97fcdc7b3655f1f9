package outbox

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/passreset/passreset/internal/backoff"
	"github.com/passreset/passreset/internal/redact"
	"github.com/passreset/passreset/reset"
)

// Batches (when the Mailer is a BatchMailer).
//
// A worker claims up to Batch envelopes, carries out the requests among
// them (token and rendering) and folds the ready ones into ONE batch
// envelope with one Replace (the members out, the batch in, held by the
// worker): its ID is the batch's idempotency key, its sealed content the
// members in order, and its NotBefore and CreatedAt the earliest of its
// members', so that it keeps their place in the queue. Only then does the
// provider see the key.
//
// An answer for the whole call is recorded with one more Replace: the
// batch out, the members the provider refused back in with their own
// IDs, attempts and backoff (the permanent ones dead); the accepted ones
// simply vanish. A call with no answer, with an unknown outcome or with a
// temporary failure leaves the batch envelope as it is (same content,
// same key) to be sent again whole. The batch is claimed, leased and
// retried as one envelope, so no claim ever holds part of it, and no
// member of a batch whose outcome is unknown is ever sent under another
// key.

// formBatch folds items into one batch envelope, durably, and sends it.
// It reports false when it gave the items back unchanged.
func (o *Outbox) formBatch(ctx context.Context, worker string, l *leases, items []item) bool {
	wctx := context.WithoutCancel(ctx)
	key := "batch/" + rand.Text()
	var c content
	ids := make([]string, len(items))
	be := Envelope{ID: key, Kind: KindBatch}
	for i, it := range items {
		ids[i] = it.e.ID
		c.Members = append(c.Members, member{ID: it.e.ID, Kind: it.e.Kind, Attempts: it.e.Attempts, CreatedAt: it.e.CreatedAt, Content: it.c})
		if i == 0 || it.e.NotBefore.Before(be.NotBefore) {
			be.NotBefore = it.e.NotBefore
		}
		if i == 0 || it.e.CreatedAt.Before(be.CreatedAt) {
			be.CreatedAt = it.e.CreatedAt
		}
	}
	var err error
	be.Sealed, be.KeyID, err = o.seal.seal(key, c)
	if err == nil {
		err = o.store.Replace(wctx, worker, ids, []Envelope{be}, o.now().Add(o.opt.Lease))
	}
	if err != nil {
		// Nothing changed: give the members back as they are.
		o.errLog.Log(wctx, o.d.Logger, slog.LevelError, "outbox: forming a batch", err, "batch_key", key)
		for _, it := range items {
			if !l.lost(it.e.ID) {
				o.giveBack(wctx, worker, l, it.e)
			}
		}
		return false
	}
	l.swap(ids, key)
	return o.sendBatch(ctx, worker, l, be, c)
}

// sendBatch sends a batch envelope whole under its key and records the
// answer. It reports false when it gave the batch back unchanged.
func (o *Outbox) sendBatch(ctx context.Context, worker string, l *leases, be Envelope, c content) bool {
	wctx := context.WithoutCancel(ctx)
	if o.batcher == nil || len(c.Members) > o.batcher.MaxBatch() {
		// Sending it otherwise would send its members under other keys,
		// which may send them twice.
		o.bury(wctx, worker, l, be, c, errors.New("a batch envelope was claimed by a worker whose Mailer is not a BatchMailer (or takes smaller batches); it can only be sent whole, under its key: revive it where the Mailer is the one that sent it"))
		return true
	}
	if l.lost(be.ID) {
		return true
	}
	msgs := make([]reset.Message, len(c.Members))
	traces := make([]map[string]string, len(c.Members))
	for i, m := range c.Members {
		msgs[i], traces[i] = *m.Content.Msg, m.Content.Trace
	}
	var per []error
	out, wait, err := o.call(ctx, l, []string{be.ID}, func(ctx context.Context) error {
		var err error
		per, err = o.batcher.SendBatch(o.d.Trace.Context(ctx, traces...), be.ID, msgs)
		return err
	})
	if out == outSent && len(per) != len(msgs) {
		// An answer the outbox cannot read: the provider may have sent
		// them. The same batch under the same key is answered from its
		// record.
		out, err = outUnknown, fmt.Errorf("%w: the Mailer returned %d results for a batch of %d", reset.ErrOutcomeUnknown, len(per), len(msgs))
	}
	switch out {
	case outNotCalled:
		o.giveBack(wctx, worker, l, be)
		return false
	case outSent:
		o.answered(wctx, worker, l, be, c, per)
		return true
	case outLeaseLost:
		return true
	}
	for _, m := range msgs {
		o.d.Emit(reset.Event{Kind: reset.EventSendFailed, MessageID: m.ID, MailKind: m.Kind, Err: err})
	}
	err = fmt.Errorf("sending a batch of %d: %w", len(msgs), err)
	switch out {
	case outPermanent:
		o.buryBatch(wctx, worker, l, be, c, err)
	case outUnknown:
		if !o.markUnknown(wctx, l, &be, &c) {
			return true // the lease runs out; it is claimed again whole
		}
		o.retry(wctx, worker, l, be, c, err, false, wait)
	default:
		if out == outTransient && be.Attempts+1 >= o.opt.MaxAttempts && !c.Unknown {
			o.buryBatch(wctx, worker, l, be, c, fmt.Errorf("gave up after %d attempts: %w", be.Attempts+1, err))
			return true
		}
		o.retry(wctx, worker, l, be, c, err, out == outTransient, wait)
	}
	return true
}

// answered records the provider's answer for each member of a batch in
// one step: the batch out, the refused members back in.
func (o *Outbox) answered(ctx context.Context, worker string, l *leases, be Envelope, c content, per []error) {
	now := o.now()
	var back []Envelope
	for i, m := range c.Members {
		msg := *m.Content.Msg
		if per[i] == nil {
			o.sent(ctx, msg, "envelope_id", m.ID, "batch_key", be.ID)
			continue
		}
		err := fmt.Errorf("sending %s email: %w", msg.Kind, redact.Error(per[i]))
		o.d.Emit(reset.Event{Kind: reset.EventSendFailed, MessageID: msg.ID, MailKind: msg.Kind, Err: err})
		e := Envelope{ID: m.ID, Kind: m.Kind, Attempts: m.Attempts, CreatedAt: m.CreatedAt}
		mc := m.Content
		switch {
		case errors.Is(per[i], reset.ErrPermanent):
			e, mc = o.deadMember(ctx, be.ID, e, mc, err)
		case errors.Is(per[i], reset.ErrRateLimited):
			e.NotBefore = now.Add(backoff.Delay(1, retryBase, retryMax))
		default:
			e.Attempts++
			delay := backoff.Delay(e.Attempts, retryBase, retryMax)
			switch {
			case e.Attempts >= o.opt.MaxAttempts:
				e, mc = o.deadMember(ctx, be.ID, e, mc, fmt.Errorf("gave up after %d attempts: %w", e.Attempts, err))
			case now.Add(delay).Sub(e.CreatedAt) >= o.opt.MaxAge:
				e, mc = o.deadMember(ctx, be.ID, e, mc, fmt.Errorf("gave up after MaxAge (%v): %w", o.opt.MaxAge, err))
			default:
				e.NotBefore = now.Add(delay)
				e.LastError = lastError(err)
				o.d.Emit(reset.Event{Kind: reset.EventRetry, MessageID: e.ID, Err: err})
				o.d.Logger.WarnContext(ctx, "outbox: the provider refused a batch member; will retry", "envelope_id", e.ID,
					"batch_key", be.ID, "message_id", msg.ID, "kind", msg.Kind, "attempts", e.Attempts, "retry_in", delay.Round(time.Millisecond), "err", err)
			}
		}
		if e.NotBefore.IsZero() {
			e.NotBefore = now
		}
		var serr error
		e.Sealed, e.KeyID, serr = o.seal.seal(e.ID, mc)
		if serr != nil {
			o.d.Logger.ErrorContext(ctx, "outbox: sealing", "envelope_id", e.ID, "err", serr)
			l.release(be.ID)
			return // the lease runs out: the batch is sent again under its key
		}
		back = append(back, e)
	}
	l.release(be.ID)
	if err := o.store.Replace(ctx, worker, []string{be.ID}, back, time.Time{}); err != nil {
		// Not recorded: the batch is sent again under its key, and the
		// provider answers from its record.
		o.errLog.Log(ctx, o.d.Logger, slog.LevelError, "outbox: recording a batch's answer", err, "batch_key", be.ID)
	}
}

// deadMember makes a refused member of the batch batchKey a dead
// envelope of its own.
func (o *Outbox) deadMember(ctx context.Context, batchKey string, e Envelope, c content, cause error) (Envelope, content) {
	o.d.Logger.ErrorContext(ctx, "outbox: envelope moved aside", append(logIDs(e, c), "batch_key", batchKey, "err", cause)...)
	if e.Kind == KindRequest {
		c.Msg = nil // its link carries a token; reviving issues a new one
	}
	e.Dead, e.LastError = true, lastError(cause)
	o.d.Emit(reset.Event{Kind: reset.EventDead, MessageID: e.ID, Err: cause})
	return e, c
}

// buryBatch moves a batch aside after a failure that sent nothing. A
// batch that was never handed over with an unknown outcome is known
// unsent: its members go back as dead envelopes of their own, each
// revived alone. One whose outcome was ever unknown is moved aside whole.
func (o *Outbox) buryBatch(ctx context.Context, worker string, l *leases, be Envelope, c content, cause error) {
	if c.Unknown {
		o.bury(ctx, worker, l, be, c, cause)
		return
	}
	now := o.now()
	var back []Envelope
	for _, m := range c.Members {
		e, mc := o.deadMember(ctx, be.ID, Envelope{ID: m.ID, Kind: m.Kind, Attempts: m.Attempts, CreatedAt: m.CreatedAt, NotBefore: now}, m.Content, cause)
		var err error
		e.Sealed, e.KeyID, err = o.seal.seal(e.ID, mc)
		if err != nil {
			o.bury(ctx, worker, l, be, c, cause)
			return
		}
		back = append(back, e)
	}
	l.release(be.ID)
	if err := o.store.Replace(ctx, worker, []string{be.ID}, back, time.Time{}); err != nil {
		o.errLog.Log(ctx, o.d.Logger, slog.LevelError, "outbox: moving a batch aside", err, "batch_key", be.ID)
	}
}
