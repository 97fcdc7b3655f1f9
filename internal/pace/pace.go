// Package pace holds the provider pacing that both of passreset's queues
// use: the generic cell rate algorithm (GCRA) and an additive-increase,
// multiplicative-decrease (AIMD) factor that lowers the rate after a
// provider's rate-limit answer and recovers it slowly.
package pace

import (
	"sync"
	"time"
)

// Margin is the share of a provider's advertised rate the queues use by
// default: a little below the limit, so that a provider that counts a
// sliding window (or counts refused calls too) never sees one call too many
// because an earlier one was a few milliseconds late.
const Margin = 0.9

// GCRA is one reservation of the generic cell rate algorithm: given the
// budget's theoretical arrival time tat, it returns the new tat and when
// the call may start (now or later).
func GCRA(tat, now time.Time, interval time.Duration, burst int) (newTat, at time.Time) {
	t := tat
	if now.After(t) {
		t = now
	}
	at = t.Add(-time.Duration(max(burst, 1)-1) * interval)
	if now.After(at) {
		at = now
	}
	return t.Add(interval), at
}

// maxLate is how many slots in a row a caller may find itself too late
// for (see [Late]) before it goes anyway: on a machine so loaded that
// every wake-up is late, giving up slots would only slow the drain.
const maxLate = 3

// Late reports whether a call due at at that would start at now is too
// late for its slot: later than the margin below the provider's rate
// leaves, one interval's worth (interval × (1 − Margin)). A late call
// and the punctual ones after it come closer together than the provider
// allows, so that a provider counting a sliding window sees one call too
// many; such a call takes a new slot instead. tries counts the slots
// already given up this way; after maxLate of them Late reports false.
func Late(at, now time.Time, interval time.Duration, tries int) bool {
	return tries < maxLate && now.Sub(at) > time.Duration(float64(interval)*(1-Margin))
}

// Interval returns the spacing of calls at perSecond calls a second, or 0
// for no limit (perSecond not positive, or too large to matter).
func Interval(perSecond float64) time.Duration {
	if !(perSecond > 0) || perSecond > 1e9 {
		return 0
	}
	return time.Duration(float64(time.Second) / perSecond)
}

// AIMD bounds:
const (
	minFactor = 0.125 // the factor never goes below 1/8 of the rate
	decrease  = 0.5   // a rate-limit answer halves it
	increase  = 0.02  // each quiet call adds this much back
)

// Factor is the AIMD multiplier of a rate: 1 until a rate-limit answer,
// halved by each (down to 1/8), and raised a little by every call that
// was not refused, back to 1. The zero value is ready to use (factor 1).
// It is safe for concurrent use.
type Factor struct {
	mu sync.Mutex
	f  float64 // 1 - f is stored, so that the zero value means 1
}

// Get returns the current factor, in (0, 1].
func (a *Factor) Get() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return 1 - a.f
}

// Limited records a rate-limit answer.
func (a *Factor) Limited() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.f = 1 - max((1-a.f)*decrease, minFactor)
}

// Quiet records a call the provider did not refuse for its rate.
func (a *Factor) Quiet() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.f = max(a.f-increase, 0)
}

// Local is a budget kept in this process: GCRA with burst 1.
// The zero value is ready to use. It is safe for concurrent use.
type Local struct {
	mu  sync.Mutex
	tat time.Time
}

// Reserve takes one call at now with the given interval and returns when
// it may start.
func (l *Local) Reserve(now time.Time, interval time.Duration) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var at time.Time
	l.tat, at = GCRA(l.tat, now, interval, 1)
	return at
}

// Pause makes no reservation start before until.
func (l *Local) Pause(until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until.After(l.tat) {
		l.tat = until
	}
}
