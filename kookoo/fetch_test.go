package kookoo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// mapResolver resolves names from a map; unknown names fail.
type mapResolver map[string][]netip.Addr

func (m mapResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if ips, ok := m[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// loopbackOnlyDial dials like net.Dialer but fails the test if it is ever
// asked for a non-loopback address: no test may send a packet off the host.
func loopbackOnlyDial(t *testing.T, dialled *atomic.Int32) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		dialled.Add(1)
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !ap.Addr().Unmap().IsLoopback() {
			t.Errorf("dial reached with non-loopback address %q", address)
			return nil, errors.New("test: refused to dial a non-loopback address")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
}

// testServerHostPort returns the port of an httptest server.
func serverPort(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

func newTestFetcher(t *testing.T, cfg FetcherConfig) (*Fetcher, *atomic.Int32) {
	t.Helper()
	var dialled atomic.Int32
	if cfg.Dial == nil {
		cfg.Dial = loopbackOnlyDial(t, &dialled)
	}
	f, err := NewFetcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f, &dialled
}

func TestFetcherFetches(t *testing.T) {
	body := bytes.Repeat([]byte("RIFF"), 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/rec.wav":
			w.Header().Set("Content-Type", "audio/wav")
			_, _ = w.Write(body)
		case "/redirect":
			http.Redirect(w, r, "/rec.wav", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	port := serverPort(t, srv)

	tests := []struct {
		name string
		cfg  FetcherConfig
		url  string
	}{
		{"loopback literal in dev mode", FetcherConfig{AllowLoopback: true}, srv.URL + "/rec.wav"},
		{"localhost in dev mode", FetcherConfig{AllowLoopback: true, Resolver: mapResolver{"localhost": {netip.MustParseAddr("127.0.0.1")}}},
			"http://localhost:" + port + "/rec.wav"},
		{"allowed name resolving to loopback in dev mode", FetcherConfig{
			AllowedHosts: []string{"*.kookoo.test"}, AllowLoopback: true,
			Resolver: mapResolver{"recordings.kookoo.test": {netip.MustParseAddr("127.0.0.1")}},
		}, "http://recordings.kookoo.test:" + port + "/rec.wav"},
		{"redirect to an allowed host", FetcherConfig{AllowLoopback: true}, srv.URL + "/redirect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := newTestFetcher(t, tt.cfg)
			rec, err := f.Fetch(context.Background(), tt.url)
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if !bytes.Equal(rec.Data, body) || rec.ContentType != "audio/wav" || rec.Attempts != 1 {
				t.Errorf("got %d bytes, type %q, %d attempts", len(rec.Data), rec.ContentType, rec.Attempts)
			}
		})
	}
}

func TestFetcherRefuses(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/to-private":
			http.Redirect(w, r, "http://10.0.0.5/x.wav", http.StatusFound)
		case "/to-other":
			http.Redirect(w, r, "http://evil.test/x.wav", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		}
	}))
	defer srv.Close()
	port := serverPort(t, srv)
	resolver := mapResolver{
		"rec.kookoo.test":     {netip.MustParseAddr("10.0.0.5")},
		"meta.kookoo.test":    {netip.MustParseAddr("169.254.169.254")},
		"mapped.kookoo.test":  {netip.MustParseAddr("::ffff:192.168.1.1")},
		"cgnat.kookoo.test":   {netip.MustParseAddr("100.64.1.1")},
		"ula.kookoo.test":     {netip.MustParseAddr("fd00::1")},
		"lo.kookoo.test":      {netip.MustParseAddr("127.0.0.1")},
		"zero.kookoo.test":    {netip.MustParseAddr("0.0.0.0")},
		"mixed.kookoo.test":   {netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("fe80::1")},
		"mcast.kookoo.test":   {netip.MustParseAddr("224.0.0.1")},
		"nat64.kookoo.test":   {netip.MustParseAddr("64:ff9b::a00:5")},
		"unknown.kookoo.test": nil,
	}
	allowed := []string{"*.kookoo.test"}
	tests := []struct {
		name     string
		loopback bool
		url      string
		want     error
	}{
		{"private address after DNS", false, "http://rec.kookoo.test/1.wav", ErrAddressRefused},
		{"metadata link-local address", false, "http://meta.kookoo.test/1.wav", ErrAddressRefused},
		{"IPv4-mapped private address", false, "http://mapped.kookoo.test/1.wav", ErrAddressRefused},
		{"CGNAT address", false, "http://cgnat.kookoo.test/1.wav", ErrAddressRefused},
		{"IPv6 unique-local address", false, "http://ula.kookoo.test/1.wav", ErrAddressRefused},
		{"loopback without dev mode", false, "http://lo.kookoo.test:" + port + "/1.wav", ErrAddressRefused},
		{"unspecified address", false, "http://zero.kookoo.test/1.wav", ErrAddressRefused},
		{"every address refused", false, "http://mixed.kookoo.test/1.wav", ErrAddressRefused},
		{"multicast", false, "http://mcast.kookoo.test/1.wav", ErrAddressRefused},
		{"NAT64 of a private address", false, "http://nat64.kookoo.test/1.wav", ErrAddressRefused},
		{"loopback literal without dev mode", false, srv.URL + "/1.wav", ErrURLNotAllowed},
		{"host not allowed", false, "http://example.com/1.wav", ErrURLNotAllowed},
		{"suffix trick", false, "http://evilkookoo.test/1.wav", ErrURLNotAllowed},
		{"private literal", true, "http://10.0.0.5/1.wav", ErrURLNotAllowed},
		{"file scheme", true, "file:///etc/passwd", ErrURLNotAllowed},
		{"ftp scheme", true, "ftp://rec.kookoo.test/1.wav", ErrURLNotAllowed},
		{"credentials", true, "http://u:p@rec.kookoo.test/1.wav", ErrURLNotAllowed},
		{"not a url", true, "%zz", ErrURLNotAllowed},
		{"empty", true, "", ErrURLNotAllowed},
		{"relative", true, "/rec.wav", ErrURLNotAllowed},
		{"bad port", true, "http://rec.kookoo.test:99999/1.wav", ErrURLNotAllowed},
		{"too long", true, "http://rec.kookoo.test/" + strings.Repeat("a", 3000), ErrURLNotAllowed},
		{"redirect to a private address", true, srv.URL + "/to-private", ErrURLNotAllowed},
		{"redirect to another host", true, srv.URL + "/to-other", ErrURLNotAllowed},
		{"redirect loop", true, srv.URL + "/loop", ErrURLNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, dialled := newTestFetcher(t, FetcherConfig{AllowedHosts: allowed, AllowLoopback: tt.loopback, Resolver: resolver})
			before := dialled.Load()
			_, err := f.Fetch(context.Background(), tt.url)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Fetch(%q) error = %v, want %v", tt.url, err, tt.want)
			}
			if errors.Is(err, ErrAddressRefused) && dialled.Load() != before {
				t.Errorf("a refused address was dialled")
			}
		})
	}
}

