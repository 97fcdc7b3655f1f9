package reset

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"
)

// Batches (when the Mailer is a BatchMailer).
//
// A worker claims up to Batch envelopes, issues or opens each, and forms
// a batch of the ready messages under a new random key. Before sending it
// seals into every member a batchMark (the key, the member's index and the
// batch's size) and saves it, holding the lease, with one NotBefore shared
// by all members and by no other batch. So the batch's membership and
// order are durable before the provider sees the key.
//
// After an answer for the whole call (err == nil), each member's own
// outcome is first saved into its mark (holding the lease); then failed
// members are saved with the mark cleared (retried later in a new batch
// under a new random key, or moved aside if permanent) and the accepted
// ones deleted. A crash while the outcomes are being saved leaves the
// whole batch in place, which is sent again under its key and answered
// from the provider's record; a crash after leaves members whose mark
// says what became of them, which the next claimer carries out. Without an answer, or with a transient error for the whole
// call, every member is released with its mark and the same new
// NotBefore. Marked members sort together in claim order (NotBefore,
// CreatedAt, ID), so whoever claims them next (this worker, another, or
// another instance after a crash) finds the whole batch in one claim,
// checks that indexes 0..size-1 are all there, and sends the same
// messages in the same order under the same key: the provider answers
// from its record of the first call if it had one.
//
// A claim may hold part of a batch only (another claim took the rest in
// the same instant, or older envelopes filled the claim): the part is
// released unchanged and regrouped on a later claim. After
// maxRegroupClaims claims that never found the whole batch (instances
// with different Batch settings, or a member lost to a store failure),
// the part is sent in a new batch under a new key: the one case where a
// message can be sent twice.

// batchMark is sealed into every member of a batch whose outcome is not
// known yet.
type batchMark struct {
	Key    string `json:"k"` // the batch's idempotency key
	Index  int    `json:"i"` // this message's place in the batch
	Size   int    `json:"n"` // how many messages the batch holds
	Claims int    `json:"c"` // the envelope's Claims when the batch was formed
	// Answer is this message's outcome once the batch was answered:
	// "" (not yet), "sent", or the error the provider gave it.
	Answer    string `json:"a,omitempty"`
	Permanent bool   `json:"p,omitempty"` // Answer is a permanent error
}

// maxRegroupClaims is how many claims may find part of a batch before its
// members go out in a new batch.
const maxRegroupClaims = 10

type member struct {
	e Envelope
	c content
}

func memberIDs(ms []member) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.e.ID
	}
	return ids
}

// workBatch carries out one claim with the BatchMailer. It returns how
// many envelopes it gave back untouched (parts of batches to regroup).
func (s *Service) workBatch(ctx context.Context, worker string, l *leases, envs []Envelope) (givenBack int) {
	wctx := context.WithoutCancel(ctx)
	groups := map[string][]member{}
	var fresh []member
	for _, e := range envs {
		c, ok := s.open(wctx, worker, l, e)
		if !ok {
			continue
		}
		if c.Batch != nil {
			groups[c.Batch.Key] = append(groups[c.Batch.Key], member{e, c})
			continue
		}
		if !s.ready(wctx, worker, l, &e, &c) {
			continue
		}
		fresh = append(fresh, member{e, c})
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		ms := groups[key]
		slices.SortFunc(ms, func(a, b member) int { return cmp.Compare(a.c.Batch.Index, b.c.Batch.Index) })
		if complete(ms) {
			s.sendBatch(ctx, worker, l, key, ms)
			continue
		}
		// Members whose answer was recorded need no regrouping.
		ms = slices.DeleteFunc(ms, func(m member) bool {
			if m.c.Batch.Answer == "" {
				return false
			}
			s.answered(wctx, worker, l, m)
			return true
		})
		if len(ms) == 0 {
			continue
		}
		stale := false
		for _, m := range ms {
			stale = stale || m.e.Claims-m.c.Batch.Claims > maxRegroupClaims
		}
		if stale {
			s.log.WarnContext(wctx, "outbox: part of a batch could not be regrouped; its messages go in a new batch and may be sent twice",
				"batch", key, "found", len(ms), "size", ms[0].c.Batch.Size)
			for _, m := range ms {
				m.c.Batch = nil
				fresh = append(fresh, m)
			}
			continue
		}
		for _, m := range ms {
			l.release(m.e.ID)
			s.save(wctx, worker, m.e, false) // unchanged, for a later claim to regroup
		}
		givenBack += len(ms)
	}
	if len(fresh) > 0 {
		s.formBatch(ctx, worker, l, fresh)
	}
	return givenBack
}

