package reset

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// durable is the state of a Service whose delivery goes through the
// Store's outbox.
type durable struct {
	store  OutboxStore
	opt    OutboxOptions
	seal   *sealer
	wake   chan struct{} // work was queued here
	sent   atomic.Int64
	failed atomic.Int64
	dead   atomic.Int64
}

// setupOutbox checks cfg.Outbox and fills in its defaults.
func setupOutbox(cfg *Config) (*durable, []string) {
	o := *cfg.Outbox
	var problems []string
	store, ok := cfg.Store.(OutboxStore)
	if !ok {
		problems = append(problems, fmt.Sprintf("Outbox: the Store (%T) does not implement reset.OutboxStore", cfg.Store))
	}
	seal, err := newSealer(o.Keys, cfg.Rand)
	if err != nil {
		problems = append(problems, err.Error())
	}
	def := func(v *int, d int) {
		if *v < 0 {
			problems = append(problems, "Outbox: counts must not be negative")
		} else if *v == 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v < 0 {
			problems = append(problems, "Outbox: durations must not be negative")
		} else if *v == 0 {
			*v = d
		}
	}
	def(&o.MaxPending, DefaultOutboxMaxPending)
	def(&o.Workers, DefaultOutboxWorkers)
	def(&o.Batch, DefaultOutboxBatch)
	def(&o.MaxAttempts, DefaultOutboxMaxAttempts)
	defD(&o.PollInterval, DefaultOutboxPoll)
	defD(&o.Lease, DefaultOutboxLease)
	defD(&o.MaxAge, DefaultOutboxMaxAge)
	defD(&o.RetryBase, DefaultOutboxRetryBase)
	defD(&o.RetryMax, DefaultOutboxRetryMax)
	if o.StatsInterval == 0 {
		o.StatsInterval = DefaultOutboxStats
	}
	if o.Lease <= cfg.SendTimeout {
		problems = append(problems, fmt.Sprintf("Outbox.Lease (%v) must exceed SendTimeout (%v)", o.Lease, cfg.SendTimeout))
	}
	if o.WorkerID == "" {
		var b [8]byte
		if _, err := cfg.Rand.Read(b[:]); err == nil {
			o.WorkerID = fmt.Sprintf("w-%x", b)
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return &durable{store: store, opt: o, seal: seal, wake: make(chan struct{}, 1)}, nil
}

// enqueue adds e to the outbox and wakes a local worker.
func (s *Service) enqueue(ctx context.Context, e Envelope) error {
	if s.closed.Load() {
		return ErrClosed
	}
	d := s.durable
	e.CreatedAt, e.NotBefore = s.now(), s.now()
	if err := d.store.Enqueue(ctx, e, d.opt.MaxPending); err != nil {
		if errors.Is(err, ErrQueueFull) {
			return ErrQueueFull
		}
		return fmt.Errorf("reset: queueing: %w", err)
	}
	s.emit(Event{Kind: EventQueued, MessageID: e.ID})
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return nil
}

// enqueueMessage seals msg and queues it. link is the link base of a reset
// email, kept so that a message abandoned as dead can be issued afresh.
func (s *Service) enqueueMessage(ctx context.Context, msg Message, link string) error {
	sealed, keyID, err := s.durable.seal.seal(msg.ID, msg) // envelope ID = message ID
	if err != nil {
		return err
	}
	kind := EnvelopeMessage
	if msg.Kind == KindReset {
		kind = EnvelopeRequest
	}
	return s.enqueue(ctx, Envelope{ID: msg.ID, Kind: kind, Email: msg.To, Link: link, Sealed: sealed, KeyID: keyID})
}

// RunOutbox runs Outbox.Workers workers that drain the durable outbox,
// and emits the outbox's figures every Outbox.StatsInterval, until ctx ends, then waits for the messages in hand to be finished
// (each bounded by Config.SendTimeout) and returns nil. Run it in as many
// processes as you like: claims keep their work apart. It returns an
// error at once when the Service has no outbox.
func (s *Service) RunOutbox(ctx context.Context) error {
	if s.durable == nil {
		return errors.New("reset: RunOutbox: Config.Outbox is not set")
	}
	var wg sync.WaitGroup
	for i := range s.durable.opt.Workers {
		wg.Go(func() { s.workLoop(ctx, fmt.Sprintf("%s-%d", s.durable.opt.WorkerID, i)) })
	}
	if every := s.durable.opt.StatsInterval; every > 0 {
		wg.Go(func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if _, err := s.OutboxReport(ctx); err != nil && ctx.Err() == nil {
						s.log.ErrorContext(ctx, "outbox stats", "err", err)
					}
				}
			}
		})
	}
	wg.Wait()
	return nil
}