func TestFetcherRefusedRanges(t *testing.T) {
	f, err := NewFetcher(FetcherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	refused := []string{"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.0.1", "127.0.0.1", "127.255.255.254",
		"169.254.169.254", "100.64.0.1", "100.127.255.255", "0.0.0.0", "0.1.2.3", "224.0.0.251", "239.1.1.1",
		"255.255.255.255", "240.0.0.1", "::", "::1", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
		"::ffff:10.0.0.1", "::ffff:127.0.0.1", "::ffff:169.254.1.1", "::10.0.0.1", "64:ff9b::7f00:1", "2002:a00:1::1"}
	for _, s := range refused {
		if f.policy.Refused(netip.AddrPortFrom(netip.MustParseAddr(s), 443)) == "" {
			t.Errorf("%s not refused", s)
		}
	}
	allowed := []string{"8.8.8.8", "100.63.255.255", "100.128.0.0", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"}
	for _, s := range allowed {
		if r := f.policy.Refused(netip.AddrPortFrom(netip.MustParseAddr(s), 443)); r != "" {
			t.Errorf("%s refused as %s", s, r)
		}
	}
}

func TestFetcherCapsSize(t *testing.T) {
	big := bytes.Repeat([]byte{1}, 2048)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			// No Content-Length: the cap must hold while reading.
			w.(http.Flusher).Flush()
		}
		_, _ = w.Write(big)
	}))
	defer srv.Close()
	for _, path := range []string{"/length", "/chunked"} {
		t.Run(path, func(t *testing.T) {
			f, _ := newTestFetcher(t, FetcherConfig{AllowLoopback: true, MaxBytes: 1024})
			rec, err := f.Fetch(context.Background(), srv.URL+path)
			if !errors.Is(err, ErrRecordingTooLarge) {
				t.Fatalf("err = %v, want ErrRecordingTooLarge", err)
			}
			if rec.Attempts != 1 {
				t.Errorf("attempts = %d, want 1 (no retry on a size error)", rec.Attempts)
			}
		})
	}
	t.Run("exactly the cap", func(t *testing.T) {
		f, _ := newTestFetcher(t, FetcherConfig{AllowLoopback: true, MaxBytes: int64(len(big))})
		rec, err := f.Fetch(context.Background(), srv.URL+"/length")
		if err != nil || len(rec.Data) != len(big) {
			t.Fatalf("got %d bytes, err %v", len(rec.Data), err)
		}
	})
}

