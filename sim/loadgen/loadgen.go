// Package loadgen is koel's load generator, `koel load`: like SIPp for
// KooKoo, it plays the part of the platform (or of integrators) against a
// koel server or any KooKoo application, and reports what its callers and
// clients met.
//
// Scenarios:
//
//   - kookoo: KooKoo calls. NewCall, then Record events whose recordings
//     are real speech (a varied corpus rendered with espeak-ng at start,
//     served from memory by a recording host of the generator's own), paced
//     as a real call (the prompt is "played", the caller thinks, speaks and
//     the silence period passes before the Record event), then Hangup.
//   - softphone: softphone calls over WebRTC (the same corpus spoken into
//     the server's emulator), measuring end of speech → first reply audio
//     and the frames the server sent late.
//   - echo: softphone calls over WebRTC to the server's echo app, which
//     plays each caller's audio back (no app, no speech-to-text, no bot):
//     the media path alone. Calls arrive at a ramp rate, then a burst
//     arrives at once; every call streams numbered frames to the run's
//     end, and the report counts frames lost and late each way.
//   - bot: the synchronous bot API, POST /api/bots/{id}/converse.
//   - webhook: the webhook API, POST /v1.0/log_message_from_user/; with a
//     receiver address given, the generator also receives the replies and
//     measures message → delivered.
//
// Every run is bounded in count and in time, and by default refuses targets
// that are not on loopback, so it cannot be pointed at someone else's
// server by mistake.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Scenarios of [Config.Scenario].
const (
	ScenarioKooKoo  = "kookoo"
	ScenarioBot     = "bot"
	ScenarioWebhook = "webhook"
	// ScenarioSoftphone places softphone calls over WebRTC (the server's
	// /sim endpoints; koel serve --dev or a softphone token).
	ScenarioSoftphone = "softphone"
	// ScenarioEcho places softphone calls to the echo app (sim's offer
	// "echo": true).
	ScenarioEcho = "echo"
)

// Bounds of a run.
const (
	MaxSessions    = 1_000_000
	MaxConcurrency = 2000
	MaxDuration    = 2 * time.Hour
	MaxTurns       = 50
)

// ErrNotLoopback is returned for a target that is not on loopback when
// [Config.AllowRemote] is not set.
var ErrNotLoopback = errors.New("loadgen: target is not on loopback (pass -allow-remote to load a server you run elsewhere)")

// Config configures a [Run].
type Config struct {
	// Scenario is kookoo, softphone, echo, bot or webhook.
	Scenario string
	// Target is the koel base URL (http://127.0.0.1:8080).
	Target string
	// AppURL, for the kookoo scenario, is the KooKoo application URL to
	// call instead of Target + "/kookoo/" + Identifier (any KooKoo app).
	AppURL string
	// Identifier is the KooKoo connection's identifier ("demo").
	Identifier string
	// BusinessID, Token and ClientID authenticate the text scenarios (the
	// demo business: 1, its token, "demo").
	BusinessID int64
	Token      string
	ClientID   string
	// Sessions is how many calls (kookoo) or conversations (bot, webhook)
	// to run in all (default 10).
	Sessions int
	// Concurrency is how many run at once (default 1).
	Concurrency int
	// Turns is the number of Record events or messages per session
	// (default 3).
	Turns int
	// Duration bounds the run (default 1 min): no session starts after it,
	// sessions under way start no new turn and end (a call hangs up), and
	// any request still running two request timeouts later is cut off.
	Duration time.Duration
	// Burst, for the echo scenario, is how many of the calls arrive at
	// once, when the others are up; RampRate is how many a second arrive
	// before (default 25).
	Burst    int
	RampRate float64
	// Pace makes the kookoo scenario wait as a real call would between
	// events; off, events follow each other at once (a stress test).
	Pace bool
	// ThinkTime is the caller's pause after a prompt before speaking
	// (default 700 ms when pacing).
	ThinkTime time.Duration
	// SilencePeriod is the silence after the caller's speech before KooKoo
	// ends the recording (default 1 s when pacing; koel's silence_period).
	SilencePeriod time.Duration
	// Timeout bounds one request (default 15 s).
	Timeout time.Duration
	// AllowRemote lets Target (and AppURL) be off loopback.
	AllowRemote bool
	// RecordListen is where the recording host listens ("127.0.0.1:0");
	// RecordURL is how the target reaches it (default http://<listen>).
	RecordListen, RecordURL string
	// WebhookListen, for the webhook scenario, is where the generator
	// receives replies (empty: replies are not awaited). The server's
	// webhook URL must point there.
	WebhookListen string
	// WebhookSecret, when set, is the connection's secret key: every reply
	// received must carry a valid X-Koel-Signature.
	WebhookSecret string
	// Utterances are the recordings of the kookoo scenario (see
	// [RenderUtterances]); Texts the messages of the text scenarios (see
	// [Texts]).
	Utterances []Utterance
	Texts      []string
	// Client sends the requests (nil: a client with keep-alive and enough
	// idle connections for Concurrency).
	Client *http.Client
	// Progress, when set, receives a line every few seconds.
	Progress io.Writer

	// stopAt is when sessions stop starting turns and end (Run sets it).
	stopAt time.Time
	// sampleEvery is how often the target's resources are sampled
	// (default 1 s; tests shorten it).
	sampleEvery time.Duration
}

