package reset

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/passreset/passreset/internal/backoff"
)

// durable is the state of a Service whose delivery goes through the
// Store's outbox.
type durable struct {
	store OutboxStore
	opt   OutboxOptions
	seal  *sealer
	wake  chan struct{} // work was queued here

	batcher BatchMailer  // the Mailer, when it sends batches
	renewer LeaseRenewer // the store, when it renews leases
	budget  Budgeter     // the store, or local
	local   *localBudget // when the store's budget is out of reach
	sent    atomic.Int64
	failed  atomic.Int64
	dead    atomic.Int64

	// The outbox's size as last read, off the request path (see full).
	full     atomic.Bool
	checking atomic.Bool
	checked  atomic.Int64 // UnixNano of the last check
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
	def := func(name string, v *int, d int) {
		if *v < 0 {
			problems = append(problems, "Outbox."+name+" must not be negative")
		} else if *v == 0 {
			*v = d
		}
	}
	defD := func(name string, v *time.Duration, d time.Duration) {
		if *v < 0 {
			problems = append(problems, "Outbox."+name+" must not be negative")
		} else if *v == 0 {
			*v = d
		}
	}
	def("MaxPending", &o.MaxPending, DefaultOutboxMaxPending)
	def("Workers", &o.Workers, DefaultOutboxWorkers)
	batcher, _ := cfg.Mailer.(BatchMailer)
	batch := DefaultOutboxBatch
	if batcher != nil {
		batch = batcher.MaxBatch()
		if batch <= 0 {
			problems = append(problems, fmt.Sprintf("Outbox: the Mailer's MaxBatch is %d; it must be positive", batch))
		}
		if o.Batch > batch {
			o.Batch = batch
		}
	}
	def("Batch", &o.Batch, batch)
	switch rl, ok := cfg.Mailer.(RateLimitedMailer); {
	case o.Rate != o.Rate: // NaN
		problems = append(problems, "Outbox.Rate must be a number of calls per second (0: the Mailer's, negative: none)")
	case o.Rate < 0:
		o.Rate = 0 // no budget, on purpose
	case o.Rate == 0 && ok:
		if r, b := rl.ProviderRate(); r > 0 && !math.IsInf(r, 1) {
			o.Rate = r
			if o.Burst == 0 {
				o.Burst = max(b, 1)
			}
		}
	}
	def("Burst", &o.Burst, 1)
	if o.BudgetKey == "" {
		o.BudgetKey = DefaultOutboxBudgetKey
	}
	renewer, _ := cfg.Store.(LeaseRenewer)
	lease := DefaultOutboxFixedLease
	if renewer != nil {
		lease = DefaultOutboxLease
	}
	def("MaxAttempts", &o.MaxAttempts, DefaultOutboxMaxAttempts)
	def("PruneBatch", &o.PruneBatch, DefaultOutboxPruneBatch)
	defD("PollInterval", &o.PollInterval, DefaultOutboxPoll)
	defD("Lease", &o.Lease, lease)
	defD("MaxAge", &o.MaxAge, DefaultOutboxMaxAge)
	defD("RetryBase", &o.RetryBase, DefaultOutboxRetryBase)
	defD("RetryMax", &o.RetryMax, DefaultOutboxRetryMax)
	defD("CheckInterval", &o.CheckInterval, DefaultOutboxCheck)
	defD("DeadRetention", &o.DeadRetention, DefaultOutboxDeadRetention)
	if o.StatsInterval == 0 {
		o.StatsInterval = DefaultOutboxStats
	}
	if o.PruneInterval == 0 {
		o.PruneInterval = DefaultOutboxPrune
	}
	switch {
	case renewer != nil && o.Lease < time.Second:
		problems = append(problems, fmt.Sprintf("Outbox.Lease (%v) must be at least 1 second, to leave room for its renewals every Lease/3", o.Lease))
	case renewer == nil && o.Lease <= cfg.SendTimeout:
		problems = append(problems, fmt.Sprintf("Outbox.Lease (%v) must exceed SendTimeout (%v): the Store (%T) cannot renew leases", o.Lease, cfg.SendTimeout, cfg.Store))
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
	d := &durable{store: store, opt: o, seal: seal, wake: make(chan struct{}, 1),
		batcher: batcher, renewer: renewer, local: &localBudget{}}
	d.budget = d.local
	if b, ok := cfg.Store.(Budgeter); ok {
		d.budget = b
	}
	return d, nil
}

// isFull reports whether the outbox held MaxPending envelopes or more when
// it was last counted. Counting costs a bounded index scan, so it is done
// at most once every CheckInterval, in the background, never by the request
// that notices the count is stale. The cap is therefore approximate: the
// outbox can exceed MaxPending by what all instances accept in one
// CheckInterval plus one count.
func (s *Service) isFull() bool {
	d := s.durable
	if time.Since(time.Unix(0, d.checked.Load())) >= d.opt.CheckInterval && d.checking.CompareAndSwap(false, true) {
		s.bg.Go(func() {
			defer d.checking.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.SendTimeout)
			defer cancel()
			s.countOutbox(ctx)
		})
	}
	return d.full.Load()
}

