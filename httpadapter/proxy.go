package httpadapter

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
)

// TrustedProxies returns an [Options.ClientKey] for a handler behind
// reverse proxies: it keys the rate limit on the client address that the
// proxies report in header, which must be "Forwarded" (RFC 7239, its
// for= parameters) or "X-Forwarded-For", and which the proxies must set
// or append to. Name the one header your proxies write: a header they
// pass through untouched is written by the client.
//
// The header is read only when the connection's peer (r.RemoteAddr) is
// one of the trusted proxies, each an address ("10.0.0.7", "::1") or a
// network in CIDR notation ("10.0.0.0/8", "fd00::/8"). Its addresses are
// then read from the right, skipping trusted proxies, and the first one
// that is not trusted is the client: whatever lies to its left was sent
// by the client and is ignored. A request from any other peer is keyed
// on the peer, as [ClientIP] does, whatever its headers say. Keys of IPv6
// clients are their /64, as with ClientIP.
//
// It reports an unknown header name or a malformed address.
func TrustedProxies(header string, trusted ...string) (func(*http.Request) string, error) {
	header = http.CanonicalHeaderKey(header)
	if header != "Forwarded" && header != "X-Forwarded-For" {
		return nil, fmt.Errorf("httpadapter: TrustedProxies reads the Forwarded or the X-Forwarded-For header, not %q", header)
	}
	if len(trusted) == 0 {
		return nil, errors.New("httpadapter: TrustedProxies needs the addresses or networks of the proxies")
	}
	nets := make([]netip.Prefix, 0, len(trusted))
	for _, s := range trusted {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("httpadapter: TrustedProxies: %q is neither an IP address nor a CIDR network", s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		nets = append(nets, p.Masked())
	}
	isTrusted := func(a netip.Addr) bool {
		a = a.Unmap().WithZone("")
		for _, p := range nets {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) string {
		peer, ok := peerAddr(r)
		if !ok || !isTrusted(peer) {
			return ClientIP(r)
		}
		client := peer
		hops := forwardedFor(r.Header, header)
		for i := len(hops) - 1; i >= 0; i-- {
			a, ok := parseNode(hops[i])
			if !ok {
				break // not an address: the last trusted hop is as far as we know
			}
			client = a
			if !isTrusted(a) {
				break
			}
		}
		return addrKey(client)
	}, nil
}

// peerAddr returns the IP address of the connection's peer.
func peerAddr(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	return a, err == nil
}

// forwardedFor returns the hops a Forwarded or X-Forwarded-For header
// lists, from the first (client side) to the last, over all of its lines.
// For Forwarded, a hop is the value of its for= parameter ("" if none).
func forwardedFor(h http.Header, name string) []string {
	var hops []string
	for _, line := range h.Values(name) {
		for elem := range strings.SplitSeq(line, ",") {
			if name == "X-Forwarded-For" {
				hops = append(hops, elem)
				continue
			}
			node := ""
			for pair := range strings.SplitSeq(elem, ";") {
				k, v, _ := strings.Cut(pair, "=")
				if strings.EqualFold(strings.TrimSpace(k), "for") {
					node = v
				}
			}
			hops = append(hops, node)
		}
	}
	return hops
}

// parseNode reads one hop's address: "192.0.2.1", "192.0.2.1:80",
// "[2001:db8::1]:80", "2001:db8::1", possibly quoted.
func parseNode(s string) (netip.Addr, bool) {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	if a, err := netip.ParseAddr(s); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a, true
	}
	return netip.Addr{}, false
}

// proxyWatch notices when requests look proxied while the rate limit keys
// on the peer: one peer sending many distinct forwarded addresses. It
// warns once, then stops watching. Its memory is bounded: it follows at
// most watchPeers peers.
type proxyWatch struct {
	mu     sync.Mutex
	done   bool
	byPeer map[string]map[string]struct{}
}

const (
	watchPeers     = 64 // peers followed at once
	watchThreshold = 8  // distinct forwarded addresses that make a peer look like a proxy
)

// seen records r and reports, once, the peer that looks like a proxy.
func (p *proxyWatch) seen(r *http.Request) (peer string, warn bool) {
	fwd := r.Header.Get("X-Forwarded-For")
	if fwd == "" {
		fwd = r.Header.Get("Forwarded")
	}
	if fwd == "" {
		return "", false
	}
	peer = ClientIP(r)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return "", false
	}
	if p.byPeer == nil {
		p.byPeer = make(map[string]map[string]struct{})
	}
	set, ok := p.byPeer[peer]
	if !ok {
		if len(p.byPeer) >= watchPeers {
			return "", false
		}
		set = make(map[string]struct{})
		p.byPeer[peer] = set
	}
	set[fwd[:min(len(fwd), 64)]] = struct{}{}
	if len(set) < watchThreshold {
		return "", false
	}
	p.done, p.byPeer = true, nil
	return peer, true
}
