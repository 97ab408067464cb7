package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/sim/loadgen"
)

// rssBytes reads this process's resident set size.
func rssBytes() float64 { return procStatus("VmRSS:") }

// goMappedBytes is the memory the Go runtime holds from the OS and has not
// returned (/memory/classes/total minus heap/released): the part of RSS
// that is Go's, the rest being C (cgo, the race runtime) and file pages.
func goMappedBytes() float64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return float64(s[0].Value.Uint64()) - float64(s[1].Value.Uint64())
}

// procStatus reads one kB field of /proc/self/status, in bytes.
func procStatus(field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb * 1024
		}
	}
	return 0
}

// liveHeapBytes reads the Go heap that survived the last garbage
// collection (runtime/metrics /gc/heap/live:bytes): unlike RSS it holds no
// race-detector shadow memory and no freed spans the runtime has not yet
// returned to the OS, so a leak of Go objects shows in it and nothing else.
func liveHeapBytes() float64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return float64(s[0].Value.Uint64())
}

// writeHeapProfile writes an inuse heap profile, after a collection, to
// dir/heap-name.pb.gz (for go tool pprof -top -diff_base).
func writeHeapProfile(dir, name string) error {
	runtime.GC()
	f, err := os.Create(filepath.Join(dir, "heap-"+name+".pb.gz"))
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("heap profile %s: %w", name, err)
	}
	return f.Close()
}

// slope is the least-squares slope of ys over xs (per unit of x).
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	if d := n*sxx - sx*sx; d != 0 {
		return (n*sxy - sx*sy) / d
	}
	return 0
}