// countOutbox reads the outbox's size and updates the full flag.
func (s *Service) countOutbox(ctx context.Context) (OutboxStats, error) {
	d := s.durable
	st, err := d.store.OutboxStats(ctx, d.opt.MaxPending)
	if err != nil {
		s.log.WarnContext(ctx, "outbox: counting pending envelopes", "err", err)
		return st, err
	}
	d.full.Store(st.Pending >= d.opt.MaxPending)
	d.checked.Store(time.Now().UnixNano())
	return st, nil
}

// enqueue seals c into a new envelope with id and adds it to the outbox.
// The local workers are woken after a short random delay, so that the
// work an envelope causes does not run while the request that queued it
// is still being answered.
func (s *Service) enqueue(ctx context.Context, id, kind string, c content) error {
	if s.closed.Load() {
		return ErrClosed
	}
	d := s.durable
	sealed, keyID, err := d.seal.seal(id, c)
	if err != nil {
		return err
	}
	now := s.now()
	e := Envelope{ID: id, Kind: kind, Sealed: sealed, KeyID: keyID, CreatedAt: now, NotBefore: now}
	if err := d.store.Enqueue(ctx, e); err != nil {
		return fmt.Errorf("reset: queueing: %w", err)
	}
	s.emit(Event{Kind: EventQueued, MessageID: id})
	s.later(d.wakeUp)
	return nil
}

func (d *durable) wakeUp() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// RunOutbox runs Outbox.Workers workers that drain the durable outbox,
// emits the outbox's figures every Outbox.StatsInterval and prunes what has
// expired every Outbox.PruneInterval, until ctx ends; then it waits for
// the messages in hand to be finished (each bounded by Config.SendTimeout)
// and returns nil. Run it in as many processes as you like: claims keep
// their work apart. It returns an error at once when the Service has no
// outbox.
func (s *Service) RunOutbox(ctx context.Context) error {
	if s.durable == nil {
		return errors.New("reset: RunOutbox: Config.Outbox is not set")
	}
	d := s.durable
	var wg sync.WaitGroup
	for i := range d.opt.Workers {
		wg.Go(func() { s.workLoop(ctx, fmt.Sprintf("%s-%d", d.opt.WorkerID, i)) })
	}
	every := func(interval time.Duration, f func()) {
		if interval <= 0 {
			return
		}
		wg.Go(func() {
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					f()
				}
			}
		})
	}
	every(d.opt.StatsInterval, func() {
		if _, err := s.OutboxReport(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "outbox stats", "err", err)
		}
	})
	every(d.opt.PruneInterval, func() {
		if _, err := s.Prune(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "outbox prune", "err", err)
		}
	})
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

// claimAndWork claims up to Batch envelopes and handles them: with a
// BatchMailer in one call, otherwise one by one.
func (s *Service) claimAndWork(ctx context.Context, worker string) (int, error) {
	d := s.durable
	now := s.now()
	envs, err := d.store.Claim(ctx, worker, now, now.Add(d.opt.Lease), d.opt.Batch)
	if err != nil {
		return 0, fmt.Errorf("reset: claiming: %w", err)
	}
	if len(envs) == 0 {
		return 0, nil
	}
	l := s.holdLeases(worker, envs, now.Add(d.opt.Lease))
	defer l.close()
	if d.batcher != nil {
		// Parts of batches given back do not count: the caller would
		// otherwise claim them again at once.
		return len(envs) - s.workBatch(ctx, worker, l, envs), nil
	}
	for i, e := range envs {
		// Without renewals, slow sends may have used up the claim's
		// lease: an envelope whose lease could end before its send times
		// out is left to be claimed afresh. Otherwise another worker may
		// claim it meanwhile, and this one would rotate the token after
		// the other mailed it.
		if i > 0 && !l.mayStart() {
			return i, nil
		}
		s.work(ctx, worker, l, e)
	}
	return len(envs), nil
}

