package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/koelvoice/koel/channels/channeltest"
	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/demo"
)

// BenchmarkMessengerToSendAPI measures Messenger end to end on a real koel
// (loopback, SQLite, the demo FAQ bot, the outbox dispatcher): a signed
// webhook POST per message, each from its own sender, and the clock per
// message stops when the fake Graph server receives the reply's Send API
// call. cpu-ms/msg is the process's CPU time (user + system, clients and
// fake Graph included) per message: on a shared machine it says what the
// throughput would be with the cores to itself (2 cores / cpu-ms/msg). The traffic is spread over benchPages pages: koel paces each page at
// Meta's documented 300 Send API calls per second, so one page alone caps at
// that. Reported: messages per second (all replies received) and the p50 /
// p95 / p99 webhook-to-Send-API latency.
func BenchmarkMessengerToSendAPI(b *testing.B) {
	for _, c := range []int{8, 16} {
		b.Run(fmt.Sprintf("clients=%d", c), func(b *testing.B) { benchMessenger(b, c) })
	}
}

// benchPages is how many Messenger pages the benchmark's traffic goes to.
const benchPages = 8

func benchMessenger(b *testing.B, clients int) {
	graph := channeltest.NewGraph(b, e2ePageToken, "")
	cfg := Config{
		Addr: "127.0.0.1:0", DataDir: b.TempDir(), Dev: true,
		Demo: DemoConfig{Token: testToken},
		STT:  STTConfig{Engine: "none"}, Sim: SimConfig{Disabled: true},
		LogLevel: "error",
	}
	cfg.defaults()
	srv := startServer(b, cfg)
	for i := range benchPages {
		conn := ivr.Connection{BusinessID: demo.BusinessID, Channel: ivr.ChannelFacebook, Identifier: fmt.Sprintf("page%d", i), Active: true,
			Settings: ivr.ConnectionSettings{Messenger: ivr.MessengerSettings{PageAccessToken: e2ePageToken, AppSecret: e2eAppSecret, VerifyToken: "v", GraphURL: graph.URL()}}}
		if err := srv.store.CreateConnection(context.Background(), &conn); err != nil {
			b.Fatal(err)
		}
	}
	base := srv.URL() + "/fb/page"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	var (
		sent      sync.Map // PSID -> time.Time
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
		received  atomic.Int64
		failures  atomic.Int64
		seq       atomic.Int64
		all       = make(chan struct{})
	)
	graph.OnAccept(func(r channeltest.Request) {
		var s channeltest.MessengerSend
		if r.JSON(&s) != nil {
			return
		}
		if t0, ok := sent.Load(s.Recipient.ID); ok {
			d := time.Since(t0.(time.Time))
			mu.Lock()
			latencies = append(latencies, d)
			mu.Unlock()
		}
		if received.Add(1) == int64(b.N) {
			close(all)
		}
	})
	b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			psid := fmt.Sprintf("PSID%d", n)
			q, _ := json.Marshal(benchQuestions[n%int64(len(benchQuestions))])
			body := fmt.Sprintf(`{"object":"page","entry":[{"id":"PAGE","time":1,"messaging":[{"sender":{"id":%q},"recipient":{"id":"PAGE"},"timestamp":1,"message":{"mid":"mid.bench.%d","text":%s}}]}]}`, psid, n, q)
			req, _ := http.NewRequest(http.MethodPost, fmt.Sprint(base, n%benchPages), strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Hub-Signature-256", platform.SignMeta(e2eAppSecret, []byte(body)))
			sent.Store(psid, time.Now())
			resp, err := client.Do(req)
			if err != nil {
				failures.Add(1)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failures.Add(1)
			}
		}
	})
	if f := failures.Load(); f > 0 {
		b.Fatalf("%d of %d webhook posts failed", f, b.N)
	}
	select {
	case <-all:
	case <-time.After(2 * time.Minute):
		b.Fatalf("only %d of %d replies reached the Send API", received.Load(), b.N)
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(float64(len(latencies)-1)*p)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.95), "p95-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/msg")
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
