package outbox

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

// ErrDestinationRefused means a delivery's host resolved to an address
// koel does not send to (loopback, private, link-local, ...): a webhook URL
// must not reach koel's own network.
var ErrDestinationRefused = errors.New("outbox: destination address refused")

// DialPolicy says which addresses deliveries may connect to. The zero
// value allows only public unicast addresses.
type DialPolicy struct {
	// AllowLoopback allows 127.0.0.0/8 and ::1 (development).
	AllowLoopback bool
	// AllowPrivate allows RFC 1918, CGNAT and IPv6 unique-local addresses
	// (an integrator on the operator's own network).
	AllowPrivate bool
	// AllowAddrs allows exactly these addresses and ports whatever their
	// class (koel's own loopback listener, for the demo's fake order API).
	AllowAddrs []netip.AddrPort
	// Resolver resolves host names (nil: net.DefaultResolver).
	Resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}
}

// Dialer returns a DialContext for an http.Transport that resolves the
// host itself, refuses every address the policy does not allow, and dials
// an allowed one by IP with the same check on the exact address just
// before connecting, so what is checked is what is connected to (no DNS
// rebinding). Give the transport no proxy, or the proxy would connect on
// the dialer's behalf.
func (p DialPolicy) Dialer() func(ctx context.Context, network, address string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrDestinationRefused, err)
		}
		if reason := p.refusedAt(ap); reason != "" {
			return fmt.Errorf("%w: %s address %s", ErrDestinationRefused, reason, ap.Addr())
		}
		return nil
	}}
	resolver := p.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrDestinationRefused, err)
		}
		pn, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%w: port %q", ErrDestinationRefused, port)
		}
		var ips []netip.Addr
		if ip, err := netip.ParseAddr(host); err == nil {
			ips = []netip.Addr{ip}
		} else if ips, err = resolver.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, fmt.Errorf("outbox: resolve %q: %w", host, err)
		}
		var lastErr error
		for _, ip := range ips {
			if reason := p.refusedAt(netip.AddrPortFrom(ip.Unmap(), uint16(pn))); reason != "" {
				lastErr = WithClass(ClassConfig, fmt.Errorf("%w: %s is a %s address", ErrDestinationRefused, host, reason))
				continue
			}
			c, err := d.DialContext(ctx, network, netip.AddrPortFrom(ip.Unmap(), uint16(pn)).String())
			if err == nil {
				return c, nil
			}
			lastErr = err
		}
		if lastErr == nil {
			lastErr = fmt.Errorf("outbox: resolve %q: no addresses", host)
		}
		return nil, lastErr
	}
}

// Address ranges refused besides those netip classifies.
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
	{netip.MustParsePrefix("2001:db8::/32"), "documentation", false},
	{netip.MustParsePrefix("2002::/16"), "6to4", false},
	{netip.MustParsePrefix("2001::/32"), "Teredo", false},
	{netip.MustParsePrefix("fec0::/10"), "site-local", false},
}

// refusedAt returns why ap may not be connected to, or "" when it may:
// an address of AllowAddrs always may.
func (p DialPolicy) refusedAt(ap netip.AddrPort) string {
	if ap.Addr().Zone() == "" {
		exact := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		for _, a := range p.AllowAddrs {
			if netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) == exact {
				return ""
			}
		}
	}
	return p.refused(ap.Addr())
}

// refused returns why ip may not be connected to, or "" when it may.
func (p DialPolicy) refused(ip netip.Addr) string {
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
