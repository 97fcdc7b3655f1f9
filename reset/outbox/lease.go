package outbox

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// leases tracks the envelopes one claim holds. A heartbeat renews them
// every Lease/3; it cancels the send in flight when one of its envelopes
// was taken by another worker, or when renewals failed until the lease
// was about to end, so that a worker never sends mail whose lease it may
// have lost.
type leases struct {
	o      *Outbox
	worker string

	mu      sync.Mutex
	held    map[string]bool
	gone    map[string]bool // taken by another worker
	until   time.Time       // the lease's end as last set (the Service's clock)
	sending []string        // the envelopes of the send in flight
	cancel  context.CancelCauseFunc

	stop chan struct{}
	done chan struct{}
}

// errLeaseEnding is the cause of a send cancelled because the lease could
// not be renewed and was about to run out.
var errLeaseEnding = errors.New("outbox: lease could not be renewed in time")

// holdLeases starts renewing envs' leases. Call close when done.
func (o *Outbox) holdLeases(worker string, envs []Envelope) *leases {
	l := &leases{o: o, worker: worker, held: map[string]bool{}, gone: map[string]bool{},
		until: o.now().Add(o.opt.Lease), stop: make(chan struct{}), done: make(chan struct{})}
	for _, e := range envs {
		l.held[e.ID] = true
	}
	go l.heartbeat()
	return l
}

func (l *leases) heartbeat() {
	defer close(l.done)
	o := l.o
	every := o.opt.Lease / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		ids := make([]string, 0, len(l.held))
		for id := range l.held {
			ids = append(ids, id)
		}
		l.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		slices.Sort(ids)
		until := o.now().Add(o.opt.Lease)
		ctx, cancel := context.WithTimeout(context.Background(), every)
		lost, err := o.store.Renew(ctx, l.worker, ids, until)
		cancel()
		l.mu.Lock()
		if err != nil {
			o.errLog.Log(context.Background(), o.d.Logger, slog.LevelWarn, "outbox: renewing leases", err, "worker", l.worker)
			// Another beat may still succeed, unless the lease ends first.
			if !o.now().Add(every).Before(l.until) && l.cancel != nil {
				l.cancel(errLeaseEnding)
			}
		} else {
			l.until = until
			for _, id := range lost {
				delete(l.held, id)
				l.gone[id] = true
				if l.cancel != nil && slices.Contains(l.sending, id) {
					l.cancel(ErrLeaseLost)
				}
			}
		}
		l.mu.Unlock()
	}
}

// close stops the heartbeat and waits for it.
func (l *leases) close() {
	close(l.stop)
	<-l.done
}

// release stops renewing id (it was saved without hold, or removed).
func (l *leases) release(id string) {
	l.mu.Lock()
	delete(l.held, id)
	l.mu.Unlock()
}

// swap stops renewing olds and renews add instead (a batch was formed).
func (l *leases) swap(olds []string, add string) {
	l.mu.Lock()
	for _, id := range olds {
		delete(l.held, id)
	}
	l.held[add] = true
	l.mu.Unlock()
}

// lost reports whether id's lease was found taken by another worker.
func (l *leases) lost(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gone[id]
}

// sendContext returns the context of one Mailer call about ids: bounded
// by sendTimeout, and cancelled by the heartbeat if one of ids is lost or
// the lease cannot be renewed. Call the returned function when the call
// returns.
func (l *leases) sendContext(ctx context.Context, ids []string) (context.Context, func()) {
	cctx, cancelCause := context.WithCancelCause(ctx)
	tctx, cancel := context.WithTimeout(cctx, sendTimeout)
	l.mu.Lock()
	l.sending, l.cancel = ids, cancelCause
	l.mu.Unlock()
	return tctx, func() {
		l.mu.Lock()
		l.sending, l.cancel = nil, nil
		l.mu.Unlock()
		cancel()
		cancelCause(nil)
	}
}
