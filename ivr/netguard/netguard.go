// Package netguard keeps koel's outbound HTTP off koel's own network: the
// one address policy behind every request koel makes to a URL someone else
// chose (KooKoo recording downloads, webhook and platform deliveries, the
// business APIs of API steps).
//
// A [Policy] resolves the host itself, refuses every address it does not
// allow (loopback, private, link-local, CGNAT, multicast, unspecified,
// documentation and transition ranges, IPv4-mapped forms included), and
// dials an allowed one by IP with the same check on the exact address just
// before connecting, so what is checked is what is connected to (no DNS
// rebinding). Give the transport no proxy, or the proxy would connect on
// the dialer's behalf.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// ErrRefused means an address is one the policy does not connect to.
var ErrRefused = errors.New("netguard: address refused")

// Resolver resolves host names; *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Policy says which addresses outbound requests may connect to. The zero
// value allows only public unicast addresses.
type Policy struct {
	// AllowLoopback allows 127.0.0.0/8 and ::1 (development).
	AllowLoopback bool
	// AllowPrivate allows RFC 1918, CGNAT and IPv6 unique-local addresses
	// (an integrator on the operator's own network).
	AllowPrivate bool
	// AllowAddrs allows exactly these addresses and ports whatever their
	// class (koel's own loopback listener, for the demo's fake order API).
	AllowAddrs []netip.AddrPort
	// Resolver resolves host names (nil: net.DefaultResolver).
	Resolver Resolver
	// Dial connects to an address already checked (nil: a net.Dialer that
	// checks the exact address again just before connecting). Tests use it
	// to prove that refused addresses are never dialled.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// DialTimeout bounds one connection attempt of the default dialer
	// (0: 5 s).
	DialTimeout time.Duration
}

// Dialer returns a DialContext for an http.Transport that enforces p.
func (p Policy) Dialer() func(ctx context.Context, network, address string) (net.Conn, error) {
	dial := p.Dial
	if dial == nil {
		timeout := p.DialTimeout
		if timeout <= 0 {
			timeout = 5 * time.Second
		}
		d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: p.control}
		dial = d.DialContext
	}
	resolver := p.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRefused, err)
		}
		pn, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%w: port %q", ErrRefused, port)
		}
		var ips []netip.Addr
		if ip, err := netip.ParseAddr(host); err == nil {
			ips = []netip.Addr{ip}
		} else if ips, err = resolver.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, fmt.Errorf("netguard: resolve %q: %w", host, err)
		}
		var lastErr error
		for _, ip := range ips {
			ap := netip.AddrPortFrom(ip.Unmap(), uint16(pn))
			if reason := p.Refused(ap); reason != "" {
				lastErr = fmt.Errorf("%w: %s is a %s address", ErrRefused, host, reason)
				continue
			}
			c, err := dial(ctx, network, ap.String())
			if err == nil {
				return c, nil
			}
			lastErr = err
		}
		if lastErr == nil {
			lastErr = fmt.Errorf("netguard: resolve %q: no addresses", host)
		}
		return nil, lastErr
	}
}

// control is the default dialer's last check, on the exact address being
// connected to.
func (p Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if reason := p.Refused(ap); reason != "" {
		return fmt.Errorf("%w: %s address %s", ErrRefused, reason, ap.Addr())
	}
	return nil
}

// Refused returns why ap may not be connected to, or "" when it may: an
// address of AllowAddrs always may.
func (p Policy) Refused(ap netip.AddrPort) string {
	if ap.Addr().Zone() == "" {
		exact := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		for _, a := range p.AllowAddrs {
			if netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) == exact {
				return ""
			}
		}
	}
	return p.refusedAddr(ap.Addr())
}

func (p Policy) refusedAddr(ip netip.Addr) string {
	if !ip.IsValid() {
		return "invalid"
	}
	if ip.Zone() != "" {
		return "scoped"
	}
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		if p.AllowLoopback {
			return ""
		}
		return "loopback"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsPrivate():
		if p.AllowPrivate {
			return ""
		}
		return "private"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast"
	case ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "broadcast"
	}
	for _, r := range refusedPrefixes {
		if r.p.Contains(ip) {
			if r.private && p.AllowPrivate {
				return ""
			}
			return r.reason
		}
	}
	return ""
}

// refusedPrefixes are the ranges refused besides those netip classifies.
var refusedPrefixes = []struct {
	p       netip.Prefix
	reason  string
	private bool // allowed with AllowPrivate
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network", false},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT", true},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol", false},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation", false},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking", false},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation", false},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation", false},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved", false},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible", false},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64", false},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "NAT64", false},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation", false},
	{netip.MustParsePrefix("2002::/16"), "6to4", false},
	{netip.MustParsePrefix("2001::/32"), "Teredo", false},
	{netip.MustParsePrefix("fec0::/10"), "site-local", false},
}
