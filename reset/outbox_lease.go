package reset

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// leases tracks the envelopes one claim holds. When the Store is a
// LeaseRenewer, a heartbeat renews them every Lease/3; it cancels the send
// in flight when one of its envelopes was taken by another worker, or when
// renewals failed until the lease is about to end, so that a worker never
// sends a message whose lease it may have lost.
type leases struct {
	s      *Service
	worker string

	mu      sync.Mutex
	held    map[string]bool
	lost    map[string]bool
	until   time.Time // the lease's end as last set (Config.Now's clock)
	sending []string  // the envelopes of the send in flight
	cancel  context.CancelCauseFunc

	stop chan struct{}
	done chan struct{}
}

// errLeaseEnding is the cause of a send cancelled because the lease could
// not be renewed and was about to run out.
var errLeaseEnding = errors.New("reset: outbox lease could not be renewed in time")

// holdLeases starts tracking envs, leased until until. Call close when
// done with them.
func (s *Service) holdLeases(worker string, envs []Envelope, until time.Time) *leases {
	l := &leases{s: s, worker: worker, held: map[string]bool{}, lost: map[string]bool{}, until: until,
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, e := range envs {
		l.held[e.ID] = true
	}
	if s.durable.renewer == nil {
		close(l.done)
		return l
	}
	go l.heartbeat()
	return l
}

func (l *leases) heartbeat() {
	defer close(l.done)
	d := l.s.durable
	every := d.opt.Lease / 3
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
		until := l.s.now().Add(d.opt.Lease)
		ctx, cancel := context.WithTimeout(context.Background(), every)
		lost, err := d.renewer.Renew(ctx, l.worker, ids, until)
		cancel()
		l.mu.Lock()
		if err != nil {
			l.s.log.Warn("outbox: renewing leases", "worker", l.worker, "err", err)
			// Another beat may still succeed, unless the lease ends first.
			if !l.s.now().Add(every).Before(l.until) && l.cancel != nil {
				l.cancel(errLeaseEnding)
			}
		} else {
			l.until = until
			for _, id := range lost {
				delete(l.held, id)
				l.lost[id] = true
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

// release stops renewing id (it was saved without hold, or deleted).
func (l *leases) release(id string) {
	l.mu.Lock()
	delete(l.held, id)
	l.mu.Unlock()
}

// lostAny reports whether the lease of any of ids was found taken.
func (l *leases) lostAny(ids ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		if l.lost[id] {
			return true
		}
	}
	return false
}

// mayStart reports whether a send may start now: without renewals, only
// if the lease outlasts SendTimeout.
func (l *leases) mayStart() bool {
	if l.s.durable.renewer != nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.s.now().Add(l.s.cfg.SendTimeout).After(l.until)
}

// sendContext returns the context of one Mailer call about ids: bounded by
// SendTimeout, and cancelled by the heartbeat if one of ids is lost or
// the lease cannot be renewed. Call the returned function when the call
// returns.
func (l *leases) sendContext(ctx context.Context, ids []string) (context.Context, func()) {
	cctx, cancelCause := context.WithCancelCause(ctx)
	tctx, cancel := context.WithTimeout(cctx, l.s.cfg.SendTimeout)
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
