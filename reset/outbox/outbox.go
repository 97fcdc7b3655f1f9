package outbox

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/passreset/passreset/internal/pace"
	"github.com/passreset/passreset/internal/repeatlog"
	"github.com/passreset/passreset/reset"
)

// BatchMailer is an optional [reset.Mailer] capability: sending many
// messages in one call to the provider (Resend's batch endpoint sends up
// to 100). The outbox's workers use it when the Mailer implements it.
//
// SendBatch makes one attempt to send msgs under the idempotency key key,
// which identifies this exact batch: the outbox sends a batch again only
// whole, with the same key and the same messages in the same order, so
// that the provider sends each message at most once.
//
// It returns one error per message (nil for a message the provider
// accepted) and an error for the call as a whole. When the call as a
// whole failed (err != nil), the per-message slice may be nil and err is
// classified like Send's: [reset.ErrPermanent], [reset.ErrOutcomeUnknown],
// a [*reset.RateLimitError], or temporary. When err is nil, each
// per-message error says what became of that message, which the provider
// did not send: an error matching ErrPermanent moves it aside; any other
// is retried later, alone or in another batch under another key.
type BatchMailer interface {
	reset.Mailer
	SendBatch(ctx context.Context, key string, msgs []reset.Message) (perMessage []error, err error)
	// MaxBatch is the largest number of messages SendBatch accepts.
	MaxBatch() int
}

// Settings nobody needs to tune.
const (
	pollInterval  = time.Second        // an idle worker looks for work again
	checkInterval = time.Second        // the longest time between two counts for MaxPending
	retryBase     = 10 * time.Second   // backoff of a failed envelope: first wait
	retryMax      = 15 * time.Minute   // backoff of a failed envelope: longest wait
	sendTimeout   = 30 * time.Second   // one Mailer call
	pruneEvery    = 10 * time.Minute   // Run prunes this often
	figuresEvery  = time.Minute        // Run logs the outbox's figures this often
	pruneBatch    = 1000               // rows one prune statement removes at most
	deadRetention = 7 * 24 * time.Hour // dead envelopes are kept this long
	unrunGrace    = time.Minute        // see warnIfNotRun
	minDelay      = 2 * time.Millisecond
	maxDelay      = 20 * time.Millisecond
	nonBatchClaim = 4 // envelopes one claim takes for a Mailer that is not a BatchMailer
)

