package main

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/sim/loadgen"
)

// rssBytes reads this process's resident set size.
func rssBytes() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb * 1024
		}
	}
	return 0
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
// and RSS and goroutines must stay flat: their slope over the second half
// of the run, extrapolated over the whole run, within 10 % of their mean.
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
	type sample struct{ at, rss, goroutines float64 }
	var samples []sample
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
				samples = append(samples, sample{time.Since(start).Minutes(), rssBytes(), float64(runtime.NumGoroutine())})
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
	var xs, rss, gor []float64
	var meanRSS, meanG float64
	for _, s := range half {
		xs, rss, gor = append(xs, s.at), append(rss, s.rss), append(gor, s.goroutines)
		meanRSS += s.rss / float64(len(half))
		meanG += s.goroutines / float64(len(half))
	}
	rssSlope, gSlope := slope(xs, rss), slope(xs, gor)
	t.Logf("RSS mean %.1f MB, slope %+.3f MB/min; goroutines mean %.0f, slope %+.2f/min (second half, %d samples)",
		meanRSS/1e6, rssSlope/1e6, meanG, gSlope, len(half))
	if grow := rssSlope * d.Minutes(); grow > 0.1*meanRSS {
		t.Errorf("RSS grows %.1f MB over the run at this slope (mean %.1f MB)", grow/1e6, meanRSS/1e6)
	}
	if grow := gSlope * d.Minutes(); grow > 0.1*meanG {
		t.Errorf("goroutines grow %.0f over the run at this slope (mean %.0f)", grow, meanG)
	}
}
