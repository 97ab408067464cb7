package outbox_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/koelvoice/koel/channels/webhook"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
)

// mapResolver resolves names from a table.
type mapResolver map[string][]netip.Addr

func (m mapResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := m[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestDialPolicyRefusesKoelsOwnNetwork(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	exact := netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "http://"))
	otherPort := strconv.Itoa(int(exact.Port()) + 1)
	if exact.Port() == 65535 {
		otherPort = "1"
	}
	res := mapResolver{
		"hooks.example.com": {netip.MustParseAddr("127.0.0.1")},
		"rebind.example":    {netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("127.0.0.1")},
		"meta.example":      {netip.MustParseAddr("169.254.169.254")},
	}
	tests := []struct {
		name   string
		url    string
		policy outbox.DialPolicy
		ok     bool
	}{
		{"loopback refused", srv.URL, outbox.DialPolicy{}, false},
		{"loopback allowed in development", srv.URL, outbox.DialPolicy{AllowLoopback: true}, true},
		{"a name resolving to loopback", "http://hooks.example.com:" + port, outbox.DialPolicy{Resolver: res}, false},
		{"the same name in development", "http://hooks.example.com:" + port, outbox.DialPolicy{Resolver: res, AllowLoopback: true}, true},
		{"private then loopback", "http://rebind.example:" + port, outbox.DialPolicy{Resolver: res}, false},
		{"cloud metadata", "http://meta.example:" + port, outbox.DialPolicy{Resolver: res, AllowPrivate: true, AllowLoopback: false}, false},
		{"IPv4-mapped loopback", "http://[::ffff:127.0.0.1]:" + port, outbox.DialPolicy{}, false},
		{"private literal", "http://10.0.0.7:" + port, outbox.DialPolicy{}, false},
		{"the exact allowed loopback address", srv.URL, outbox.DialPolicy{AllowAddrs: []netip.AddrPort{exact}}, true},
		{"a name resolving to the allowed address", "http://hooks.example.com:" + port,
			outbox.DialPolicy{Resolver: res, AllowAddrs: []netip.AddrPort{exact}}, true},
		{"the allowed address on another port", "http://127.0.0.1:" + otherPort, outbox.DialPolicy{AllowAddrs: []netip.AddrPort{exact}}, false},
		{"another loopback address on the allowed port", "http://127.0.0.2:" + port, outbox.DialPolicy{AllowAddrs: []netip.AddrPort{exact}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := hits
			s := webhook.NewSender(webhook.NewGuardedClient(tt.policy), nil)
			err := s.Send(context.Background(), ivr.Connection{}, ivr.OutboxItem{IdempotencyKey: "k", URL: tt.url})
			if tt.ok {
				if err != nil || hits != before+1 {
					t.Fatalf("Send = %v, %d hits; want delivered", err, hits-before)
				}
				return
			}
			if err == nil || hits != before {
				t.Fatalf("Send = %v with %d hits; want refused before connecting", err, hits-before)
			}
			if !errors.Is(err, outbox.ErrDestinationRefused) {
				t.Fatalf("error %v, want ErrDestinationRefused", err)
			}
			if outbox.Class(err) != outbox.ClassConfig {
				t.Errorf("class %q, want config", outbox.Class(err))
			}
		})
	}
}
