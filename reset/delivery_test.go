package reset_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/store/memstore"
)

// fixedLeases is a Store whose outbox cannot renew leases (nor keep a
// budget): only the Store, OutboxStore and Cooldowner methods show.
type fixedLeases struct {
	reset.Store
	reset.OutboxStore
	reset.Cooldowner
}

func withoutRenewal(s reset.Store) reset.Store {
	return fixedLeases{s, s.(reset.OutboxStore), s.(reset.Cooldowner)}
}

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

var _ reset.BatchMailer = (*batchMailer)(nil)

func (m *batchMailer) MaxBatch() int { return m.max }

func (m *batchMailer) Send(ctx context.Context, msg reset.Message) error {
	return errors.New("batchMailer: Send called")
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
		defer m.mu.Unlock()
		if !slices.Equal(prev, ids) {
			return nil, fmt.Errorf("%w: 409 invalid_idempotent_request", reset.ErrPermanent)
		}
		return m.answers[key], nil
	}
	m.mu.Unlock()
	per, err, sent := []error(nil), error(nil), true
	if m.script != nil {
		per, err, sent = m.script(call, ctx, key, msgs)
	}
	if per == nil && err == nil {
		per = make([]error, len(msgs))
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
	return slices.Clone(m.calls), maps(m.counts)
}