// open opens a claimed envelope. It reports false, having dealt with the
// envelope, when it cannot be opened.
func (s *Service) open(ctx context.Context, worker string, l *leases, e Envelope) (content, bool) {
	d := s.durable
	c, err := d.seal.open(e.ID, e.KeyID, e.Sealed)
	switch {
	case errors.Is(err, errNoKey):
		// Sealed by an instance further along a key rotation: leave it to
		// one that has the key, without counting an attempt.
		s.log.WarnContext(ctx, "outbox: envelope sealed with a key this instance does not have; released for another instance", "message_id", e.ID, "key_id", e.KeyID)
		e.NotBefore = s.now().Add(d.opt.PollInterval)
		l.release(e.ID)
		s.save(ctx, worker, e, false)
		return c, false
	case err != nil:
		l.release(e.ID)
		s.bury(ctx, worker, e, c, err)
		return c, false
	}
	return c, true
}

// ready makes sure an opened envelope holds its message, issuing a
// request's token and saving the sealed message first. It reports false,
// having dealt with the envelope, when there is nothing to send.
func (s *Service) ready(ctx context.Context, worker string, l *leases, e *Envelope, c *content) bool {
	if c.Msg != nil {
		return true
	}
	wctx := context.WithoutCancel(ctx)
	if e.Kind != EnvelopeRequest {
		l.release(e.ID)
		s.bury(wctx, worker, *e, *c, errors.New("message envelope without content"))
		return false
	}
	if !s.issueEnvelope(wctx, worker, e, c) {
		l.release(e.ID)
		return false
	}
	return true
}

// work carries out one claimed envelope. Work in hand is finished even
// when ctx ends (only the wait for the provider budget is cut short): the
// lease would otherwise hold the message back.
func (s *Service) work(ctx context.Context, worker string, l *leases, e Envelope) {
	c, ok := s.open(ctx, worker, l, e)
	if !ok {
		return
	}
	if !s.ready(ctx, worker, l, &e, &c) {
		return
	}
	if c.Batch != nil {
		// Sent in a batch once (the Mailer was a BatchMailer then), with
		// an unknown outcome: the same key must carry the same batch,
		// which one message alone is not. Sending it under its own key
		// may duplicate it; that is the price of a change of Mailer.
		c.Batch = nil
	}
	s.sendOne(ctx, worker, l, e, c)
}

// retry schedules e again after a transient failure, or buries it when
// its attempts or age are used up.
// A failure that is not the message's fault (no answer, or the provider's
// rate limit) does not count as an attempt (count false); wait, when
// positive, is the least delay.
func (s *Service) retry(ctx context.Context, worker string, e Envelope, c content, cause error, count bool, wait time.Duration) {
	d := s.durable
	if count {
		e.Attempts++
	}
	now := s.now()
	if e.Attempts >= d.opt.MaxAttempts || now.Sub(e.CreatedAt) >= d.opt.MaxAge {
		s.bury(ctx, worker, e, c, fmt.Errorf("gave up after %d attempts: %w", e.Attempts, cause))
		return
	}
	e.NotBefore = now.Add(s.retryDelay(e.Attempts, wait))
	e.LastError = cause.Error()
	s.logRetry(ctx, e, c, cause, e.NotBefore.Sub(now))
	kind := ""
	if c.Msg != nil {
		kind = c.Msg.Kind
	}
	s.emit(Event{Kind: EventRetry, MessageID: e.ID, MailKind: kind, Err: cause})
	s.save(ctx, worker, e, false)
}

// retryDelay is how long a failed message waits: wait (a provider's
// Retry-After) if positive, otherwise the backoff for its attempts.
func (s *Service) retryDelay(attempts int, wait time.Duration) time.Duration {
	if wait > 0 {
		return wait
	}
	return backoff.Delay(max(attempts, 1), s.durable.opt.RetryBase, s.durable.opt.RetryMax)
}

func (s *Service) save(ctx context.Context, worker string, e Envelope, hold bool) {
	if err := s.durable.store.Save(ctx, worker, e, hold); err != nil {
		s.log.ErrorContext(ctx, "outbox save", "message_id", e.ID, "err", err)
	}
}

