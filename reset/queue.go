package reset

import (
	"context"
	"sync"
)

// job is one unit of background work: a rendered message to send, or a
// public request to carry out.
type job struct {
	msg    Message
	public bool
	email  string
	link   string
}

// queue is the bounded in-process delivery queue. A trusted caller
// reserves a slot before it changes anything, so that a full queue refuses
// work without side effects, then puts the job or cancels the reservation.
// Notices have a channel of their own, so that a flood of requests cannot
// crowd them out.
type queue struct {
	mu      sync.Mutex
	closed  bool
	used    int            // reserved or queued, not yet taken by a worker
	puts    sync.WaitGroup // reservations not yet put or cancelled
	once    sync.Once
	jobs    chan job
	notices chan job
	stop    context.CancelFunc
	done    chan struct{}
}

func newQueue(size, workers int, run func(context.Context, job)) *queue {
	ctx, cancel := context.WithCancel(context.Background())
	q := &queue{jobs: make(chan job, size), notices: make(chan job, size), stop: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			jobs, notices := q.jobs, q.notices
			for jobs != nil || notices != nil {
				var j job
				var ok bool
				select { // notices first
				case j, ok = <-notices:
					if !ok {
						notices = nil
						continue
					}
				default:
					select {
					case j, ok = <-notices:
						if !ok {
							notices = nil
							continue
						}
					case j, ok = <-jobs:
						if !ok {
							jobs = nil
							continue
						}
						q.mu.Lock()
						q.used--
						q.mu.Unlock()
					}
				}
				run(ctx, j)
			}
		})
	}
	go func() { wg.Wait(); close(q.done) }()
	return q
}

// reserve takes a slot, or fails with ErrQueueFull or ErrClosed.
func (q *queue) reserve() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.closed:
		return ErrClosed
	case q.used >= cap(q.jobs):
		return ErrQueueFull
	}
	q.used++
	q.puts.Add(1)
	return nil
}

// put queues j in a reserved slot; it never blocks.
func (q *queue) put(j job) {
	q.jobs <- j
	q.puts.Done()
}

// tryPut queues j if there is room, and reports whether it did.
func (q *queue) tryPut(j job) bool {
	if q.reserve() != nil {
		return false
	}
	q.put(j)
	return true
}

// putNotice queues a notice on the notices' own channel if it has room
// and the queue is open, and reports whether it did.
func (q *queue) putNotice(j job) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	select {
	case q.notices <- j:
		return true
	default:
		return false
	}
}

// cancel gives back a reserved slot that will not be used.
func (q *queue) cancel() {
	q.mu.Lock()
	q.used--
	q.mu.Unlock()
	q.puts.Done()
}

// shutdown refuses new work, lets the workers drain the queue and waits
// for them, or for ctx. When ctx ends first, work in flight is cancelled
// and what is still queued is dropped.
func (q *queue) shutdown(ctx context.Context) error {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.once.Do(func() {
		go func() {
			q.puts.Wait()
			close(q.jobs)
			q.mu.Lock() // no putNotice is between its check and its send
			close(q.notices)
			q.mu.Unlock()
		}()
	})
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
		q.stop()
		return ctx.Err()
	}
}