func maps(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// newBatchEnv is an outbox whose Mailer sends batches, with n accounts
// requested.
func newBatchEnv(t *testing.T, m *batchMailer, n int, edit ...func(*reset.Config)) *outboxEnv {
	t.Helper()
	e := newOutboxEnv(t, append([]func(*reset.Config){func(c *reset.Config) { c.Mailer = m }}, edit...)...)
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

func TestOutboxBatches(t *testing.T) {
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
	if r, _ := e.svc.OutboxReport(t.Context()); r.Pending != 0 || r.Sent != 10 {
		t.Fatalf("report %+v", r)
	}
}

// A partial failure retries only the failed message, in a new batch
// under a new key; a permanent per-message error moves only that message
// aside.
func TestOutboxBatchPartialFailure(t *testing.T) {
	m := &batchMailer{max: 10}
	m.script = func(call int, _ context.Context, _ string, msgs []reset.Message) ([]error, error, bool) {
		if call > 1 {
			return nil, nil, true
		}
		per := make([]error, len(msgs))
		per[1] = errors.New("450 try later")
		per[2] = fmt.Errorf("%w: 422 invalid address", reset.ErrPermanent)
		return per, nil, true
	}
	e := newBatchEnv(t, m, 4)
	e.drain(t)
	e.clock.Advance(time.Hour)
	e.drain(t)
	calls, counts := m.snapshot()
	if len(calls) != 2 || len(calls[1].ids) != 1 || calls[1].ids[0] != calls[0].ids[1] || calls[1].key == calls[0].key {
		t.Fatalf("calls %+v, want the second message alone under a new key", calls)
	}
	if len(counts) != 3 || counts[calls[0].ids[2]] != 0 {
		t.Fatalf("delivered %v, want all but the third", counts)
	}
	dead, _ := e.svc.DeadMessages(t.Context(), 10)
	if len(dead) != 1 || !strings.Contains(dead[0].LastError, "422") {
		t.Fatalf("dead %+v, want the third message", dead)
	}
}

// A call whose answer never came is retried as the same batch (same key,
// same messages, same order) and counts no attempt: even with MaxAttempts
// 1 nothing is moved aside, and the provider sends each message once.
func TestOutboxBatchNoAnswer(t *testing.T) {
	m := &batchMailer{max: 10}
	m.hang = func(call int, ctx context.Context) error {
		if call == 1 {
			<-ctx.Done() // the provider sends, but answers after the timeout
			return ctx.Err()
		}
		return nil
	}
	e := newBatchEnv(t, m, 5, func(c *reset.Config) {
		c.SendTimeout, c.Outbox.MaxAttempts = 10*time.Millisecond, 1
	})
	e.drain(t)
	if r, _ := e.svc.OutboxReport(t.Context()); r.Pending != 5 || r.Dead != 0 {
		t.Fatalf("after the timeout: %+v, want 5 pending", r)
	}
	e.clock.Advance(time.Hour)
	e.drain(t)
	calls, _ := m.snapshot()
	if len(calls) != 2 || calls[1].key != calls[0].key || !slices.Equal(calls[1].ids, calls[0].ids) {
		t.Fatalf("calls %+v, want the same batch twice", calls)
	}
	wantOnce(t, m, 5)
	if r, _ := e.svc.OutboxReport(t.Context()); r.Pending != 0 || r.Dead != 0 {
		t.Fatalf("report %+v", r)
	}
}

// A worker that dies while its batch is at the provider: the next worker
// (another Service on the same store) rebuilds the same batch from the
// store and sends it under the same key.
func TestOutboxBatchRebuiltAfterCrash(t *testing.T) {
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
	e := newBatchEnv(t, m, 6, func(c *reset.Config) {
		c.Store = withoutRenewal(c.Store) // a dead worker renews nothing
		c.SendTimeout, c.Outbox.Lease, c.Outbox.WorkerID = time.Hour, 2*time.Hour, "dies"
	})
	done := make(chan struct{})
	go func() { defer close(done); e.svc.DrainOutbox(context.Background()) }()
	<-entered
	e.clock.Advance(2 * time.Hour) // the dead worker's lease ends
	other := newOutboxEnv(t, func(c *reset.Config) {
		c.Store, c.Mailer, c.Now, c.Outbox.WorkerID = e.store, m, e.clock.Now, "lives"
	})
	if n := other.drain(t); n != 6 {
		t.Fatalf("the next worker handled %d envelopes, want 6", n)
	}
	close(release)
	<-done
	calls, _ := m.snapshot()
	if len(calls) != 2 || calls[1].key != calls[0].key || !slices.Equal(calls[1].ids, calls[0].ids) {
		t.Fatalf("calls %+v, want the same batch twice", calls)
	}
	wantOnce(t, m, 6)
	if r, _ := other.svc.OutboxReport(t.Context()); r.Pending != 0 || r.Dead != 0 {
		t.Fatalf("report %+v", r)
	}
}

// Part of a batch, claimed alone, is given back unchanged until the whole
// batch can be claimed together.
func TestOutboxBatchRegrouped(t *testing.T) {
	m := &batchMailer{max: 10}
	m.script = func(call int, _ context.Context, _ string, _ []reset.Message) ([]error, error, bool) {
		if call == 1 {
			return nil, errors.New("502 bad gateway"), false
		}
		return nil, nil, true
	}
	e := newBatchEnv(t, m, 4, func(c *reset.Config) { c.Outbox.Batch = 4 })
	e.drain(t)
	e.clock.Advance(time.Hour)
	// A worker with a smaller claim finds part of the batch.
	small := newOutboxEnv(t, func(c *reset.Config) {
		c.Store, c.Mailer, c.Now, c.Outbox.WorkerID, c.Outbox.Batch = e.store, m, e.clock.Now, "small", 3
	})
	if n, err := small.svc.DrainOutbox(t.Context()); err != nil || n != 0 {
		t.Fatalf("DrainOutbox = %d, %v; want 0 (part of a batch given back)", n, err)
	}
	if calls, _ := m.snapshot(); len(calls) != 1 {
		t.Fatalf("calls %+v: part of the batch was sent", calls)
	}
	e.drain(t)
	calls, _ := m.snapshot()
	if len(calls) != 2 || calls[1].key != calls[0].key || !slices.Equal(calls[1].ids, calls[0].ids) {
		t.Fatalf("calls %+v, want the same batch twice", calls)
	}
	wantOnce(t, m, 4)
}

// A rate-limit answer pauses the budget for every worker sharing the
// store and counts no attempt.
func TestOutboxRateLimitPauses(t *testing.T) {
	m := &batchMailer{max: 10}
	m.script = func(call int, _ context.Context, _ string, _ []reset.Message) ([]error, error, bool) {
		if call == 1 {
			return nil, &reset.RateLimitError{RetryAfter: time.Hour, Err: errors.New("429")}, false
		}
		return nil, nil, true
	}
	e := newBatchEnv(t, m, 2, func(c *reset.Config) { c.Outbox.MaxAttempts = 1 })
	e.drain(t)
	at, err := e.store.Store.Reserve(t.Context(), reset.DefaultOutboxBudgetKey, time.Now(), time.Millisecond, 1)
	if err != nil || time.Until(at) < 59*time.Minute {
		t.Fatalf("Reserve after a 429 = %v, %v; want about an hour from now", at, err)
	}
	if r, _ := e.svc.OutboxReport(t.Context()); r.Pending != 2 || r.Dead != 0 {
		t.Fatalf("report %+v", r)
	}
	if n := e.drain(t); n != 0 {
		t.Fatalf("claimed %d before the Retry-After ended", n)
	}
	e.clock.Advance(time.Hour)
	e.drain(t)
	wantOnce(t, m, 2)
}

// A worker whose lease was taken while its send was in flight has the
// send cancelled by its heartbeat, and saves nothing.
func TestOutboxLeaseLostCancelsSend(t *testing.T) {
	entered := make(chan struct{})
	var cause error
	m := &batchMailer{max: 10}
	m.hang = func(call int, ctx context.Context) error {
		if call == 1 {
			close(entered)
			<-ctx.Done()
			cause = context.Cause(ctx)
			return ctx.Err()
		}
		return nil
	}
	e := newBatchEnv(t, m, 1, func(c *reset.Config) {
		c.SendTimeout, c.Outbox.Lease = time.Hour, time.Second
	})
	done := make(chan struct{})
	go func() { defer close(done); e.drain(t) }()
	<-entered
	// Another worker takes the envelope (as if the lease had run out).
	far := e.clock.Now().Add(24 * time.Hour)
	got, err := e.store.Claim(t.Context(), "thief", far, far.Add(time.Hour), 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("Claim = %d, %v", len(got), err)
	}
	<-done
	if !errors.Is(cause, reset.ErrLeaseLost) {
		t.Fatalf("send cancelled with %v, want ErrLeaseLost", cause)
	}
	if err := e.store.Delete(t.Context(), "thief", got[0].ID); err != nil {
		t.Fatalf("the new holder lost its lease: %v", err)
	}
}

// The budget spaces calls by 1/Rate after a burst, shared by every
// Service on one store, and a Store without a Budgeter is paced locally.
func TestBudgetArithmetic(t *testing.T) {
	s := memstore.New()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var got []time.Duration
	for range 4 {
		at, err := s.Reserve(t.Context(), "k", now, time.Second, 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, at.Sub(now))
	}
	if want := []time.Duration{0, 0, time.Second, 2 * time.Second}; !slices.Equal(got, want) {
		t.Fatalf("reservations at %v, want %v", got, want)
	}
}