// issueEnvelope carries out a queued request: lookup, cooldown, token,
// rendering, sealing; the sealed message is saved before it is sent, so
// that a retry sends the same message. It reports whether c.Msg is ready
// to send.
func (s *Service) issueEnvelope(ctx context.Context, worker string, e *Envelope, c *content) bool {
	d := s.durable
	base, err := s.checkRequest(c.Email, c.Link)
	if err != nil { // the allowlist changed since it was queued
		s.drop(ctx, worker, *e)
		return false
	}
	// The cooldown is skipped only for a request that passed it already
	// (its mail was rendered, then moved aside, then revived by an
	// operator). A request that failed for any other reason meets the
	// cooldown again, so that a back end's outage does not turn into a
	// burst of mail when it ends. The cooldown is owned by the envelope:
	// if this worker dies after starting it and before saving the rendered
	// email, the worker that claims the envelope next finds the cooldown
	// its own and carries on, instead of dropping the request.
	_, msg, err := s.issue(ctx, c.Email, e.ID, base, true, !c.Passed)
	switch {
	case errors.Is(err, ErrUnknownUser), errors.Is(err, ErrThrottled):
		s.drop(ctx, worker, *e)
		return false
	case err != nil:
		s.emit(Event{Kind: EventFailed, Err: err})
		s.retry(ctx, worker, *e, *c, err, true, 0)
		return false
	}
	c.Passed, c.Msg = true, &msg
	e.Sealed, e.KeyID, err = d.seal.seal(e.ID, *c)
	if err == nil {
		err = d.store.Save(ctx, worker, *e, true)
	}
	if err != nil {
		// Not saved: the token is issued but its mail is not. The lease
		// runs out and the envelope is claimed again; it meets the
		// cooldown, so the person may have to ask again.
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

// bury moves an envelope aside. A reset email's rendered content is erased
// (its link carries a token) and the request kept, sealed, so that reviving
// it issues a new token; a notice, which holds no secret, is kept whole.
func (s *Service) bury(ctx context.Context, worker string, e Envelope, c content, cause error) {
	d := s.durable
	d.dead.Add(1)
	if c.Batch != nil || e.Kind == EnvelopeRequest && c.Msg != nil {
		c.Batch = nil
		if e.Kind == EnvelopeRequest {
			c.Msg = nil
		}
		if sealed, keyID, err := d.seal.seal(e.ID, c); err == nil {
			e.Sealed, e.KeyID = sealed, keyID
		}
	}
	e.Dead = true
	e.LastError = cause.Error()
	s.emit(Event{Kind: EventDead, MessageID: e.ID, Err: cause})
	s.log.ErrorContext(ctx, "outbox message moved aside", "message_id", e.ID, "err", cause)
	s.save(ctx, worker, e, false)
}

// OutboxReport is what [Service.OutboxReport] returns.
type OutboxReport struct {
	OutboxStats
	OldestAge time.Duration // age of the oldest pending envelope
	// Counted by this Service since it started:
	Sent    int64 // messages the Mailer accepted
	Failed  int64 // transient failures (each retried)
	Dead    int64 // messages moved aside
	Dropped int64 // public requests dropped because the outbox was full
}

// OutboxReport reads the outbox's depth (up to Outbox.MaxPending) and age
// from the Store and this process's counters, and emits them as an
// EventOutboxStats event.
func (s *Service) OutboxReport(ctx context.Context) (OutboxReport, error) {
	if s.durable == nil {
		return OutboxReport{}, errors.New("reset: OutboxReport: Config.Outbox is not set")
	}
	d := s.durable
	st, err := s.countOutbox(ctx)
	if err != nil {
		return OutboxReport{}, fmt.Errorf("reset: outbox stats: %w", err)
	}
	r := OutboxReport{OutboxStats: st, Sent: d.sent.Load(), Failed: d.failed.Load(), Dead: d.dead.Load(), Dropped: s.dropped.Load()}
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
// with a new token (skipping the cooldown only if the request had passed
// it); a notice is sent as it was.
func (s *Service) Revive(ctx context.Context, id string) error {
	if s.durable == nil {
		return errors.New("reset: Revive: Config.Outbox is not set")
	}
	if err := s.durable.store.Revive(ctx, id, s.now()); err != nil {
		return fmt.Errorf("reset: reviving %s: %w", id, err)
	}
	s.durable.wakeUp()
	return nil
}
