package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
)

// batchCall is one SendBatch call as the provider saw it.
type batchCall struct {
	key string
	ids []string
}

// batchMailer is a BatchMailer that behaves like a provider with
// idempotency keys: a key seen before with the same messages answers as
// the first time without sending again; with other messages it is a
// permanent 409. script decides each call: per-message errors, an error
// for the call, and whether the provider sent the messages although the
// call failed. hang, when set, runs after the provider recorded the call
// and can replace its answer with an error (an answer that never came).
type batchMailer struct {
	max    int
	script func(call int, ctx context.Context, key string, msgs []reset.Message) (per []error, err error, sent bool)
	hang   func(call int, ctx context.Context) error

	mu      sync.Mutex
	calls   []batchCall
	answers map[string][]error // by key
	bodies  map[string][]string
	counts  map[string]int // deliveries by message ID
}

var _ outbox.BatchMailer = (*batchMailer)(nil)

func (m *batchMailer) MaxBatch() int { return m.max }

func (m *batchMailer) Send(ctx context.Context, msg reset.Message) error {
	per, err := m.SendBatch(ctx, msg.IdempotencyKey(), []reset.Message{msg})
	if err != nil {
		return err
	}
	return per[0]
}

func (m *batchMailer) SendBatch(ctx context.Context, key string, msgs []reset.Message) ([]error, error) {
	ids := make([]string, len(msgs))
	for i, msg := range msgs {
		ids[i] = msg.ID
	}
	m.mu.Lock()
	if m.counts == nil {
		m.answers, m.bodies, m.counts = map[string][]error{}, map[string][]string{}, map[string]int{}
	}
	m.calls = append(m.calls, batchCall{key, ids})
	call := len(m.calls)
	if prev, ok := m.bodies[key]; ok {
		answer := m.answers[key]
		m.mu.Unlock()
		if !slices.Equal(prev, ids) {
			return nil, fmt.Errorf("%w: 409 invalid_idempotent_request", reset.ErrPermanent)
		}
		if m.hang != nil {
			if herr := m.hang(call, ctx); herr != nil {
				return nil, herr
			}
		}
		return answer, nil
	}
	m.mu.Unlock()
	per, err, sent := []error(nil), error(nil), true
	if m.script != nil {
		per, err, sent = m.script(call, ctx, key, msgs)
	}
	m.mu.Lock()
	if err == nil || sent {
		if per == nil {
			per = make([]error, len(msgs))
		}
		m.bodies[key], m.answers[key] = ids, per
		for i, id := range ids {
			if per[i] == nil {
				m.counts[id]++
			}
		}
	}
	m.mu.Unlock()
	if m.hang != nil {
		if herr := m.hang(call, ctx); herr != nil {
			return nil, herr
		}
	}
	return per, err
}

func (m *batchMailer) snapshot() ([]batchCall, map[string]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls), maps.Clone(m.counts)
}