func TestFetcherRetriesOnce(t *testing.T) {
	tests := []struct {
		name         string
		statuses     []int // per attempt
		wantErr      error
		wantAttempts int
		wantHits     int32
	}{
		{"5xx then ok", []int{503, 200}, nil, 2, 2},
		{"5xx twice", []int{500, 502}, ErrFetchStatus, 2, 2},
		{"429 then ok", []int{429, 200}, nil, 2, 2},
		{"404 is final", []int{404, 200}, ErrFetchStatus, 1, 1},
		{"403 is final", []int{403, 200}, ErrFetchStatus, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := hits.Add(1)
				w.WriteHeader(tt.statuses[n-1])
				_, _ = w.Write([]byte("data"))
			}))
			defer srv.Close()
			f, _ := newTestFetcher(t, FetcherConfig{AllowLoopback: true})
			rec, err := f.Fetch(context.Background(), srv.URL+"/r.wav")
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if rec.Attempts != tt.wantAttempts || hits.Load() != tt.wantHits {
				t.Errorf("attempts %d hits %d, want %d and %d", rec.Attempts, hits.Load(), tt.wantAttempts, tt.wantHits)
			}
		})
	}
}

func TestFetcherTimeout(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	f, _ := newTestFetcher(t, FetcherConfig{AllowLoopback: true, Timeout: 50 * time.Millisecond})
	rec, err := f.Fetch(context.Background(), srv.URL+"/slow.wav")
	if err == nil || !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if rec.Attempts != 2 {
		t.Errorf("attempts = %d, want 2 (one retry)", rec.Attempts)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestFetcherCancelledContextIsNotRetried(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel()
		<-r.Context().Done()
	}))
	defer srv.Close()
	f, _ := newTestFetcher(t, FetcherConfig{AllowLoopback: true})
	rec, err := f.Fetch(ctx, srv.URL+"/x.wav")
	if !errors.Is(err, context.Canceled) || rec.Attempts != 1 {
		t.Fatalf("err = %v attempts = %d, want context.Canceled after 1 attempt", err, rec.Attempts)
	}
}

func TestNewFetcherRejectsBadPatterns(t *testing.T) {
	for _, h := range []string{"", "*.", "a*b.com", "http://x.com", "x.com:80", "*"} {
		if _, err := NewFetcher(FetcherConfig{AllowedHosts: []string{h}}); err == nil {
			t.Errorf("pattern %q accepted", h)
		}
	}
}

func FuzzFetcherCheckURL(f *testing.F) {
	for _, s := range []string{
		"http://recordings.kookoo.in/user/sid-1.wav", "https://in1-cpaas.ozonetel.com/r.mp3",
		"http://127.0.0.1:8080/r.wav", "http://[::1]/r.wav", "http://localhost/x", "file:///etc/passwd",
		"http://recordings.kookoo.in.evil.com/x", "http://evil.com#@recordings.kookoo.in/", "//recordings.kookoo.in/x",
		"http://recordings.kookoo.in:0/x", "HTTP://RECORDINGS.KOOKOO.IN/X", "-1", "",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	fetchers := map[bool]*Fetcher{}
	for _, lo := range []bool{false, true} {
		fe, err := NewFetcher(FetcherConfig{AllowLoopback: lo})
		if err != nil {
			f.Fatal(err)
		}
		fetchers[lo] = fe
	}
	f.Fuzz(func(t *testing.T, raw string, loopback bool) {
		fe := fetchers[loopback]
		u, err := fe.CheckURL(raw)
		if err != nil {
			if !errors.Is(err, ErrURLNotAllowed) {
				t.Fatalf("CheckURL(%q) error %v is not ErrURLNotAllowed", raw, err)
			}
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("CheckURL(%q) accepted scheme %q", raw, u.Scheme)
		}
		host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
		ok := host == "recordings.kookoo.in" || host == "kookoo.in" ||
			strings.HasSuffix(host, ".kookoo.in") || strings.HasSuffix(host, ".ozonetel.com")
		if loopback {
			if ip, err := netip.ParseAddr(host); (err == nil && ip.Unmap().IsLoopback()) || host == "localhost" {
				ok = true
			}
		}
		if !ok {
			t.Fatalf("CheckURL(%q) accepted host %q", raw, fmt.Sprint(host))
		}
	})
}