// TestSoak is `make soak` (KOEL_SOAK=15m; skipped otherwise): koel serve in
// this process, under the race detector, carries mixed load from koel load
// (paced KooKoo calls with pocketsphinx, bot API conversations, webhook
// API conversations whose replies are received and verified) for the
// duration. Every reply must arrive (no lost messages), nothing may panic,
// and the live Go heap (after GC), goroutines and, without -race, RSS must
// stay flat: their slope over the second half of the run, extrapolated
// over the whole run, within 10 % of their mean. KOEL_SOAK_PROFILE=dir
// writes heap profiles and every sample there.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("KOEL_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set KOEL_SOAK=15m (make soak) to run the soak test")
	}
	ctx := context.Background()
	utts, err := loadgen.RenderUtterances(ctx, 40, "")
	if err != nil {
		t.Fatal(err)
	}
	texts, err := loadgen.Texts()
	if err != nil {
		t.Fatal(err)
	}
	hook := freeAddr(t)
	cfg := testConfig(t, t.TempDir(), os.Getenv("KOEL_SOAK_DATABASE_URL"), "http://"+hook+"/hook")
	cfg.STT.Engine = "sphinx"
	logs := &syncBuffer{}
	srv, err := NewServer(ctx, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if srv.voice.sttState != "ok" {
		t.Fatalf("pocketsphinx unavailable (%s)", srv.voice.sttState)
	}

	runs := []loadgen.Config{
		{Scenario: loadgen.ScenarioKooKoo, Target: srv.URL(), Concurrency: 6, Turns: 3, Pace: true, Utterances: utts, Timeout: 30 * time.Second},
		{Scenario: loadgen.ScenarioBot, Target: srv.URL(), Token: testToken, Concurrency: 2, Turns: 5, Texts: texts},
		{Scenario: loadgen.ScenarioWebhook, Target: srv.URL(), Token: testToken, Concurrency: 2, Turns: 5, Texts: texts,
			WebhookListen: hook, WebhookSecret: testSecret, Timeout: 30 * time.Second},
	}
	// KOEL_SOAK_SCENARIOS=bot,webhook (say) runs only those, to tell
	// which load a growth follows.
	if only := os.Getenv("KOEL_SOAK_SCENARIOS"); only != "" {
		keep := strings.Split(only, ",")
		runs = slices.DeleteFunc(runs, func(c loadgen.Config) bool { return !slices.Contains(keep, c.Scenario) })
		if len(runs) == 0 {
			t.Fatalf("KOEL_SOAK_SCENARIOS=%q names none of kookoo, bot, webhook", only)
		}
	}
	type sample struct{ at, rss, heap, goroutines float64 }
	var samples []sample
	// KOEL_SOAK_PROFILE=dir writes heap profiles at a tenth, half and the
	// end of the run, and every sample to dir/samples.tsv (minutes, RSS,
	// live heap, goroutines, Go-mapped bytes, anonymous RSS, threads).
	profDir := os.Getenv("KOEL_SOAK_PROFILE")
	profileAt := map[int]string{}
	if profDir != "" {
		n := int(d / (10 * time.Second))
		profileAt[max(n/10, 1)], profileAt[max(n/2, 2)] = "start", "middle"
	}
	start := time.Now()
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				s := sample{time.Since(start).Minutes(), rssBytes(), liveHeapBytes(), float64(runtime.NumGoroutine())}
				samples = append(samples, s)
				if profDir == "" {
					continue
				}
				if name, ok := profileAt[len(samples)]; ok {
					if err := writeHeapProfile(profDir, name); err != nil {
						t.Error(err)
					}
				}
				appendSample(t, profDir, fmt.Sprintf("%.3f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\n", s.at, s.rss, s.heap, s.goroutines, goMappedBytes(), procStatus("RssAnon:"), procStatus("Threads:")/1024))
			}
		}
	}()
	reports := make([]loadgen.Report, len(runs))
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, rc := range runs {
		rc.Sessions, rc.Duration = loadgen.MaxSessions, d
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i], errs[i] = loadgen.Run(ctx, rc)
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	if profDir != "" {
		if err := writeHeapProfile(profDir, "end"); err != nil {
			t.Error(err)
		}
		if b, err := os.ReadFile("/proc/self/smaps"); err == nil {
			_ = os.WriteFile(filepath.Join(profDir, "smaps"), b, 0o644)
		}
	}

	for i, rep := range reports {
		if errs[i] != nil {
			t.Fatalf("%s: %v", runs[i].Scenario, errs[i])
		}
		t.Logf("%s: %d sessions, %d turns (%d answered), %d errors, %.1f turns/s, latency %+v",
			rep.Scenario, rep.Sessions, rep.Turns, rep.Answered, rep.Errors, rep.TurnsPS, rep.Latency)
		if rep.Errors != 0 || rep.Turns == 0 {
			t.Errorf("%s: %d errors (%v) in %d turns; want none (a webhook error is a lost reply)", rep.Scenario, rep.Errors, rep.ErrorSamples, rep.Turns)
		}
	}
	dead, err := srv.store.ListOutbox(ctx, ivr.OutboxDead, 0)
	if err != nil || len(dead) != 0 {
		t.Errorf("%d dead letters (%v)", len(dead), err)
	}
	if out := logs.String(); strings.Contains(out, "panic") {
		t.Errorf("a panic was logged:\n%s", out)
	}
	if len(samples) < 6 {
		t.Fatalf("%d samples; run the soak for at least a minute", len(samples))
	}
	half := samples[len(samples)/2:]
	var xs, rss, heap, gor []float64
	var meanRSS, meanHeap, meanG float64
	for _, s := range half {
		xs, rss, heap, gor = append(xs, s.at), append(rss, s.rss), append(heap, s.heap), append(gor, s.goroutines)
		meanRSS += s.rss / float64(len(half))
		meanHeap += s.heap / float64(len(half))
		meanG += s.goroutines / float64(len(half))
	}
	rssSlope, heapSlope, gSlope := slope(xs, rss), slope(xs, heap), slope(xs, gor)
	t.Logf("RSS mean %.1f MB, slope %+.3f MB/min; live heap mean %.1f MB, slope %+.3f MB/min; goroutines mean %.0f, slope %+.2f/min (second half, %d samples)",
		meanRSS/1e6, rssSlope/1e6, meanHeap/1e6, heapSlope/1e6, meanG, gSlope, len(half))
	// A leak of Go objects (a cache, a per-call map) shows in the live
	// heap, with or without -race. RSS is judged only without -race: the
	// race runtime's shadow memory and sync metadata grow with every
	// address and goroutine the program has touched and are never given
	// back (golang/go#37233, #63276), so under -race RSS grows however
	// flat the program's own memory is.
	if grow := heapSlope * d.Minutes(); grow > 0.1*meanHeap {
		t.Errorf("live heap grows %.1f MB over the run at this slope (mean %.1f MB)", grow/1e6, meanHeap/1e6)
	}
	if grow := rssSlope * d.Minutes(); grow > 0.1*meanRSS && !raceEnabled {
		t.Errorf("RSS grows %.1f MB over the run at this slope (mean %.1f MB)", grow/1e6, meanRSS/1e6)
	}
	// Goroutines come and go with the sessions in flight: a text-only run
	// sampled 53 to 145 around a mean of 80, so a growth of fewer than 50
	// is noise, not a leak of one per call (400 calls, 40,000 sessions).
	if grow := gSlope * d.Minutes(); grow > 0.1*meanG && grow > 50 {
		t.Errorf("goroutines grow %.0f over the run at this slope (mean %.0f)", grow, meanG)
	}
}

// appendSample appends one line to dir/samples.tsv.
func appendSample(t *testing.T, dir, line string) {
	f, err := os.OpenFile(filepath.Join(dir, "samples.tsv"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		t.Error(err)
	}
}
