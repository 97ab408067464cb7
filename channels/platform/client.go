package platform

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrAddressRefused is returned when a send would connect to an address
// koel refuses (private, loopback, link-local, …): a connection's base URL
// must not reach koel's own network.
var ErrAddressRefused = errors.New("platform: address refused")

// ClientOptions configure [NewClient].
type ClientOptions struct {
	// AllowLoopback allows loopback addresses (development and tests, where
	// the fake platforms listen on 127.0.0.1).
	AllowLoopback bool
	// Timeout bounds connecting and the TLS handshake (0: 5 s).
	Timeout time.Duration
}

// NewClient returns the HTTP client senders use: every address is checked at
// dial time (so DNS answers cannot smuggle an internal address), no proxy, no
// redirects, pooled keep-alive connections.
func NewClient(opts ClientOptions) *http.Client {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrAddressRefused, err)
		}
		if reason := refused(ap.Addr(), opts.AllowLoopback); reason != "" {
			return fmt.Errorf("%w: %s address %s", ErrAddressRefused, reason, ap.Addr())
		}
		return nil
	}}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           d.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: 10 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

var refusedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("2002::/16"),
	netip.MustParsePrefix("fec0::/10"),
}

func refused(ip netip.Addr, allowLoopback bool) string {
	if !ip.IsValid() {
		return "invalid"
	}
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		if allowLoopback {
			return ""
		}
		return "loopback"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsPrivate():
		return "private"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "link-local"
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast"
	}
	for _, p := range refusedPrefixes {
		if p.Contains(ip) {
			return "reserved"
		}
	}
	return ""
}