// Options configures an [Outbox]. The zero value of every field means its
// documented default; only Keys must be set.
type Options struct {
	// Keys seal what an envelope holds (the typed address, the caller's
	// link, the rendered emails) with AES-256-GCM: the first key seals,
	// all of them open. See [SealKey] for the safe order of a key
	// rotation. Required to queue and send (a Service refuses an Outbox
	// without a key); [Outbox.Report], [Outbox.Dead] and [Outbox.Revive]
	// work without one.
	Keys []SealKey

	// Workers is how many goroutines [Outbox.Run] runs. Default 2.
	Workers int

	// Batch is how many envelopes a worker claims at once. With a
	// [BatchMailer] the messages of one claim go to the provider in one
	// call, so Batch is capped at its MaxBatch. Default: the Mailer's
	// MaxBatch for a BatchMailer (100 for Resend), 4 otherwise.
	Batch int

	// Rate is how many calls a second the provider accepts from the whole
	// account, all instances together: every instance that shares the
	// Store draws each Mailer call (one message, or one batch) from one
	// budget kept in the Store. Default 0: nine tenths of the rate a
	// [reset.RateLimitedMailer] advertises, read before every call; no
	// budget for a Mailer that advertises none (SMTP). A positive Rate is
	// used as it is; a negative one means no budget at all.
	//
	// Calls start one at a time, 1/Rate apart. When the provider still
	// answers with a [*reset.RateLimitError], every worker of every
	// instance waits out its RetryAfter, and this instance lowers its rate
	// (halving it, down to an eighth), then raises it back slowly with
	// each call that is not refused.
	Rate float64

	// MaxPending bounds the outbox, approximately: the pending envelopes
	// are counted (up to MaxPending) at most every second, in the
	// background, so that a request is one write whatever the backlog.
	// While the count is at MaxPending, public requests are dropped
	// (counted, logged, and answered like any other) and trusted requests
	// fail with reset.ErrQueueFull before changing anything. All instances
	// together can overshoot by what they accept in one second.
	// "Password changed" notices are never refused. Default 100,000.
	MaxPending int

	// Lease is how long a claim lasts without renewal. A live worker
	// renews its leases every Lease/3, so a slow send keeps its claim; a
	// worker that dies frees them when the lease ends, so its mail goes
	// out within Lease (plus a poll) of its death. At least 1 second.
	// Default 10 seconds.
	Lease time.Duration

	// MaxAttempts bounds the answered failures of an envelope (the
	// provider said no, temporarily); past it the envelope is moved aside
	// as dead. Default 10. A call whose answer never came (a timeout, a
	// dropped connection, reset.ErrOutcomeUnknown) and a rate-limit
	// answer do not count: the first is retried as it is, under the same
	// idempotency key, until MaxAge.
	MaxAttempts int

	// MaxAge is how long an envelope may wait in all. An envelope whose
	// next try would come later than MaxAge after it was queued is moved
	// aside as dead, with a last error that says so; when the provider
	// may have sent it already (the outcome of an earlier call is
	// unknown), the error says "outcome unknown". Keep MaxAge below the
	// provider's idempotency window (Resend keeps keys 24 hours), so that
	// every retry is still answered from the provider's record. Default
	// 23 hours.
	MaxAge time.Duration

	// BudgetKey names the provider budget in the Store, so that outboxes
	// sending through different provider accounts can share one Store.
	// Default "mail".
	BudgetKey string

	// WorkerID names this process's claims. Default: random.
	WorkerID string
}

// defaultMaxAge is below Resend's 24-hour idempotency window.
const defaultMaxAge = 23 * time.Hour

// Outbox is the durable queue: set it as [reset.Config.Queue], then run
// [Outbox.Run] (or [Outbox.Drain]) in at least one process. It is safe for
// concurrent use.
type Outbox struct {
	store Store
	opt   Options
	seal  *sealer

	attached atomic.Bool
	d        reset.Delivery
	batcher  BatchMailer // the Mailer, when it sends batches
	batch    int
	wake     chan struct{}
	factor   pace.Factor

	running  atomic.Bool       // Run or Drain started in this process
	errLog   repeatlog.Limiter // errors that repeat in an outage: once a minute, counted
	warnOnce sync.Once

	full     atomic.Bool
	checking atomic.Bool
	checked  atomic.Int64 // UnixNano of the last count
}

var _ reset.Queue = (*Outbox)(nil)

// New checks opt and returns an Outbox over store. It starts nothing: a
// Service puts work into it once it is [reset.Config.Queue], and workers
// run only inside [Outbox.Run] or [Outbox.Drain].
func New(store Store, opt Options) (*Outbox, error) {
	var problems []string
	if store == nil {
		problems = append(problems, "a Store is required")
	}
	seal, err := newSealer(opt.Keys)
	if err != nil {
		problems = append(problems, err.Error())
	}
	def := func(name string, v *int, d int) {
		if *v < 0 {
			problems = append(problems, name+" must not be negative")
		} else if *v == 0 {
			*v = d
		}
	}
	defD := func(name string, v *time.Duration, d time.Duration) {
		if *v < 0 {
			problems = append(problems, name+" must not be negative")
		} else if *v == 0 {
			*v = d
		}
	}
	def("Workers", &opt.Workers, 2)
	def("Batch", &opt.Batch, 0)
	def("MaxPending", &opt.MaxPending, 100000)
	def("MaxAttempts", &opt.MaxAttempts, 10)
	defD("Lease", &opt.Lease, 10*time.Second)
	defD("MaxAge", &opt.MaxAge, defaultMaxAge)
	if opt.Lease < time.Second {
		problems = append(problems, fmt.Sprintf("Lease (%v) must be at least 1 second, to leave room for its renewals every Lease/3", opt.Lease))
	}
	if opt.Rate != opt.Rate {
		problems = append(problems, "Rate must be a number of calls per second (0: the Mailer's, negative: none)")
	}
	if opt.BudgetKey == "" {
		opt.BudgetKey = "mail"
	}
	if opt.WorkerID == "" {
		opt.WorkerID = "w-" + rand.Text()[:12]
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("outbox: invalid Options: %s", joinProblems(problems))
	}
	return &Outbox{store: store, opt: opt, seal: seal, wake: make(chan struct{}, 1)}, nil
}