func (c *Config) defaults() error {
	if c.Sessions == 0 {
		c.Sessions = 10
	}
	if c.Concurrency == 0 {
		c.Concurrency = 1
	}
	if c.Turns == 0 {
		c.Turns = 3
	}
	if c.Duration == 0 {
		c.Duration = time.Minute
	}
	if c.Timeout == 0 {
		c.Timeout = 15 * time.Second
	}
	if c.Identifier == "" {
		c.Identifier = "demo"
	}
	if c.BusinessID == 0 {
		c.BusinessID = 1
	}
	if c.ClientID == "" {
		c.ClientID = "demo"
	}
	if c.Pace {
		if c.ThinkTime == 0 {
			c.ThinkTime = 700 * time.Millisecond
		}
		if c.SilencePeriod == 0 {
			c.SilencePeriod = time.Second
		}
	}
	if c.RecordListen == "" {
		c.RecordListen = "127.0.0.1:0"
	}
	switch {
	case c.Sessions < 1 || c.Sessions > MaxSessions:
		return fmt.Errorf("loadgen: sessions %d outside 1..%d", c.Sessions, MaxSessions)
	case c.Concurrency < 1 || c.Concurrency > MaxConcurrency:
		return fmt.Errorf("loadgen: concurrency %d outside 1..%d", c.Concurrency, MaxConcurrency)
	case c.Turns < 1 || c.Turns > MaxTurns:
		return fmt.Errorf("loadgen: turns %d outside 1..%d", c.Turns, MaxTurns)
	case c.Duration < 0 || c.Duration > MaxDuration:
		return fmt.Errorf("loadgen: duration %v outside 0..%v", c.Duration, MaxDuration)
	case c.ThinkTime < 0 || c.SilencePeriod < 0 || c.Timeout < 0:
		return errors.New("loadgen: negative think time, silence period or timeout")
	}
	return nil
}

// Latency summarizes one kind of request, in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// Report is what a run measured.
type Report struct {
	Scenario    string  `json:"scenario"`
	Target      string  `json:"target"`
	Concurrency int     `json:"concurrency"`
	Paced       bool    `json:"paced"`
	Sessions    int     `json:"sessions"`
	SessionsOK  int     `json:"sessions_ok"`
	Turns       int     `json:"turns"`
	Errors      int     `json:"errors"`
	ElapsedS    float64 `json:"elapsed_s"`
	SessionsPS  float64 `json:"sessions_per_s"`
	TurnsPS     float64 `json:"turns_per_s"`
	// Latencies by request: newcall, record, hangup (kookoo); message
	// (bot, webhook); delivered (webhook with a receiver: message sent →
	// reply received).
	Latency map[string]Latency `json:"latency_ms"`
	// Answered counts turns that got a reply (a prompt or a message).
	Answered int `json:"answered"`
	// LateFrames, for the softphone scenario, is how many frames the
	// server sent more than 40 ms late during the run (its
	// koel_sim_frames_late_total), -1 when /metrics could not be read; 0
	// for the other scenarios, which stream no media.
	LateFrames int `json:"late_frames"`
	// Frames, for the echo scenario, is what the calls measured of their
	// media.
	Frames *Frames `json:"frames,omitempty"`
	// Resources is what the run cost the target (from its /metrics) and
	// the generator; nil when the target exposes no process metrics.
	Resources *Resources `json:"resources,omitempty"`
	// ErrorSamples are up to ten distinct error texts.
	ErrorSamples []string `json:"error_samples,omitempty"`
}

// maxLatencySamples bounds the latencies a run keeps per kind: past it, a
// uniform reservoir of that many (Algorithm R) stands for all of them, so
// that a long run (the soak, an echo's 800,000 round trips) holds the
// generator's memory flat. Count and Max stay exact.
const maxLatencySamples = 100_000

