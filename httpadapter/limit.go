package httpadapter

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// ClientIP is the default [Options.ClientKey]: the IP address of the
// connection's peer (r.RemoteAddr), with IPv6 addresses reduced to their
// /64 network, since one IPv6 client commonly owns a whole /64.
//
// Behind a reverse proxy every request comes from the proxy: set
// Options.ClientKey to a function that reads the client address the
// proxy reports (and that only it can set).
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.WithZone("").Prefix(64)
		return p.String()
	}
	return ip.String()
}

// limiter is a token bucket per client key, with bounded memory: buckets
// that have refilled completely are equivalent to absent ones and are
// swept away, and when maxKeys is reached anyway, arbitrary buckets are
// evicted (which can only make the limiter more lenient).
type limiter struct {
	mu      sync.Mutex
	perSec  float64 // refill rate
	burst   float64 // bucket size
	maxKeys int
	now     func() time.Time
	buckets map[string]*bucket
	sweepAt time.Time // next periodic sweep
	fullAt  time.Time // last sweep forced by a full map
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(perMinute, burst, maxKeys int, now func() time.Time) *limiter {
	return &limiter{
		perSec:  float64(perMinute) / 60,
		burst:   float64(burst),
		maxKeys: maxKeys,
		now:     now,
		buckets: make(map[string]*bucket),
	}
}

// allow takes one token from key's bucket. When there is none, it reports
// how long until there will be one.
func (l *limiter) allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !now.Before(l.sweepAt) {
		l.sweep(now)
		l.sweepAt = now.Add(time.Minute)
	}
	b, ok := l.buckets[key]
	if ok {
		l.refill(b, now)
	} else {
		if len(l.buckets) >= l.maxKeys {
			l.makeRoom(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.perSec * float64(time.Second))
}

func (l *limiter) refill(b *bucket, now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(l.burst, b.tokens+d.Seconds()*l.perSec)
		b.last = now
	}
}

// sweep removes the buckets that are full again.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// makeRoom frees at least one slot: by a sweep at most once a second,
// else by evicting an arbitrary bucket, so that a flood of new keys costs
// O(1) per request.
func (l *limiter) makeRoom(now time.Time) {
	if now.Sub(l.fullAt) >= time.Second {
		l.fullAt = now
		l.sweep(now)
	}
	for k := range l.buckets {
		if len(l.buckets) < l.maxKeys {
			break
		}
		delete(l.buckets, k)
	}
}

// size returns the number of tracked keys, for tests.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