// newBatchEnv is an outbox whose Mailer sends batches, with n accounts
// requested.
func newBatchEnv(t *testing.T, m *batchMailer, n int, edit ...func(*reset.Config, *outbox.Options)) *env {
	t.Helper()
	e := newEnv(t, append([]func(*reset.Config, *outbox.Options){func(c *reset.Config, _ *outbox.Options) { c.Mailer = m }}, edit...)...)
	for i := range n {
		addr := fmt.Sprintf("b%d@anywhere.com", i)
		e.users.Add(fmt.Sprintf("b%d", i), addr, oldPass)
		if err := e.svc.Request(t.Context(), addr, ""); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// wantOnce checks that each of n messages was delivered exactly once.
func wantOnce(t *testing.T, m *batchMailer, n int) {
	t.Helper()
	_, counts := m.snapshot()
	if len(counts) != n {
		t.Fatalf("%d messages delivered, want %d", len(counts), n)
	}
	for id, c := range counts {
		if c != 1 {
			t.Fatalf("message %s delivered %d times", id, c)
		}
	}
}

// wantSameBatch checks that every call sent the first call's batch.
func wantSameBatch(t *testing.T, calls []batchCall, n int) {
	t.Helper()
	if len(calls) != n {
		t.Fatalf("%d calls %+v, want %d", len(calls), calls, n)
	}
	for _, c := range calls[1:] {
		if c.key != calls[0].key || !slices.Equal(c.ids, calls[0].ids) {
			t.Fatalf("calls %+v, want the same batch under the same key every time", calls)
		}
	}
}

func TestBatches(t *testing.T) {
	m := &batchMailer{max: 4}
	e := newBatchEnv(t, m, 10)
	e.drain(t)
	wantOnce(t, m, 10)
	calls, _ := m.snapshot()
	if len(calls) != 3 || len(calls[0].ids) != 4 || len(calls[2].ids) != 2 {
		t.Fatalf("calls %+v, want batches of 4, 4 and 2", calls)
	}
	if calls[0].key == calls[1].key {
		t.Fatal("two batches shared a key")
	}
	if r := e.report(t); r.Pending != 0 || e.events.count(reset.EventSent) != 10 {
		t.Fatalf("report %+v, %d sent", r, e.events.count(reset.EventSent))
	}
}

// A partial failure retries only the failed message, alone or in a new
// batch under a new key; a permanent per-message error moves only that
// message aside. Both come back with their own IDs in one step.
func TestBatchPartialFailure(t *testing.T) {
	m := &batchMailer{max: 10}
	m.script = func(call int, _ context.Context, _ string, msgs []reset.Message) ([]error, error, bool) {
		if call > 1 {
			return nil, nil, true
		}
		per := make([]error, len(msgs))
		per[1] = errors.New("450 try later")
		per[2] = fmt.Errorf("%w: 550 <%s>: recipient rejected", reset.ErrPermanent, msgs[2].To)
		return per, nil, true
	}
	e := newBatchEnv(t, m, 4)
	e.drain(t)
	if r := e.report(t); r.Pending != 1 || r.Dead != 1 {
		t.Fatalf("after the answer: %+v, want 1 pending and 1 dead", r)
	}
	e.clock.Advance(time.Hour)
	e.drain(t)
	calls, counts := m.snapshot()
	if len(calls) != 2 || len(calls[1].ids) != 1 || calls[1].ids[0] != calls[0].ids[1] || calls[1].key == calls[0].key {
		t.Fatalf("calls %+v, want the second message alone under a new key", calls)
	}
	if len(counts) != 3 || counts[calls[0].ids[2]] != 0 {
		t.Fatalf("delivered %v, want all but the third", counts)
	}
	dead, _ := e.ob.Dead(t.Context(), 10)
	if len(dead) != 1 || !strings.Contains(dead[0].LastError, "550") || strings.Contains(dead[0].LastError, "b2@") {
		t.Fatalf("dead %+v, want the third message, its address redacted", dead)
	}
}

// #20: the provider accepts a batch and the answer is lost, again and
// again, more times than MaxAttempts: the same batch goes under the same
// key each time, nothing is counted as an attempt, nothing goes dead,
// and each member is sent once.
func TestBatchAcceptedAnswerLostRepeatedly(t *testing.T) {
	const lost = 6
	m := &batchMailer{max: 10}
	m.hang = func(call int, _ context.Context) error {
		if call <= lost {
			return fmt.Errorf("%w: connection dropped after the request was written", reset.ErrOutcomeUnknown)
		}
		return nil
	}
	e := newBatchEnv(t, m, 5, func(_ *reset.Config, o *outbox.Options) { o.MaxAttempts = 3 })
	for range lost + 1 {
		e.drain(t)
		if r := e.report(t); r.Dead != 0 {
			t.Fatalf("an unknown outcome made mail dead: %+v", r)
		}
		e.clock.Advance(time.Hour)
	}
	calls, _ := m.snapshot()
	wantSameBatch(t, calls, lost+1)
	wantOnce(t, m, 5)
	if r := e.report(t); r.Pending != 0 || r.Dead != 0 {
		t.Fatalf("report %+v", r)
	}
}

// #20: an unknown outcome is retried until MaxAge only: then the batch is
// moved aside whole, with a reason that says "outcome unknown", and a
// revive sends the same batch under the same key.
func TestBatchUnknownOutcomePastMaxAge(t *testing.T) {
	m := &batchMailer{max: 10}
	answer := false
	m.hang = func(int, context.Context) error {
		if !answer {
			return fmt.Errorf("%w: timeout", reset.ErrOutcomeUnknown)
		}
		return nil
	}
	e := newBatchEnv(t, m, 3, func(_ *reset.Config, o *outbox.Options) { o.MaxAge = 2 * time.Hour })
	for range 20 {
		e.drain(t)
		e.clock.Advance(10 * time.Minute)
	}
	dead, _ := e.ob.Dead(t.Context(), 10)
	if len(dead) != 1 || dead[0].Kind != outbox.KindBatch || !strings.Contains(dead[0].LastError, "outcome unknown") {
		t.Fatalf("dead %+v, want the batch, outcome unknown", dead)
	}
	if e.events.count(reset.EventDead) != 1 {
		t.Fatal("no dead event")
	}
	answer = true
	if err := e.ob.Revive(t.Context(), dead[0].ID); err != nil {
		t.Fatal(err)
	}
	e.drain(t)
	calls, _ := m.snapshot()
	wantSameBatch(t, calls, len(calls))
	wantOnce(t, m, 3)
}

// #20: a batch envelope is one envelope: a worker that claims fewer
// envelopes at once still takes the whole batch, and sends it whole
// under its key.
func TestBatchNotSplitBetweenClaims(t *testing.T) {
	m := &batchMailer{max: 10}
	m.script = func(call int, _ context.Context, _ string, _ []reset.Message) ([]error, error, bool) {
		if call == 1 {
			return nil, errors.New("502 bad gateway"), false
		}
		return nil, nil, true
	}
	e := newBatchEnv(t, m, 4, func(_ *reset.Config, o *outbox.Options) { o.Batch = 4 })
	e.drain(t)
	e.clock.Advance(time.Hour)
	small := newEnv(t, func(c *reset.Config, o *outbox.Options) {
		c.Store, c.Users, c.Mailer, c.Now = e.store, e.users, m, e.clock.Now
		o.WorkerID, o.Batch = "small", 1
	})
	if n := small.drain(t); n != 1 {
		t.Fatalf("Drain = %d, want 1 (the batch envelope)", n)
	}
	calls, _ := m.snapshot()
	wantSameBatch(t, calls, 2)
	wantOnce(t, m, 4)
}

// #20: a worker that is abandoned while its batch is at the provider (it
// renews nothing any more): once its lease ends, the next worker sends
// the same batch under the same key, and the provider answers from its
// record. The abandoned worker's late answer changes nothing.
func TestBatchAbandonedWorker(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	m := &batchMailer{max: 10}
	m.hang = func(call int, _ context.Context) error {
		if call == 1 { // sent, then the worker hangs: as good as dead
			close(entered)
			<-release
			return errors.New("connection reset")
		}
		return nil
	}
	// A lease of an hour on the test's clock: the heartbeat, every
	// 20 minutes of real time, never beats during the test.
	e := newBatchEnv(t, m, 6, func(_ *reset.Config, o *outbox.Options) { o.Lease, o.WorkerID = time.Hour, "dies" })
	done := make(chan struct{})
	go func() { defer close(done); e.ob.Drain(context.Background()) }()
	<-entered
	e.clock.Advance(time.Hour) // the abandoned worker's lease ends
	other := newEnv(t, func(c *reset.Config, o *outbox.Options) {
		c.Store, c.Users, c.Mailer, c.Now = e.store, e.users, m, e.clock.Now
		o.WorkerID = "lives"
	})
	if n := other.drain(t); n != 1 {
		t.Fatalf("the next worker carried out %d envelopes, want 1 (the batch)", n)
	}
	close(release)
	<-done
	calls, _ := m.snapshot()
	wantSameBatch(t, calls, 2)
	wantOnce(t, m, 6)
	if r := other.report(t); r.Pending != 0 || r.Dead != 0 {
		t.Fatalf("report %+v", r)
	}
}

// #20: envelopes given back, or freed by a dead worker, keep their place:
// behind a backlog of newer envelopes, a dead worker's batch is the first
// thing the next claim takes.
func TestReleasedClaimKeepsItsPlace(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	m := &batchMailer{max: 2}
	var once sync.Once
	m.hang = func(call int, _ context.Context) error {
		once.Do(func() { close(entered); <-release })
		return nil
	}
	e := newBatchEnv(t, m, 2, func(_ *reset.Config, o *outbox.Options) { o.Lease, o.WorkerID = time.Hour, "dies" })
	done := make(chan struct{})
	go func() { defer close(done); e.ob.Drain(context.Background()) }()
	<-entered
	// A backlog arrives after the dead worker's claim.
	e.clock.Advance(time.Minute)
	for i := range 20 {
		addr := fmt.Sprintf("late%d@anywhere.com", i)
		e.users.Add(fmt.Sprintf("late%d", i), addr, oldPass)
		if err := e.svc.Request(t.Context(), addr, ""); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(time.Hour) // the dead worker's lease ends
	far := e.clock.Now()
	next, err := e.store.Store.Claim(t.Context(), "next", far, far.Add(time.Minute), 1)
	if err != nil || len(next) != 1 || next[0].Kind != outbox.KindBatch {
		t.Fatalf("next claim = %+v, %v; want the dead worker's batch first", next, err)
	}
	if err := e.store.Store.Save(t.Context(), "next", next[0], false); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-done
}

// #20: when the wait for the provider budget is cut short (shutdown),
// the worker sends nothing and gives the claim back unchanged: no
// attempt, same NotBefore.
func TestBudgetWaitCutSendsNothing(t *testing.T) {
	m := &batchMailer{max: 10}
	ctx, cancel := context.WithCancel(t.Context())
	e := newEnv(t, func(c *reset.Config, o *outbox.Options) { c.Mailer = m; o.Rate = 1 })
	e.store.onReserve = cancel // the worker waits for its slot: shut down
	if err := e.svc.Request(t.Context(), userEmail, ""); err != nil {
		t.Fatal(err)
	}
	// Another instance took the budget for the next hour.
	if _, err := e.store.Store.Reserve(t.Context(), "mail", time.Now(), time.Hour, 1); err != nil {
		t.Fatal(err)
	}
	before := e.clock.Now()
	if n, err := e.ob.Drain(ctx); err != nil || n != 0 {
		t.Fatalf("Drain = %d, %v; want 0 carried out", n, err)
	}
	if calls, _ := m.snapshot(); len(calls) != 0 {
		t.Fatalf("sent %+v while the budget was not there", calls)
	}
	envs, err := e.store.Store.Claim(t.Context(), "check", e.clock.Now(), e.clock.Now().Add(time.Minute), 10)
	if err != nil || len(envs) != 1 || envs[0].Attempts != 0 || !envs[0].NotBefore.Equal(before) || envs[0].Dead {
		t.Fatalf("after the cut wait: %+v, %v; want the envelope due as before, no attempt", envs, err)
	}
	// A Store whose budget fails: nothing is sent either, and nothing
	// falls back to a budget of this process alone.
	if err := e.store.Store.Save(t.Context(), "check", envs[0], false); err != nil {
		t.Fatal(err)
	}
	e.store.onReserve = nil
	e.store.failReserve.Store(true)
	if n := e.drain(t); n != 0 {
		t.Fatalf("Drain with the budget down = %d, want 0", n)
	}
	if calls, _ := m.snapshot(); len(calls) != 0 {
		t.Fatalf("sent %+v without the shared budget", calls)
	}
}

// A batch envelope that reaches a worker whose Mailer is not a
// BatchMailer is moved aside with a reason that says so, never sent under
// other keys; revived, a worker with a BatchMailer sends it whole, under
// its key.
func TestBatchReachesAWorkerWithoutBatches(t *testing.T) {
	m := &batchMailer{max: 10}
	lost := true
	m.hang = func(int, context.Context) error {
		if lost {
			return fmt.Errorf("%w: no answer", reset.ErrOutcomeUnknown)
		}
		return nil
	}
	e := newBatchEnv(t, m, 3)
	e.drain(t)
	e.clock.Advance(time.Hour)
	plain := newEnv(t, func(c *reset.Config, o *outbox.Options) {
		c.Store, c.Users, c.Now = e.store, e.users, e.clock.Now
		o.WorkerID = "plain"
	})
	plain.drain(t)
	if n := plain.mailer.attemptCount(); n != 0 {
		t.Fatalf("the worker without batches sent %d emails", n)
	}
	dead, _ := e.ob.Dead(t.Context(), 10)
	if len(dead) != 1 || dead[0].Kind != outbox.KindBatch || !strings.Contains(dead[0].LastError, "not a BatchMailer") {
		t.Fatalf("dead %+v, want the batch, with the reason", dead)
	}
	lost = false
	if err := e.ob.Revive(t.Context(), dead[0].ID); err != nil {
		t.Fatal(err)
	}
	e.drain(t)
	calls, _ := m.snapshot()
	wantSameBatch(t, calls, 2)
	wantOnce(t, m, 3)
}