// samples is one kind's latencies: every one up to maxLatencySamples, a
// uniform sample of them past it.
type samples struct {
	kept []time.Duration
	n    int
	max  time.Duration
}

func (s *samples) add(d time.Duration) {
	s.n++
	s.max = max(s.max, d)
	if len(s.kept) < maxLatencySamples {
		s.kept = append(s.kept, d)
		return
	}
	if j := rand.IntN(s.n); j < maxLatencySamples {
		s.kept[j] = d
	}
}

func (s *samples) summary() Latency {
	l := summarize(s.kept)
	if s.n > 0 {
		l.Count, l.Max = s.n, round(float64(s.max.Microseconds())/1000)
	}
	return l
}

// recorder collects the measurements of a run.
type recorder struct {
	mu       sync.Mutex
	lat      map[string]*samples
	turns    int
	answered int
	errs     int
	samples  []string
	ok       int
	sessions int
}

func newRecorder() *recorder { return &recorder{lat: make(map[string]*samples)} }

func (r *recorder) observe(kind string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.lat[kind]
	if s == nil {
		s = &samples{}
		r.lat[kind] = s
	}
	s.add(d)
}

func (r *recorder) turn(answered bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.turns++
	if answered {
		r.answered++
	}
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs++
	msg := err.Error()
	if len(r.samples) < 10 && !slices.Contains(r.samples, msg) {
		r.samples = append(r.samples, msg)
	}
}

func (r *recorder) session(ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sessions++
	if ok {
		r.ok++
	}
}

func (r *recorder) report(cfg Config, elapsed time.Duration) Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := Report{
		Scenario: cfg.Scenario, Target: cfg.Target, Concurrency: cfg.Concurrency, Paced: cfg.Pace,
		Sessions: r.sessions, SessionsOK: r.ok, Turns: r.turns, Answered: r.answered, Errors: r.errs,
		ElapsedS: round(elapsed.Seconds()), Latency: make(map[string]Latency), ErrorSamples: r.samples,
	}
	if cfg.AppURL != "" {
		rep.Target = cfg.AppURL
	}
	if s := elapsed.Seconds(); s > 0 {
		rep.SessionsPS = round(float64(r.sessions) / s)
		rep.TurnsPS = round(float64(r.turns) / s)
	}
	for k, v := range r.lat {
		rep.Latency[k] = v.summary()
	}
	return rep
}

func round(v float64) float64 { return math.Round(v*100) / 100 }

func summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return round(float64(d.Microseconds()) / 1000) }
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return ms(s[min(max(i, 0), len(s)-1)])
	}
	return Latency{Count: len(s), P50: at(0.50), P90: at(0.90), P95: at(0.95), P99: at(0.99), Max: ms(s[len(s)-1])}
}

// CheckLoopback reports whether raw's host is a loopback address or
// resolves only to loopback addresses.
func CheckLoopback(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("loadgen: target %q is not an http(s) URL", raw)
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if addrs, err = net.DefaultResolver.LookupNetIP(rctx, "ip", host); err != nil {
			return fmt.Errorf("loadgen: resolve %q: %w", host, err)
		}
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			return fmt.Errorf("%w: %s is %s", ErrNotLoopback, host, a)
		}
	}
	return nil
}

