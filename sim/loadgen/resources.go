package loadgen

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server metrics the resource sampler reads (the Prometheus process and Go
// collectors, which koel serve registers).
const (
	metricCPU        = "process_cpu_seconds_total"
	metricRSS        = "process_resident_memory_bytes"
	metricGoroutines = "go_goroutines"
)

// Resources is what a run cost: the target's CPU, memory and goroutines
// from its /metrics (sampled every second), and the generator's own CPU,
// so that a figure can be told apart from the generator it shares a
// machine with, and divided per session.
type Resources struct {
	// ServerCPUSeconds is the target's process_cpu_seconds_total over the
	// run; ServerCores the same divided by the run's length.
	ServerCPUSeconds float64 `json:"server_cpu_s"`
	ServerCores      float64 `json:"server_cores"`
	// GeneratorCPUSeconds is this process's user and system CPU over the
	// run (-1 where the platform does not tell).
	GeneratorCPUSeconds float64 `json:"generator_cpu_s"`
	// BaseRSSMB and BaseGoroutines are the target's before the run;
	// PeakRSSMB and PeakGoroutines the highest sampled during it.
	BaseRSSMB      float64 `json:"base_rss_mb"`
	PeakRSSMB      float64 `json:"peak_rss_mb"`
	BaseGoroutines int     `json:"base_goroutines"`
	PeakGoroutines int     `json:"peak_goroutines"`
	// PeakSessions is the most sessions in flight at a sample (echo:
	// calls streaming); RSSPerSessionKB and GoroutinesPerSession are that
	// sample's RSS and goroutines above the base, divided by it.
	PeakSessions         int     `json:"peak_sessions"`
	RSSPerSessionKB      float64 `json:"rss_per_session_kb"`
	GoroutinesPerSession float64 `json:"goroutines_per_session"`
}

// resourceSampler samples the target's process metrics while a run goes.
type resourceSampler struct {
	cfg      Config
	inFlight func() int
	start    time.Time
	cpu0     float64
	gen0     float64
	stop     chan struct{}
	done     chan struct{}

	mu  sync.Mutex
	res Resources
}

// startResources reads the target's metrics before the run and samples
// them every interval until finish; nil when the target exposes none of
// them (a KooKoo app that is not koel).
func startResources(ctx context.Context, cfg Config, interval time.Duration, inFlight func() int) *resourceSampler {
	m, ok := metricValues(ctx, cfg, metricCPU, metricRSS, metricGoroutines)
	if !ok {
		return nil
	}
	s := &resourceSampler{cfg: cfg, inFlight: inFlight, start: time.Now(), cpu0: m[metricCPU], gen0: generatorCPU(),
		stop: make(chan struct{}), done: make(chan struct{})}
	s.res.BaseRSSMB, s.res.BaseGoroutines = m[metricRSS]/1e6, int(m[metricGoroutines])
	s.res.PeakRSSMB, s.res.PeakGoroutines = s.res.BaseRSSMB, s.res.BaseGoroutines
	go s.loop(ctx, interval)
	return s
}

func (s *resourceSampler) loop(ctx context.Context, interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			s.sample(ctx)
		}
	}
}

func (s *resourceSampler) sample(ctx context.Context) {
	n := s.inFlight()
	m, ok := metricValues(ctx, s.cfg, metricRSS, metricGoroutines)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rss, g := m[metricRSS]/1e6, int(m[metricGoroutines])
	r := &s.res
	r.PeakRSSMB, r.PeakGoroutines = max(r.PeakRSSMB, rss), max(r.PeakGoroutines, g)
	if n > 0 && n >= r.PeakSessions {
		r.PeakSessions = n
		r.RSSPerSessionKB = round((rss - r.BaseRSSMB) * 1000 / float64(n))
		r.GoroutinesPerSession = round(float64(g-r.BaseGoroutines) / float64(n))
	}
}

// finish stops sampling and adds the CPU figures.
func (s *resourceSampler) finish(ctx context.Context) Resources {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	r := s.res
	s.mu.Unlock()
	r.BaseRSSMB, r.PeakRSSMB = round(r.BaseRSSMB), round(r.PeakRSSMB)
	r.ServerCPUSeconds, r.ServerCores = -1, -1
	if m, ok := metricValues(ctx, s.cfg, metricCPU); ok {
		r.ServerCPUSeconds = round(m[metricCPU] - s.cpu0)
		if d := time.Since(s.start).Seconds(); d > 0 {
			r.ServerCores = round(r.ServerCPUSeconds / d)
		}
	}
	r.GeneratorCPUSeconds = -1
	if g := generatorCPU(); g >= 0 && s.gen0 >= 0 {
		r.GeneratorCPUSeconds = round(g - s.gen0)
	}
	return r
}

// metricValue reads an unlabelled counter or gauge from the target's
// /metrics (koel_sim_frames_late_total).
func metricValue(ctx context.Context, cfg Config, name string) (float64, bool) {
	m, ok := metricValues(ctx, cfg, name)
	return m[name], ok
}

// metricValues reads unlabelled counters or gauges from one scrape of the
// target's /metrics; ok is false unless all of them were there.
func metricValues(ctx context.Context, cfg Config, names ...string) (map[string]float64, bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.Target, "/")+"/metrics", nil)
	if err != nil {
		return nil, false
	}
	resp, err := cfg.Client.Do(req)
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, false
	}
	out := make(map[string]float64, len(names))
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, name := range names {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					out[name] = f
				}
			}
		}
	}
	return out, len(out) == len(names)
}
