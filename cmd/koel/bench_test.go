package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koelvoice/koel/channels/webhook"
)

var benchQuestions = []string{
	"when are you open on sunday",
	"where is my order",
	"how much is delivery",
	"can i pay with upi",
	"i want to return a product",
	"what is the warranty",
}

// benchServerAPI measures one JSON API of a real koel on loopback (SQLite in a
// temp dir, the demo FAQ bot): messages per second and p50/p99 latency seen
// by concurrent clients. With untilDelivered, the clock stops only when
// the integrator's webhook has received every reply, so the rate includes
// the outbox's deliveries.
func benchServerAPI(b *testing.B, clients int, path string, headers map[string]string, untilDelivered bool, body func(user, text string) string) {
	var delivered atomic.Int64
	allDelivered := make(chan struct{})
	var target atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if n := delivered.Add(1); n == target.Load() {
			close(allDelivered)
		}
	}))
	defer hook.Close()
	cfg := Config{
		Addr: "127.0.0.1:0", DataDir: b.TempDir(), Dev: true, // the webhook is on loopback
		Demo: DemoConfig{Token: testToken, WebhookURL: hook.URL, WebhookSecret: testSecret},
		STT:  STTConfig{Engine: "none"}, Sim: SimConfig{Disabled: true},
		LogLevel: "error",
	}
	cfg.defaults()
	srv := startServer(b, cfg)
	url := srv.URL() + path
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	target.Store(int64(b.N))

	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
		seq       atomic.Int64
		failures  atomic.Int64
	)
	b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			n := seq.Add(1)
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body(fmt.Sprintf("user%d", n%500), benchQuestions[n%int64(len(benchQuestions))])))
			req.Header.Set("Content-Type", "application/json")
			for k, v := range headers {
				req.Header.Set(k, v)
			}
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				failures.Add(1)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			local = append(local, time.Since(t0))
			if resp.StatusCode != http.StatusOK {
				failures.Add(1)
			}
		}
		mu.Lock()
		latencies = append(latencies, local...)
		mu.Unlock()
	})
	if untilDelivered {
		select {
		case <-allDelivered:
		case <-time.After(time.Minute):
			b.Fatalf("only %d of %d replies delivered", delivered.Load(), b.N)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failures.Load(); f > 0 {
		b.Fatalf("%d of %d requests failed", f, b.N)
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[int(float64(len(latencies)-1)*p)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

var benchClients = []int{8, 16}

func BenchmarkWebhookAPI(b *testing.B) {
	for _, c := range benchClients {
		b.Run(fmt.Sprintf("clients=%d", c), func(b *testing.B) {
			benchServerAPI(b, c, webhook.PathLogMessage, webhookHeaders, true, func(user, text string) string {
				return logMessage(user, text)
			})
		})
	}
}

func BenchmarkBotAPI(b *testing.B) {
	for _, c := range benchClients {
		b.Run(fmt.Sprintf("clients=%d", c), func(b *testing.B) {
			benchServerAPI(b, c, "/api/bots/1/converse", map[string]string{"Authorization": "Bearer " + testToken}, false, func(user, text string) string {
				return fmt.Sprintf(`{"user_id":%q,"text":%q}`, user, text)
			})
		})
	}
}
