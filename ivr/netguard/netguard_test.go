package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
)

func TestRefusedRanges(t *testing.T) {
	self := netip.MustParseAddrPort("127.0.0.1:8080")
	for _, tc := range []struct {
		name    string
		policy  Policy
		refused []string
		allowed []string
	}{
		{"zero policy: public unicast only", Policy{},
			[]string{"10.0.0.1:80", "172.16.0.1:80", "172.31.255.255:80", "192.168.0.1:80", "127.0.0.1:80", "127.255.255.254:80",
				"169.254.169.254:80", "100.64.0.1:80", "100.127.255.255:80", "0.0.0.0:80", "0.1.2.3:80", "224.0.0.251:80",
				"239.1.1.1:80", "255.255.255.255:80", "240.0.0.1:80", "192.0.2.1:80", "198.18.0.1:80", "[::]:80", "[::1]:80",
				"[fe80::1]:80", "[fc00::1]:80", "[fd12:3456::1]:80", "[ff02::1]:80", "[::ffff:10.0.0.1]:80",
				"[::ffff:127.0.0.1]:80", "[::ffff:169.254.1.1]:80", "[::10.0.0.1]:80", "[64:ff9b::7f00:1]:80",
				"[64:ff9b:1::1]:80", "[2002:a00:1::1]:80", "[2001:db8::1]:80", "[fec0::1]:80"},
			[]string{"8.8.8.8:443", "100.63.255.255:80", "100.128.0.0:80", "172.32.0.1:80", "[2606:4700::1111]:443", "[::ffff:8.8.8.8]:443"}},
		{"loopback allowed", Policy{AllowLoopback: true},
			[]string{"10.0.0.1:80", "169.254.169.254:80", "0.0.0.0:80"},
			[]string{"127.0.0.1:80", "[::1]:80", "[::ffff:127.0.0.1]:80", "8.8.8.8:443"}},
		{"private allowed", Policy{AllowPrivate: true},
			[]string{"127.0.0.1:80", "169.254.169.254:80", "[fe80::1]:80", "192.0.2.1:80"},
			[]string{"10.0.0.1:80", "192.168.1.1:80", "100.64.0.1:80", "[fd00::1]:80"}},
		{"one exact address allowed", Policy{AllowAddrs: []netip.AddrPort{self}},
			[]string{"127.0.0.1:8081", "127.0.0.2:8080", "10.0.0.1:8080"},
			[]string{"127.0.0.1:8080", "[::ffff:127.0.0.1]:8080"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range tc.refused {
				if tc.policy.Refused(netip.MustParseAddrPort(s)) == "" {
					t.Errorf("%s not refused", s)
				}
			}
			for _, s := range tc.allowed {
				if r := tc.policy.Refused(netip.MustParseAddrPort(s)); r != "" {
					t.Errorf("%s refused as %s", s, r)
				}
			}
		})
	}
}

func TestControlRefusesAtConnect(t *testing.T) {
	var p Policy
	for _, addr := range []string{"10.0.0.5:80", "[::ffff:10.0.0.5]:80", "127.0.0.1:80", "[fe80::1]:80", "[::1]:443", "garbage"} {
		if err := p.control("tcp", addr, nil); !errors.Is(err, ErrRefused) {
			t.Errorf("control(%q) = %v, want ErrRefused", addr, err)
		}
	}
	if err := p.control("tcp", "93.184.215.14:80", nil); err != nil {
		t.Errorf("control(public) = %v", err)
	}
}

type mapResolver map[string][]netip.Addr

func (m mapResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := m[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestDialerChecksEveryResolvedAddress: a name is resolved by the policy
// itself; refused addresses are skipped and never dialled, the first
// allowed one is dialled by IP, and a name with only refused addresses
// fails with ErrRefused.
func TestDialerChecksEveryResolvedAddress(t *testing.T) {
	res := mapResolver{
		"rebind.test": {netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("93.184.215.14")},
		"inside.test": {netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("::ffff:192.168.0.1")},
	}
	var dialled []string
	var calls atomic.Int64
	p := Policy{Resolver: res, Dial: func(_ context.Context, _, address string) (net.Conn, error) {
		calls.Add(1)
		dialled = append(dialled, address)
		return nil, errors.New("test dialer: not connecting")
	}}
	dial := p.Dialer()
	for _, tc := range []struct {
		address, wantDialled string
		refused              bool
	}{
		{"rebind.test:443", "93.184.215.14:443", false},
		{"inside.test:80", "", true},
		{"10.1.2.3:80", "", true},
		{"[::ffff:127.0.0.1]:80", "", true},
		{"93.184.215.14:8443", "93.184.215.14:8443", false},
		{"rebind.test:http", "", true},
		{"no-port", "", true},
	} {
		dialled = nil
		_, err := dial(context.Background(), "tcp", tc.address)
		if got := errors.Is(err, ErrRefused); got != tc.refused {
			t.Errorf("%s: err %v, refused %v, want %v", tc.address, err, got, tc.refused)
		}
		want := []string{}
		if tc.wantDialled != "" {
			want = []string{tc.wantDialled}
		}
		if len(dialled) != len(want) || (len(want) == 1 && dialled[0] != want[0]) {
			t.Errorf("%s: dialled %v, want %v", tc.address, dialled, want)
		}
	}
	if _, err := dial(context.Background(), "tcp", "unknown.test:80"); err == nil || errors.Is(err, ErrRefused) {
		t.Errorf("unknown host: %v, want a resolve error", err)
	}
}
