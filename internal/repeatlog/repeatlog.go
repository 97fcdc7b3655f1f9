// Package repeatlog keeps an outage from flooding the log: an error that
// repeats (the same message, level and error text) is written once per
// interval, with the count of the lines it stood for.
package repeatlog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultInterval is how often a repeated error is written when
// [Limiter.Interval] is zero.
const DefaultInterval = time.Minute

// maxKeys bounds the errors a Limiter remembers; past it, those not seen
// for an interval are forgotten.
const maxKeys = 256

// Limiter writes a repeated error once per Interval. Its zero value is
// ready to use; it is safe for concurrent use.
type Limiter struct {
	// Interval is the shortest time between two lines of one repeated
	// error. Default [DefaultInterval].
	Interval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time

	mu   sync.Mutex
	seen map[key]*entry
}

type key struct {
	level slog.Level
	msg   string
	err   string
}

type entry struct {
	last       time.Time // when a line was last written
	suppressed int       // lines not written since
}

// Log writes msg at level to logger with args and "err", err, unless the
// same level, msg and error text was written less than Interval ago; it
// then only counts it. The next line written for it carries "repeated",
// the count of lines it stands for besides itself. A nil err is written
// every time.
func (l *Limiter) Log(ctx context.Context, logger *slog.Logger, level slog.Level, msg string, err error, args ...any) {
	if !logger.Enabled(ctx, level) {
		return
	}
	if err == nil {
		logger.Log(ctx, level, msg, args...)
		return
	}
	k := key{level, msg, err.Error()}
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	iv := l.Interval
	if iv <= 0 {
		iv = DefaultInterval
	}
	t := now()
	l.mu.Lock()
	if l.seen == nil {
		l.seen = make(map[key]*entry)
	}
	e := l.seen[k]
	if e != nil && t.Sub(e.last) < iv {
		e.suppressed++
		l.mu.Unlock()
		return
	}
	if e == nil {
		if len(l.seen) >= maxKeys {
			for k2, e2 := range l.seen {
				if t.Sub(e2.last) >= iv {
					delete(l.seen, k2)
				}
			}
		}
		e = &entry{}
		if len(l.seen) < maxKeys { // else written every time, remembered by none
			l.seen[k] = e
		}
	}
	repeated := e.suppressed
	e.suppressed, e.last = 0, t
	l.mu.Unlock()
	args = append(args, "err", err)
	if repeated > 0 {
		args = append(args, "repeated", repeated)
	}
	logger.Log(ctx, level, msg, args...)
}