func joinProblems(p []string) string {
	s := ""
	for i, x := range p {
		if i > 0 {
			s += "; "
		}
		s += x
	}
	return s
}

// Attach connects the outbox to the Service that queues into it;
// [reset.New] calls it. It fails without a seal key, when the Mailer's
// MaxBatch is not positive, or when the outbox serves a Service already.
func (o *Outbox) Attach(d reset.Delivery) error {
	if o.seal.current == "" {
		return errors.New("outbox: Options.Keys: at least one 32-byte key is required to seal queued mail")
	}
	batch := nonBatchClaim
	bm, _ := d.Mailer.(BatchMailer)
	if bm != nil {
		batch = bm.MaxBatch()
		if batch <= 0 {
			return fmt.Errorf("outbox: the Mailer's MaxBatch is %d; it must be positive", batch)
		}
	}
	if o.opt.Batch > 0 {
		batch = min(o.opt.Batch, batch)
		if bm == nil {
			batch = o.opt.Batch
		}
	}
	if !o.attached.CompareAndSwap(false, true) {
		return errors.New("outbox: already serves a Service; make one Outbox per Service")
	}
	o.d, o.batcher, o.batch = d, bm, batch
	return nil
}

// now is the Service's clock, in UTC; time.Now before Attach.
func (o *Outbox) now() time.Time {
	if o.attached.Load() {
		return o.d.Now()
	}
	return time.Now().UTC()
}

// Full reports whether the outbox held MaxPending envelopes or more when
// it was last counted. Counting costs a bounded index scan, so it is done
// at most once a second, in the background, never by the request that
// notices the count is stale.
func (o *Outbox) Full() bool {
	if time.Since(time.Unix(0, o.checked.Load())) >= checkInterval && o.checking.CompareAndSwap(false, true) {
		go func() {
			defer o.checking.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
			defer cancel()
			o.count(ctx)
		}()
	}
	return o.full.Load()
}

// count reads the outbox's size and updates the full flag.
func (o *Outbox) count(ctx context.Context) (Stats, error) {
	st, err := o.store.Stats(ctx, o.opt.MaxPending)
	if err != nil {
		if o.attached.Load() {
			if ctx.Err() == nil { // not a shutdown
				o.errLog.Log(ctx, o.d.Logger, slog.LevelWarn, "outbox: counting pending envelopes", err)
			}
		}
		return st, err
	}
	o.full.Store(st.Pending >= o.opt.MaxPending)
	o.checked.Store(time.Now().UnixNano())
	return st, nil
}

// Put seals j into an envelope and adds it to the outbox, in one write.
// The local workers are woken after a short random delay, so that the
// work an envelope causes does not run while the request that queued it
// is still being answered.
func (o *Outbox) Put(ctx context.Context, j reset.Job) error {
	if !o.attached.Load() {
		return errors.New("outbox: Put before Attach: set the Outbox as reset.Config.Queue")
	}
	var id, kind string
	var c content
	switch {
	case j.Request != nil:
		id, kind = j.Request.ID, KindRequest
		c = content{Email: j.Request.Email, Link: j.Request.Link, Passed: j.Request.SkipCooldown, Msg: j.Message, Trace: j.Trace}
	case j.Message != nil:
		id, kind = j.Message.ID, KindMessage
		c = content{Msg: j.Message, Trace: j.Trace}
	default:
		return errors.New("outbox: Put of an empty Job")
	}
	sealed, keyID, err := o.seal.seal(id, c)
	if err != nil {
		return err
	}
	now := o.now()
	e := Envelope{ID: id, Kind: kind, Sealed: sealed, KeyID: keyID, CreatedAt: now, NotBefore: now}
	if err := o.store.Enqueue(ctx, e); err != nil {
		return fmt.Errorf("outbox: queueing: %w", err)
	}
	time.AfterFunc(minDelay+mrand.N(maxDelay-minDelay), o.wakeUp)
	o.warnIfNotRun()
	return nil
}

