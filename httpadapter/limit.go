package httpadapter

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ClientIP is the default [Options.ClientKey]: the IP address of the
// connection's peer (r.RemoteAddr), with IPv6 addresses reduced to their
// /64 network, since one IPv6 client commonly owns a whole /64.
//
// Behind a reverse proxy every request comes from the proxy: set
// Options.ClientKey to [TrustedProxies].
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	return addrKey(ip)
}

// addrKey is the rate-limit key of an address: IPv4 as is, IPv6 as its /64.
func addrKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.WithZone("").Prefix(64)
		return p.String()
	}
	return ip.String()
}

// Limiter decides whether one more request from a client may be served,
// as [Options.Limiter]. The handler calls it with the request's context
// and the key [Options.ClientKey] returns (prefixed with "trusted\x00"
// for trusted callers when [Options.LimitTrusted] is set). It must be safe
// for concurrent use.
type Limiter interface {
	// Allow counts one request under key and reports whether it may be
	// served. When it may not, retryAfter says how long until it may
	// (sent as Retry-After; 0 sends none). An error means the limiter
	// could not decide, for example because a shared counter is down:
	// the handler logs it and serves the request, since the limit is a
	// courtesy against floods and the core's per-address cooldown still
	// bounds the mail an address receives.
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
}

// LimiterFunc adapts a function to a [Limiter].
type LimiterFunc func(ctx context.Context, key string) (bool, time.Duration, error)

// Allow calls f.
func (f LimiterFunc) Allow(ctx context.Context, key string) (bool, time.Duration, error) {
	return f(ctx, key)
}

// memLimiter is the built-in [Limiter]: a [rate.Limiter] per client key,
// with bounded memory. Limiters that have refilled completely are
// equivalent to absent ones and are swept away; when maxKeys is reached
// anyway, arbitrary ones are evicted (which can only make it more
// lenient).
type memLimiter struct {
	limit   rate.Limit
	burst   int
	maxKeys int
	now     func() time.Time

	mu      sync.Mutex
	clients map[string]*rate.Limiter
	sweepAt time.Time // next periodic sweep
	fullAt  time.Time // last sweep forced by a full map
}

var _ Limiter = (*memLimiter)(nil)

func newMemLimiter(perMinute, burst, maxKeys int, now func() time.Time) *memLimiter {
	return &memLimiter{
		limit:   rate.Limit(float64(perMinute) / 60),
		burst:   burst,
		maxKeys: maxKeys,
		now:     now,
		clients: make(map[string]*rate.Limiter),
	}
}

// Allow takes one token from key's limiter. When there is none, it
// reports how long until there will be one.
func (l *memLimiter) Allow(_ context.Context, key string) (bool, time.Duration, error) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !now.Before(l.sweepAt) {
		l.sweep(now)
		l.sweepAt = now.Add(time.Minute)
	}
	lim, ok := l.clients[key]
	if !ok {
		if len(l.clients) >= l.maxKeys {
			l.makeRoom(now)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.clients[key] = lim
	}
	res := lim.ReserveN(now, 1)
	if wait := res.DelayFrom(now); wait > 0 {
		res.CancelAt(now) // a refused request does not count
		return false, wait, nil
	}
	return true, 0, nil
}

// sweep forgets the clients whose limiter is full again.
func (l *memLimiter) sweep(now time.Time) {
	for k, lim := range l.clients {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.clients, k)
		}
	}
}

// makeRoom frees at least one slot: by a sweep at most once a second,
// else by evicting an arbitrary client, so that a flood of new keys costs
// O(1) per request.
func (l *memLimiter) makeRoom(now time.Time) {
	if now.Sub(l.fullAt) >= time.Second {
		l.fullAt = now
		l.sweep(now)
	}
	for k := range l.clients {
		if len(l.clients) < l.maxKeys {
			break
		}
		delete(l.clients, k)
	}
}

// size returns the number of tracked clients, for tests.
func (l *memLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}
