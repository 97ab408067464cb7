package kookoo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/koelvoice/koel/ivr/netguard"
)

// Errors of [Fetcher.Fetch]. They are wrapped with details; test with
// errors.Is.
var (
	// ErrURLNotAllowed means the URL is malformed, not http(s), or its host
	// is not on the allow-list (also for a redirect target).
	ErrURLNotAllowed = errors.New("kookoo: recording url not allowed")
	// ErrAddressRefused means the host resolved to an address koel refuses
	// to connect to (private, loopback, link-local, multicast, ...).
	ErrAddressRefused = errors.New("kookoo: recording address refused")
	// ErrRecordingTooLarge means the recording exceeds the size cap.
	ErrRecordingTooLarge = errors.New("kookoo: recording too large")
	// ErrFetchStatus means the recording server answered with a non-2xx
	// status.
	ErrFetchStatus = errors.New("kookoo: recording server error")
)

// DefaultRecordingHosts are the hosts KooKoo serves recordings from. A
// leading "*." matches any subdomain.
var DefaultRecordingHosts = []string{"recordings.kookoo.in", "kookoo.in", "*.kookoo.in", "*.ozonetel.com"}

// Fetcher defaults.
const (
	DefaultFetchMaxBytes = 8 << 20 // 8 MiB: 10 minutes of 8 kHz 16-bit WAV
	DefaultFetchTimeout  = 5 * time.Second
	maxRedirects         = 3
	maxURLBytes          = 2048
)

// Resolver resolves host names; *net.Resolver implements it.
type Resolver = netguard.Resolver

// FetcherConfig configures a [Fetcher].
type FetcherConfig struct {
	// AllowedHosts lists the hosts recordings may come from; "*.example.com"
	// matches subdomains of example.com. Nil means [DefaultRecordingHosts].
	AllowedHosts []string
	// AllowLoopback also allows "localhost" and loopback addresses
	// (development only: KOEL_DEV=1 or --dev).
	AllowLoopback bool
	// MaxBytes caps a recording (0 = DefaultFetchMaxBytes).
	MaxBytes int64
	// Timeout bounds one attempt (0 = DefaultFetchTimeout). A failed
	// attempt is retried once when the failure may be transient.
	Timeout time.Duration
	// Resolver resolves host names (nil = net.DefaultResolver). Tests map
	// names to addresses with it.
	Resolver Resolver
	// Dial connects to an already checked ip:port (nil = a net.Dialer that
	// checks the address again just before connecting). Tests use it to
	// prove refused addresses are never dialled.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Logger receives a line per retried attempt (nil = discard).
	Logger *slog.Logger
}

// Recording is a fetched recording.
type Recording struct {
	Data        []byte
	ContentType string
	// Attempts is 1, or 2 when the first attempt failed and was retried.
	Attempts int
}

// Fetcher downloads call recordings without letting a request reach
// koel's own network: only http(s) URLs on allowed hosts, every resolved
// address checked before connecting (private, loopback, link-local, CGNAT,
// multicast, unspecified and IPv6 unique-local addresses refused, IPv4-mapped
// forms included), redirects checked the same way, no proxy, a size cap and
// a timeout per attempt.
//
// A Fetcher is safe for concurrent use.
type Fetcher struct {
	allowed       []string
	allowLoopback bool
	maxBytes      int64
	timeout       time.Duration
	resolver      Resolver
	policy        netguard.Policy
	guard         func(ctx context.Context, network, address string) (net.Conn, error)
	client        *http.Client
	log           *slog.Logger
}

// NewFetcher returns a fetcher. It fails on an invalid allowed-host pattern.
func NewFetcher(cfg FetcherConfig) (*Fetcher, error) {
	f := &Fetcher{
		allowLoopback: cfg.AllowLoopback,
		maxBytes:      cfg.MaxBytes,
		timeout:       cfg.Timeout,
		resolver:      cfg.Resolver,
		log:           cfg.Logger,
	}
	hosts := cfg.AllowedHosts
	if hosts == nil {
		hosts = DefaultRecordingHosts
	}
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		base := strings.TrimPrefix(h, "*.")
		if base == "" || strings.ContainsAny(base, "*/:@ ") {
			return nil, fmt.Errorf("kookoo: invalid allowed recording host %q", h)
		}
		f.allowed = append(f.allowed, h)
	}
	if f.maxBytes <= 0 {
		f.maxBytes = DefaultFetchMaxBytes
	}
	if f.timeout <= 0 {
		f.timeout = DefaultFetchTimeout
	}
	if f.resolver == nil {
		f.resolver = net.DefaultResolver
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.policy = netguard.Policy{AllowLoopback: f.allowLoopback, Resolver: f.resolver, Dial: cfg.Dial, DialTimeout: f.timeout}
	f.guard = f.policy.Dialer()
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would connect on our behalf, past the address checks
		DialContext:           f.dialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   f.timeout,
		ResponseHeaderTimeout: f.timeout,
		DisableCompression:    true, // recordings are already compressed or tiny; no gzip bombs
	}
	f.client = &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("%w: more than %d redirects", ErrURLNotAllowed, maxRedirects)
			}
			return f.checkURL(req.URL)
		},
	}
	return f, nil
}