// complete reports whether ms, sorted by index, is a whole batch.
func complete(ms []member) bool {
	for i, m := range ms {
		if m.c.Batch.Index != i || m.c.Batch.Size != len(ms) {
			return false
		}
	}
	return true
}

// groupTime returns a NotBefore up to 2 ms before t for the members of one
// batch: the same for all of them, and with random microseconds so that no
// other batch shares it.
func groupTime(t time.Time) time.Time {
	return t.Truncate(time.Millisecond).Add(-time.Duration(rand.IntN(1000)) * time.Microsecond)
}

// formBatch marks ms as one new batch, durably, and sends it.
func (s *Service) formBatch(ctx context.Context, worker string, l *leases, ms []member) {
	d := s.durable
	wctx := context.WithoutCancel(ctx)
	var b [16]byte
	if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
		s.log.ErrorContext(wctx, "outbox: making a batch key", "err", err)
		for _, m := range ms {
			l.release(m.e.ID)
			s.save(wctx, worker, m.e, false)
		}
		return
	}
	key := "batch/" + hex.EncodeToString(b[:])
	at := groupTime(s.now())
	for i := range ms {
		m := &ms[i]
		m.c.Batch = &batchMark{Key: key, Index: i, Size: len(ms), Claims: m.e.Claims}
		m.e.NotBefore = at
		var err error
		m.e.Sealed, m.e.KeyID, err = d.seal.seal(m.e.ID, m.c)
		if err == nil {
			err = d.store.Save(wctx, worker, m.e, true)
		}
		if err != nil {
			// The batch is not durable: undo the marks, release
			// everything, and let a later claim try again.
			s.log.ErrorContext(wctx, "outbox: saving a batch before sending it", "message_id", m.e.ID, "err", err)
			for j := range ms {
				ms[j].c.Batch = nil
				if sealed, keyID, err := d.seal.seal(ms[j].e.ID, ms[j].c); err == nil {
					ms[j].e.Sealed, ms[j].e.KeyID = sealed, keyID
				}
				l.release(ms[j].e.ID)
				s.save(wctx, worker, ms[j].e, false)
			}
			return
		}
	}
	s.sendBatch(ctx, worker, l, key, ms)
}

// sendBatch sends a marked, whole batch under its key and records what
// became of each member.
func (s *Service) sendBatch(ctx context.Context, worker string, l *leases, key string, ms []member) {
	d := s.durable
	wctx := context.WithoutCancel(ctx)
	ids := memberIDs(ms)
	giveBack := func() {
		for _, m := range ms {
			if !l.lostAny(m.e.ID) {
				l.release(m.e.ID)
				s.save(wctx, worker, m.e, false) // unchanged: the batch is regrouped later
			}
		}
	}
	if l.lostAny(ids...) {
		giveBack() // another worker holds part of it now
		return
	}
	msgs := make([]Message, len(ms))
	for i, m := range ms {
		msgs[i] = *m.c.Msg
	}
	var per []error
	out, wait, err := s.call(ctx, l, ids, func(ctx context.Context) error {
		var err error
		per, err = d.batcher.SendBatch(ctx, key, msgs)
		return err
	})
	if errors.Is(err, errBudgetWait) {
		giveBack()
		return
	}
	if out == outSent && len(per) != len(msgs) {
		out, err = outTransient, fmt.Errorf("reset: the Mailer returned %d results for a batch of %d", len(per), len(msgs))
	}
	switch out {
	case outSent:
		s.batchDone(wctx, worker, l, ms, per)
	case outLeaseLost:
		giveBack()
	case outPermanent:
		err = fmt.Errorf("reset: sending a batch of %d: %w", len(ms), err)
		for _, m := range ms {
			s.emit(Event{Kind: EventSendFailed, MessageID: m.c.Msg.ID, MailKind: m.c.Msg.Kind, Err: err})
			l.release(m.e.ID)
			s.bury(wctx, worker, m.e, m.c, err)
		}
	default:
		s.retryBatch(wctx, worker, l, key, ms, fmt.Errorf("reset: sending a batch of %d: %w", len(ms), err), out == outTransient, wait)
	}
}