func (o *Outbox) wakeUp() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// warnIfNotRun makes an outbox that nobody runs a visible mistake: once,
// unrunGrace after the first Put of a process that never started Run or
// Drain, it reads the oldest pending envelope's age from the Store and,
// if that is older than unrunGrace (no process anywhere drains it), logs
// a warning. A process that only queues while others run the workers
// stays quiet.
func (o *Outbox) warnIfNotRun() {
	if o.running.Load() {
		return
	}
	o.warnOnce.Do(func() {
		time.AfterFunc(unrunGrace, func() {
			if o.running.Load() {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
			defer cancel()
			st, err := o.store.Stats(ctx, 1)
			if err == nil && !st.Oldest.IsZero() && o.now().Sub(st.Oldest) >= unrunGrace {
				o.d.Logger.WarnContext(ctx, "outbox: mail is waiting and this process runs no workers: call Outbox.Run here or in another process sharing the store",
					"oldest_age", o.now().Sub(st.Oldest).Round(time.Second))
			}
		})
	})
}

// Run runs Options.Workers workers that drain the outbox, prunes what
// has expired every 10 minutes (the Service's expired tokens and ended
// cooldowns, and dead envelopes older than 7 days) and logs the outbox's
// figures every minute ("outbox figures": pending, dead, oldest_age), until
// ctx ends; then
// it waits for the work in hand to be finished (each Mailer call bounded
// by 30 seconds) and returns nil. Run it in as many processes as you
// like: claims keep their work apart. It returns an error at once when
// the Outbox is not a Service's Queue.
func (o *Outbox) Run(ctx context.Context) error {
	if !o.attached.Load() {
		return errors.New("outbox: Run before Attach: set the Outbox as reset.Config.Queue and create the Service first")
	}
	o.running.Store(true)
	var wg sync.WaitGroup
	for i := range o.opt.Workers {
		wg.Go(func() { o.workLoop(ctx, fmt.Sprintf("%s-%d", o.opt.WorkerID, i)) })
	}
	wg.Go(func() {
		prune, figures := time.NewTicker(pruneEvery), time.NewTicker(figuresEvery)
		defer prune.Stop()
		defer figures.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-prune.C:
				o.prune(ctx)
			case <-figures.C:
				o.logFigures(ctx)
			}
		}
	})
	wg.Wait()
	return nil
}

// logFigures writes the outbox's figures, every instance together, to the
// Service's log: at Info while mail is pending or dead, at Debug when the
// outbox is empty.
func (o *Outbox) logFigures(ctx context.Context) {
	st, err := o.count(ctx)
	if err != nil {
		return // count logged it
	}
	level := slog.LevelInfo
	if st.Pending == 0 && st.Dead == 0 {
		level = slog.LevelDebug
	}
	var age time.Duration
	if !st.Oldest.IsZero() {
		age = max(o.now().Sub(st.Oldest), 0).Round(time.Second)
	}
	o.d.Logger.Log(ctx, level, "outbox figures", "pending", st.Pending, "dead", st.Dead, "oldest_age", age, "limit", o.opt.MaxPending)
}