// Run runs the configured scenario and returns its report. It stops early
// when ctx ends, reporting what was measured so far.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.defaults(); err != nil {
		return Report{}, err
	}
	targets := []string{cfg.Target}
	if cfg.AppURL != "" {
		targets = []string{cfg.AppURL}
	}
	if targets[0] == "" {
		return Report{}, errors.New("loadgen: no target")
	}
	if !cfg.AllowRemote {
		for _, t := range targets {
			if err := CheckLoopback(ctx, t); err != nil {
				return Report{}, err
			}
		}
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        cfg.Concurrency * 2,
			MaxIdleConnsPerHost: cfg.Concurrency * 2,
			IdleConnTimeout:     30 * time.Second,
		}}
	}

	rec := newRecorder()
	startBy := time.Now().Add(cfg.Duration)
	cfg.stopAt = startBy
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration+2*cfg.Timeout)
	defer cancel()
	var sc scenario
	var err error
	switch cfg.Scenario {
	case ScenarioKooKoo:
		sc, err = newKooKoo(cfg)
	case ScenarioBot, ScenarioWebhook:
		sc, err = newText(cfg)
	case ScenarioSoftphone:
		sc, err = newSoftphone(cfg)
	case ScenarioEcho:
		sc, err = newEcho(cfg)
	default:
		return Report{}, fmt.Errorf("loadgen: unknown scenario %q (kookoo, softphone, echo, bot or webhook)", cfg.Scenario)
	}
	if err != nil {
		return Report{}, err
	}
	defer sc.close()

	jobs := make(chan int)
	var wg sync.WaitGroup
	var inFlight atomic.Int64
	count := func() int { return int(inFlight.Load()) }
	if f, ok := sc.(inFlighter); ok {
		count = f.inFlight
	}
	if cfg.sampleEvery <= 0 {
		cfg.sampleEvery = time.Second
	}
	res := startResources(ctx, cfg, cfg.sampleEvery, count)
	start := time.Now()
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				inFlight.Add(1)
				err := sc.session(runCtx, n, rec)
				inFlight.Add(-1)
				if err != nil {
					rec.fail(err)
				}
				rec.session(err == nil)
			}
		}()
	}
	stopProgress := progress(cfg.Progress, rec, start)
	for n := range cfg.Sessions {
		if runCtx.Err() != nil || time.Now().After(startBy) {
			break
		}
		select {
		case jobs <- n:
		case <-runCtx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	stopProgress()
	rep := rec.report(cfg, time.Since(start))
	if f, ok := sc.(finisher); ok {
		f.finish(ctx, &rep)
	}
	if res != nil {
		r := res.finish(ctx)
		rep.Resources = &r
	}
	return rep, nil
}

// inFlighter is a scenario that counts its sessions in flight itself (the
// echo scenario: calls streaming, not calls dialling).
type inFlighter interface {
	inFlight() int
}

func progress(w io.Writer, rec *recorder, start time.Time) func() {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				rec.mu.Lock()
				fmt.Fprintf(w, "%5.0fs  %d sessions, %d turns, %d errors\n", time.Since(start).Seconds(), rec.sessions, rec.turns, rec.errs)
				rec.mu.Unlock()
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// finisher adds what a scenario measures once, at the end, to the report.
type finisher interface {
	finish(ctx context.Context, rep *Report)
}

// scenario is one kind of session.
type scenario interface {
	// session runs session n to its end, recording what it measured.
	session(ctx context.Context, n int, rec *recorder) error
	close()
}

// WriteJSON prints the report as JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText prints the report for a terminal.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s against %s, %d concurrent", r.Scenario, r.Target, r.Concurrency)
	if r.Scenario == ScenarioKooKoo {
		fmt.Fprintf(&b, ", paced %v", r.Paced)
	}
	fmt.Fprintf(&b, "\nsessions %d (%d ok), turns %d (%d answered), errors %d, late frames %d, in %.1f s\n",
		r.Sessions, r.SessionsOK, r.Turns, r.Answered, r.Errors, r.LateFrames, r.ElapsedS)
	fmt.Fprintf(&b, "%.2f sessions/s, %.2f turns/s\n", r.SessionsPS, r.TurnsPS)
	if f := r.Frames; f != nil {
		fmt.Fprintf(&b, "calls up %d (burst %d), peak %d at once; handshakes queued %d\n", f.Connected, f.BurstConnected, f.PeakCalls, f.HandshakesQueued)
		fmt.Fprintf(&b, "frames sent %d, echoed %d, lost %d, late arrivals %d, duplicates %d, corrupt %d, generator late %d\n",
			f.Sent, f.Echoed, f.Lost, f.Late, f.Duplicates, f.Corrupt, f.GeneratorLate)
	}
	if x := r.Resources; x != nil {
		fmt.Fprintf(&b, "server cpu %.1f s (%.2f cores), rss %.1f -> peak %.1f MB, goroutines %d -> peak %d; at %d sessions in flight: %.0f KB and %.1f goroutines each; generator cpu %.1f s\n",
			x.ServerCPUSeconds, x.ServerCores, x.BaseRSSMB, x.PeakRSSMB, x.BaseGoroutines, x.PeakGoroutines,
			x.PeakSessions, x.RSSPerSessionKB, x.GoroutinesPerSession, x.GeneratorCPUSeconds)
	}
	kinds := make([]string, 0, len(r.Latency))
	for k := range r.Latency {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Fprintf(&b, "%-10s %7s %9s %9s %9s %9s %9s\n", "latency", "count", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms")
	for _, k := range kinds {
		l := r.Latency[k]
		fmt.Fprintf(&b, "%-10s %7d %9.1f %9.1f %9.1f %9.1f %9.1f\n", k, l.Count, l.P50, l.P90, l.P95, l.P99, l.Max)
	}
	for _, e := range r.ErrorSamples {
		fmt.Fprintf(&b, "error: %s\n", e)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