func (s *Service) workLoop(ctx context.Context, worker string) {
	d := s.durable
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		n, err := s.claimAndWork(ctx, worker)
		if err != nil {
			s.log.ErrorContext(ctx, "outbox claim failed", "err", err)
		}
		if ctx.Err() != nil {
			return
		}
		if n == d.opt.Batch {
			continue // there may be more
		}
		t.Reset(d.opt.PollInterval)
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-t.C:
		}
	}
}

// DrainOutbox works through every envelope that is due now, in this
// goroutine, and returns how many it handled. It suits tests, cron jobs
// and programs that do not run workers all the time.
func (s *Service) DrainOutbox(ctx context.Context) (int, error) {
	if s.durable == nil {
		return 0, errors.New("reset: DrainOutbox: Config.Outbox is not set")
	}
	total := 0
	for {
		n, err := s.claimAndWork(ctx, s.durable.opt.WorkerID+"-drain")
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// claimAndWork claims one batch and handles it.
func (s *Service) claimAndWork(ctx context.Context, worker string) (int, error) {
	d := s.durable
	now := s.now()
	leaseEnd := now.Add(d.opt.Lease)
	envs, err := d.store.Claim(ctx, worker, now, leaseEnd, d.opt.Batch)
	if err != nil {
		return 0, fmt.Errorf("reset: claiming: %w", err)
	}
	for i, e := range envs {
		// Slow sends may have used up the batch's lease: an envelope
		// whose lease could end before its send times out is left to be
		// claimed afresh. Otherwise another worker may claim it meanwhile,
		// and this one would rotate the token after the other mailed it.
		if i > 0 && s.now().Add(s.cfg.SendTimeout).After(leaseEnd) {
			return i, nil
		}
		// Work in hand is finished even when ctx ends: the lease would
		// otherwise hold the message back for Lease.
		s.work(context.WithoutCancel(ctx), worker, e)
	}
	return len(envs), nil
}

// work carries out one claimed envelope.
func (s *Service) work(ctx context.Context, worker string, e Envelope) {
	d := s.durable
	if e.Sealed == nil {
		if e.Kind != EnvelopeRequest {
			s.bury(ctx, worker, e, errors.New("message envelope without content"))
			return
		}
		ok := s.issueEnvelope(ctx, worker, &e)
		if !ok {
			return
		}
	}
	msg, err := d.seal.open(e.ID, e.KeyID, e.Sealed)
	if err != nil {
		s.bury(ctx, worker, e, err)
		return
	}
	err = s.deliver(ctx, msg)
	switch {
	case err == nil:
		d.sent.Add(1)
		if err := d.store.Delete(ctx, worker, e.ID); err != nil {
			// Sent but not deleted: a retry sends the same body with the
			// same idempotency key, which the provider drops.
			s.log.ErrorContext(ctx, "outbox delete after send", "message_id", e.ID, "err", err)
		}
	case errors.Is(err, ErrPermanent):
		s.bury(ctx, worker, e, err)
	default:
		d.failed.Add(1)
		e.Attempts++
		now := s.now()
		if e.Attempts >= d.opt.MaxAttempts || now.Sub(e.CreatedAt) >= d.opt.MaxAge {
			s.bury(ctx, worker, e, fmt.Errorf("gave up after %d attempts: %w", e.Attempts, err))
			return
		}
		e.NotBefore = now.Add(s.backoff(e.Attempts))
		e.LastError = err.Error()
		s.emit(Event{Kind: EventRetry, MessageID: e.ID, MailKind: msg.Kind, Err: err})
		if err := d.store.Save(ctx, worker, e, false); err != nil {
			s.log.ErrorContext(ctx, "outbox reschedule", "message_id", e.ID, "err", err)
		}
	}
}

// issueEnvelope carries out a queued request: lookup, cooldown, token,
// rendering, sealing; the sealed message is saved before it is sent, so
// that a retry sends the same message. It reports whether there is a
// message to send.
func (s *Service) issueEnvelope(ctx context.Context, worker string, e *Envelope) bool {
	d := s.durable
	base, err := s.checkRequest(e.Email, e.Link)
	if err != nil { // the allowlist changed since it was queued
		s.drop(ctx, worker, *e)
		return false
	}
	// An envelope claimed before may have passed the cooldown already and
	// then lost its worker, and a revived one (it has a LastError) was asked
	// for by an operator: the cooldown must swallow neither's mail.
	throttle := e.Claims <= 1 && e.Attempts == 0 && e.LastError == ""
	// A fresh message ID for every issue: a re-issued message has another
	// body, so it must not share an idempotency key with an earlier one.
	_, msg, err := s.issueWithID(ctx, "", e.Email, base, true, throttle)
	switch {
	case errors.Is(err, ErrUnknownUser), errors.Is(err, ErrThrottled):
		s.drop(ctx, worker, *e)
		return false
	case err != nil:
		s.emit(Event{Kind: EventFailed, Err: err})
		s.log.ErrorContext(ctx, "outbox request failed", "message_id", e.ID, "err", err)
		e.Attempts++
		e.NotBefore = s.now().Add(s.backoff(e.Attempts))
		e.LastError = err.Error()
		if err := d.store.Save(ctx, worker, *e, false); err != nil {
			s.log.ErrorContext(ctx, "outbox reschedule", "message_id", e.ID, "err", err)
		}
		return false
	}
	e.Sealed, e.KeyID, err = d.seal.seal(e.ID, msg)
	if err == nil {
		err = d.store.Save(ctx, worker, *e, true)
	}
	if err != nil {
		// Not saved: the token is issued but its mail is not. The lease
		// runs out, the envelope is claimed again and issued afresh.
		s.log.ErrorContext(ctx, "outbox save sealed message", "message_id", e.ID, "err", err)
		return false
	}
	return true
}

// drop deletes an envelope that needs no mail.
func (s *Service) drop(ctx context.Context, worker string, e Envelope) {
	if err := s.durable.store.Delete(ctx, worker, e.ID); err != nil {
		s.log.ErrorContext(ctx, "outbox delete", "message_id", e.ID, "err", err)
	}
}

// bury moves an envelope aside. A reset email's content is erased (its
// link carries a token); reviving it issues a new token. A notice, which
// holds no secret, is kept for a revived retry.
func (s *Service) bury(ctx context.Context, worker string, e Envelope, cause error) {
	d := s.durable
	d.dead.Add(1)
	if e.Kind == EnvelopeRequest {
		e.Sealed, e.KeyID = nil, ""
	}
	e.Dead = true
	e.LastError = cause.Error()
	s.emit(Event{Kind: EventDead, MessageID: e.ID, Err: cause})
	s.log.ErrorContext(ctx, "outbox message moved aside", "message_id", e.ID, "err", cause)
	if err := d.store.Save(ctx, worker, e, false); err != nil {
		s.log.ErrorContext(ctx, "outbox bury", "message_id", e.ID, "err", err)
	}
}

// backoff returns the wait before attempt n+1: exponential with full jitter.
func (s *Service) backoff(n int) time.Duration {
	d := s.durable
	ceil := d.opt.RetryBase << min(n-1, 30)
	if ceil <= 0 || ceil > d.opt.RetryMax {
		ceil = d.opt.RetryMax
	}
	var b [8]byte
	if _, err := s.cfg.Rand.Read(b[:]); err != nil {
		return ceil
	}
	// At least half the ceiling, so that retries do spread out.
	half := ceil / 2
	return half + time.Duration(binary.LittleEndian.Uint64(b[:])%uint64(half+1))
}

// OutboxReport is what [Service.OutboxReport] returns.
type OutboxReport struct {
	OutboxStats
	OldestAge time.Duration // age of the oldest pending envelope
	// Counted by this Service since it started:
	Sent   int64 // messages the Mailer accepted
	Failed int64 // transient failures (each retried)
	Dead   int64 // messages moved aside
}

// OutboxReport reads the outbox's depth and age from the Store and this
// process's counters, and emits them as an EventOutboxStats event.
func (s *Service) OutboxReport(ctx context.Context) (OutboxReport, error) {
	if s.durable == nil {
		return OutboxReport{}, errors.New("reset: OutboxReport: Config.Outbox is not set")
	}
	d := s.durable
	st, err := d.store.OutboxStats(ctx)
	if err != nil {
		return OutboxReport{}, fmt.Errorf("reset: outbox stats: %w", err)
	}
	r := OutboxReport{OutboxStats: st, Sent: d.sent.Load(), Failed: d.failed.Load(), Dead: d.dead.Load()}
	if !st.Oldest.IsZero() {
		r.OldestAge = s.now().Sub(st.Oldest)
	}
	s.emit(Event{Kind: EventOutboxStats, Outbox: &r})
	return r, nil
}

// DeadMessages lists up to limit messages moved aside, oldest first.
func (s *Service) DeadMessages(ctx context.Context, limit int) ([]Envelope, error) {
	if s.durable == nil {
		return nil, errors.New("reset: DeadMessages: Config.Outbox is not set")
	}
	envs, err := s.durable.store.Dead(ctx, limit)
	if err != nil {
		return nil, fmt.Errorf("reset: listing dead messages: %w", err)
	}
	return envs, nil
}

// Revive queues a dead message again. A reset email is issued afresh
// with a new token; a notice is sent as it was.
func (s *Service) Revive(ctx context.Context, id string) error {
	if s.durable == nil {
		return errors.New("reset: Revive: Config.Outbox is not set")
	}
	if err := s.durable.store.Revive(ctx, id, s.now()); err != nil {
		return fmt.Errorf("reset: reviving %s: %w", id, err)
	}
	select {
	case s.durable.wake <- struct{}{}:
	default:
	}
	return nil
}