// MaxBytes returns the size cap of one recording.
func (f *Fetcher) MaxBytes() int64 { return f.maxBytes }

// CheckURL parses raw and reports whether the fetcher would try it: an
// http(s) URL on an allowed host. It does not resolve the host.
func (f *Fetcher) CheckURL(raw string) (*url.URL, error) {
	if len(raw) > maxURLBytes {
		return nil, fmt.Errorf("%w: url of %d bytes (limit %d)", ErrURLNotAllowed, len(raw), maxURLBytes)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrURLNotAllowed, err)
	}
	if err := f.checkURL(u); err != nil {
		return nil, err
	}
	return u, nil
}

func (f *Fetcher) checkURL(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: scheme %q", ErrURLNotAllowed, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("%w: credentials in url", ErrURLNotAllowed)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return fmt.Errorf("%w: no host", ErrURLNotAllowed)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%w: port %q", ErrURLNotAllowed, p)
		}
	}
	if !f.hostAllowed(host) {
		return fmt.Errorf("%w: host %q is not an allowed recording host", ErrURLNotAllowed, host)
	}
	return nil
}

func (f *Fetcher) hostAllowed(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if f.allowLoopback {
		if host == "localhost" {
			return true
		}
		if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsLoopback() {
			return true
		}
	}
	for _, pat := range f.allowed {
		if base, ok := strings.CutPrefix(pat, "*."); ok {
			if strings.HasSuffix(host, "."+base) {
				return true
			}
			continue
		}
		if host == pat {
			return true
		}
	}
	return false
}

// Fetch downloads the recording at raw. A transient failure (network error,
// timeout, 5xx, 429) is retried once; a refused URL or address, a 4xx and an
// oversized body are not.
func (f *Fetcher) Fetch(ctx context.Context, raw string) (Recording, error) {
	u, err := f.CheckURL(raw)
	if err != nil {
		return Recording{}, err
	}
	var rec Recording
	for attempt := 1; attempt <= 2; attempt++ {
		rec, err = f.fetchOnce(ctx, u)
		rec.Attempts = attempt
		if err == nil || !retryable(err) || ctx.Err() != nil {
			break
		}
		if attempt == 1 {
			f.log.LogAttrs(ctx, slog.LevelInfo, "recording fetch failed; retrying",
				slog.String("host", u.Hostname()), slog.String("error", err.Error()))
		}
	}
	return rec, err
}

// retryable reports whether a failed attempt may succeed when repeated.
func retryable(err error) bool {
	if errors.Is(err, ErrURLNotAllowed) || errors.Is(err, ErrAddressRefused) || errors.Is(err, ErrRecordingTooLarge) {
		return false
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.code >= 500 || se.code == http.StatusTooManyRequests
	}
	return true
}

type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("%v: http %d", ErrFetchStatus, e.code) }
func (e *statusError) Unwrap() error { return ErrFetchStatus }

func (f *Fetcher) fetchOnce(ctx context.Context, u *url.URL) (Recording, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Recording{}, fmt.Errorf("%w: %w", ErrURLNotAllowed, err)
	}
	req.Header.Set("Accept", "audio/wav, audio/x-wav, audio/mpeg, audio/*;q=0.9, */*;q=0.1")
	resp, err := f.client.Do(req)
	if err != nil {
		return Recording{}, fmt.Errorf("kookoo: fetch recording: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return Recording{}, &statusError{code: resp.StatusCode}
	}
	if resp.ContentLength > f.maxBytes {
		return Recording{}, fmt.Errorf("%w: content-length %d (limit %d)", ErrRecordingTooLarge, resp.ContentLength, f.maxBytes)
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return Recording{}, fmt.Errorf("kookoo: read recording: %w", err)
	}
	if n > f.maxBytes {
		return Recording{}, fmt.Errorf("%w: more than %d bytes", ErrRecordingTooLarge, f.maxBytes)
	}
	return Recording{Data: buf.Bytes(), ContentType: resp.Header.Get("Content-Type")}, nil
}

// dialContext dials through the fetcher's address policy; a refusal is
// ErrAddressRefused.
func (f *Fetcher) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := f.guard(ctx, network, address)
	if errors.Is(err, netguard.ErrRefused) {
		return nil, fmt.Errorf("%w: %w", ErrAddressRefused, err)
	}
	return c, err
}
