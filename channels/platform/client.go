package platform

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/koelvoice/koel/ivr/netguard"
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

// NewClient returns the HTTP client senders use: the host is resolved and
// every address checked by koel's one address policy ([netguard.Policy]),
// again at dial time (so DNS answers cannot smuggle an internal address),
// no proxy, no redirects, pooled keep-alive connections.
func NewClient(opts ClientOptions) *http.Client {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	dial := netguard.Policy{AllowLoopback: opts.AllowLoopback, DialTimeout: timeout}.Dialer()
	return &http.Client{
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
				c, err := dial(ctx, network, address)
				if errors.Is(err, netguard.ErrRefused) {
					return nil, fmt.Errorf("%w: %w", ErrAddressRefused, err)
				}
				return c, err
			},
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