// batchDone records the per-message outcome of an answered batch:
// failures first, then the accepted messages, so that a crash in between
// leaves only accepted messages marked.
func (s *Service) batchDone(ctx context.Context, worker string, l *leases, ms []member, per []error) {
	d := s.durable
	for i := range ms {
		m := &ms[i]
		m.c.Batch.Answer, m.c.Batch.Permanent = "sent", errors.Is(per[i], ErrPermanent)
		if per[i] != nil {
			m.c.Batch.Answer = per[i].Error()
		}
		var err error
		m.e.Sealed, m.e.KeyID, err = d.seal.seal(m.e.ID, m.c)
		if err == nil {
			err = d.store.Save(ctx, worker, m.e, true)
		}
		if err != nil {
			// Not recorded: the batch is sent again under its key later,
			// and the provider answers from its record.
			s.log.ErrorContext(ctx, "outbox: saving a batch's answer", "message_id", m.e.ID, "err", err)
		}
	}
	for i, m := range ms {
		if per[i] == nil {
			continue
		}
		err := fmt.Errorf("reset: sending %s email: %w", m.c.Msg.Kind, per[i])
		s.emit(Event{Kind: EventSendFailed, MessageID: m.c.Msg.ID, MailKind: m.c.Msg.Kind, Err: err})
		m.c.Batch = nil
		if sealed, keyID, serr := d.seal.seal(m.e.ID, m.c); serr == nil {
			m.e.Sealed, m.e.KeyID = sealed, keyID
		}
		l.release(m.e.ID)
		if errors.Is(per[i], ErrPermanent) {
			s.bury(ctx, worker, m.e, m.c, err)
			continue
		}
		d.failed.Add(1)
		s.retry(ctx, worker, m.e, m.c, err, !errors.Is(per[i], ErrRateLimited), 0)
	}
	for i, m := range ms {
		if per[i] != nil {
			continue
		}
		s.sent(ctx, *m.c.Msg)
		l.release(m.e.ID)
		if err := d.store.Delete(ctx, worker, m.e.ID); err != nil {
			s.log.ErrorContext(ctx, "outbox delete after send", "message_id", m.e.ID, "err", err)
		}
	}
}

// answered carries out the recorded outcome of a member of an answered
// batch whose worker stopped before it could.
func (s *Service) answered(ctx context.Context, worker string, l *leases, m member) {
	d := s.durable
	b := m.c.Batch
	if b.Answer == "sent" {
		l.release(m.e.ID)
		if err := d.store.Delete(ctx, worker, m.e.ID); err != nil {
			s.log.ErrorContext(ctx, "outbox delete after send", "message_id", m.e.ID, "err", err)
		}
		return
	}
	m.c.Batch = nil
	if sealed, keyID, err := d.seal.seal(m.e.ID, m.c); err == nil {
		m.e.Sealed, m.e.KeyID = sealed, keyID
	}
	l.release(m.e.ID)
	err := fmt.Errorf("reset: sending %s email: %s", m.c.Msg.Kind, b.Answer)
	if b.Permanent {
		s.bury(ctx, worker, m.e, m.c, fmt.Errorf("%w: %w", ErrPermanent, err))
		return
	}
	d.failed.Add(1)
	s.retry(ctx, worker, m.e, m.c, err, true, 0)
}

// retryBatch releases a batch whose outcome is unknown (or which failed
// as a whole, transiently) to be sent again as it is: same key, same
// members, one NotBefore. It is moved aside as a whole when a member has
// used up its attempts or age.
func (s *Service) retryBatch(ctx context.Context, worker string, l *leases, key string, ms []member, cause error, count bool, wait time.Duration) {
	d := s.durable
	now := s.now()
	attempts, exhausted := 0, false
	for i := range ms {
		if count {
			ms[i].e.Attempts++
		}
		attempts = max(attempts, ms[i].e.Attempts)
		exhausted = exhausted || ms[i].e.Attempts >= d.opt.MaxAttempts || now.Sub(ms[i].e.CreatedAt) >= d.opt.MaxAge
	}
	for _, m := range ms {
		s.emit(Event{Kind: EventSendFailed, MessageID: m.c.Msg.ID, MailKind: m.c.Msg.Kind, Err: cause})
	}
	if exhausted {
		cause = fmt.Errorf("gave up after %d attempts: %w", attempts, cause)
		for _, m := range ms {
			l.release(m.e.ID)
			s.bury(ctx, worker, m.e, m.c, cause)
		}
		return
	}
	delay := s.retryDelay(attempts, wait)
	at := groupTime(now.Add(delay))
	d.failed.Add(int64(len(ms)))
	s.log.WarnContext(ctx, "outbox batch failed; will retry the same batch", "batch", key, "size", len(ms),
		"attempts", attempts, "retry_in", delay.Round(time.Millisecond), "err", cause)
	for _, m := range ms {
		m.e.NotBefore, m.e.LastError = at, cause.Error()
		s.emit(Event{Kind: EventRetry, MessageID: m.e.ID, MailKind: m.c.Msg.Kind, Err: cause})
		l.release(m.e.ID)
		s.save(ctx, worker, m.e, false)
	}
}
