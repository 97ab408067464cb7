package outbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/koelvoice/koel/ivr/netguard"
)

// ErrDestinationRefused means a delivery's host resolved to an address
// koel does not send to (loopback, private, link-local, ...): a webhook URL
// must not reach koel's own network.
var ErrDestinationRefused = errors.New("outbox: destination address refused")

// DialPolicy says which addresses deliveries may connect to. The zero
// value allows only public unicast addresses. It is [netguard.Policy],
// the address policy every outbound request of koel's shares, with the
// outbox's error: a refusal is ErrDestinationRefused of class config.
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
	Resolver netguard.Resolver
}

// Dialer returns a DialContext for an http.Transport that resolves the
// host itself, refuses every address the policy does not allow, and dials
// an allowed one by IP with the same check on the exact address just
// before connecting, so what is checked is what is connected to (no DNS
// rebinding). Give the transport no proxy, or the proxy would connect on
// the dialer's behalf.
func (p DialPolicy) Dialer() func(ctx context.Context, network, address string) (net.Conn, error) {
	dial := netguard.Policy{AllowLoopback: p.AllowLoopback, AllowPrivate: p.AllowPrivate, AllowAddrs: p.AllowAddrs,
		Resolver: p.Resolver}.Dialer()
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := dial(ctx, network, address)
		if errors.Is(err, netguard.ErrRefused) {
			return nil, WithClass(ClassConfig, fmt.Errorf("%w: %w", ErrDestinationRefused, err))
		}
		return c, err
	}
}