// prune removes the Service's expired records and old dead envelopes.
func (o *Outbox) prune(ctx context.Context) {
	if _, err := o.d.Service.Prune(ctx); err != nil && ctx.Err() == nil {
		o.errLog.Log(ctx, o.d.Logger, slog.LevelError, "outbox: prune", err)
	}
	total := 0
	for ctx.Err() == nil {
		n, err := o.store.PruneDead(ctx, o.now().Add(-deadRetention), pruneBatch)
		total += n
		if err != nil {
			if ctx.Err() == nil { // not a shutdown
				o.errLog.Log(ctx, o.d.Logger, slog.LevelError, "outbox: pruning dead envelopes", err)
			}
			break
		}
		if n < pruneBatch {
			break
		}
	}
	if total > 0 {
		o.d.Logger.InfoContext(ctx, "outbox: pruned dead envelopes", "dead_envelopes", total)
	}
}

func (o *Outbox) workLoop(ctx context.Context, worker string) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		n, err := o.claimAndWork(ctx, worker)
		if err != nil && ctx.Err() == nil { // a shutdown is not an error
			o.errLog.Log(ctx, o.d.Logger, slog.LevelError, "outbox: claim failed", err)
		}
		if ctx.Err() != nil {
			return
		}
		if n == o.batch {
			continue // there may be more
		}
		t.Reset(pollInterval)
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		case <-t.C:
		}
	}
}

// Drain works through every envelope that is due now, in this goroutine,
// and returns how many it carried out. It suits tests, cron jobs and
// programs that do not run workers all the time. It returns an error when
// the Outbox is not a Service's Queue, or when a claim fails.
func (o *Outbox) Drain(ctx context.Context) (int, error) {
	if !o.attached.Load() {
		return 0, errors.New("outbox: Drain before Attach: set the Outbox as reset.Config.Queue and create the Service first")
	}
	o.running.Store(true)
	total := 0
	for {
		n, err := o.claimAndWork(ctx, o.opt.WorkerID+"-drain")
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// Report describes the outbox of every instance together, as the Store
// holds it: a separate tool sees the same figures.
type Report struct {
	Pending   int           // envelopes waiting or being worked on, up to Options.MaxPending
	Dead      int           // envelopes moved aside, up to Options.MaxPending
	Oldest    time.Time     // when the oldest pending envelope was queued; zero if none
	OldestAge time.Duration // how long it has waited
}

// Report reads the outbox's figures from the Store.
func (o *Outbox) Report(ctx context.Context) (Report, error) {
	st, err := o.count(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("outbox: report: %w", err)
	}
	r := Report{Pending: st.Pending, Dead: st.Dead, Oldest: st.Oldest}
	if !st.Oldest.IsZero() {
		r.OldestAge = o.now().Sub(st.Oldest)
	}
	return r, nil
}

// Dead lists up to limit envelopes moved aside, oldest first. Their
// LastError says why; their content stays sealed.
func (o *Outbox) Dead(ctx context.Context, limit int) ([]Envelope, error) {
	envs, err := o.store.Dead(ctx, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: listing dead envelopes: %w", err)
	}
	return envs, nil
}

// Revive makes the dead envelope id pending again, due now, with its
// attempts reset. What it then sends depends on its kind:
//
//   - a request (a reset email) is carried out afresh: a new token, a new
//     email under a new message ID, skipping the cooldown only if the
//     request had passed it. The person may have the earlier email when
//     its outcome was unknown; its link no longer works.
//   - a message (a "password changed" notice) is sent as it was, under
//     its own idempotency key.
//   - a batch is sent again whole, the same messages under the same key,
//     by a worker whose Mailer is a [BatchMailer] (another moves it aside
//     again). Within the provider's idempotency window the provider
//     answers from its record and sends nothing twice; after it, a member
//     it had accepted is sent again.
//
// It returns an error matching [reset.ErrNotFound] when no dead envelope
// has that id.
func (o *Outbox) Revive(ctx context.Context, id string) error {
	if err := o.store.Revive(ctx, id, o.now()); err != nil {
		return fmt.Errorf("outbox: reviving %s: %w", id, err)
	}
	o.wakeUp()
	return nil
}
