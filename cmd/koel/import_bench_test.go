package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// importBenchRows is the size of the FAQ imported during the benchmark.
const importBenchRows = 50000

// benchFAQ returns an n-row FAQ CSV in the seed's format.
func benchFAQ(n int) []byte {
	topics := []string{"refund", "delivery", "password", "invoice", "warranty", "upgrade", "coupon", "account", "branch", "appointment"}
	acts := []string{"check", "change", "cancel", "renew", "track", "get", "report", "pay"}
	var b bytes.Buffer
	b.Grow(n * 110)
	b.WriteString("node_name,Question(User Says),Answer(Bot Says)\n")
	for i := range n {
		tp, a := topics[i%len(topics)], acts[(i/7)%len(acts)]
		fmt.Fprintf(&b, "faq_%05d,\"how do I %s my %s %d|%s for %s number %d\",\"To %s your %s (case %d), open the app.\"\n",
			i, a, tp, i, a, tp, i*7+3, a, tp, i)
	}
	return b.Bytes()
}

// BenchmarkBotAPIDuringImport measures the bot API's latency seen by 8
// concurrent clients on a real koel (demo business, FAQ bot) while another
// business imports a 50,000-row FAQ through the FAQ import API, against
// the same traffic with no import. Each iteration is one import: traffic
// runs from the upload until status polling says Success, and only the
// requests made in that window count. On SQLite, and on PostgreSQL when
// KOEL_TEST_DATABASE_URL is set. Target: p99 < 50 ms during the import.
func BenchmarkBotAPIDuringImport(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, importing := range []bool{false, true} {
			name := fmt.Sprintf("store=%s/import=none", backend)
			if importing {
				name = fmt.Sprintf("store=%s/import=%d", backend, importBenchRows)
			}
			b.Run(name, func(b *testing.B) {
				dbURL := ""
				if backend == "postgres" {
					dbURL = storetest.PostgresURL(b)
				}
				benchBotAPIDuringImport(b, dbURL, importing, 8)
			})
		}
	}
}

func benchBotAPIDuringImport(b *testing.B, dbURL string, importing bool, clients int) {
	cfg := Config{
		Addr: "127.0.0.1:0", DataDir: b.TempDir(), DatabaseURL: dbURL,
		Demo: DemoConfig{Token: testToken}, STT: STTConfig{Engine: "none"}, Sim: SimConfig{Disabled: true},
		LogLevel: "error",
	}
	cfg.defaults()
	srv := startServer(b, cfg)
	ctx := context.Background()
	const shopToken = "bench-shop-token"
	shop := ivr.Business{ID: 2, Name: "Bench Shop", TokenHash: ivr.HashToken(shopToken), ClientID: "bench-shop", Active: true}
	if err := srv.store.CreateBusiness(ctx, &shop); err != nil {
		b.Fatal(err)
	}
	csv := benchFAQ(importBenchRows)
	base := srv.URL()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	converse := func(user, text string) (time.Duration, error) {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/bots/1/converse",
			strings.NewReader(fmt.Sprintf(`{"user_id":%q,"text":%q}`, user, text)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+testToken)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("converse: %d", resp.StatusCode)
		}
		return time.Since(t0), nil
	}
	// Warm up: the demo FAQ's matcher and every connection.
	for i := range 50 {
		if _, err := converse(fmt.Sprintf("warm%d", i), benchQuestions[i%len(benchQuestions)]); err != nil {
			b.Fatal(err)
		}
	}

	upload := func() string {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		_ = mw.WriteField("domain_name", shop.Name)
		fw, _ := mw.CreateFormFile("csv_file", "faq.csv")
		_, _ = fw.Write(csv)
		_ = mw.Close()
		req, _ := http.NewRequest(http.MethodPost, base+api.FAQCreatePath, &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+shopToken)
		req.Header.Set("client-id", shop.ClientID)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var created api.FAQCreateResponse
		if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || !created.Success {
			b.Fatalf("upload: %d %+v %v", resp.StatusCode, created, err)
		}
		return created.Body.TaskID
	}
	// waitDone polls the task's status until Success.
	waitDone := func(id string) {
		deadline := time.Now().Add(5 * time.Minute)
		for time.Now().Before(deadline) {
			req, _ := http.NewRequest(http.MethodGet, base+strings.Replace(api.FAQStatusPath, "{task_id}", id, 1), nil)
			req.Header.Set("Authorization", "Bearer "+shopToken)
			req.Header.Set("client-id", shop.ClientID)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			var st api.FAQStatusResponse
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err != nil {
				b.Fatal(err)
			}
			switch st.Body.Status {
			case api.FAQStatusSuccess:
				if st.Body.Done != importBenchRows {
					b.Fatalf("import done %d of %d", st.Body.Done, importBenchRows)
				}
				return
			case api.FAQStatusError:
				b.Fatalf("import failed: %+v", st.Body)
			}
			time.Sleep(20 * time.Millisecond)
		}
		b.Fatal("import did not finish in 5 minutes")
	}

	var (
		latencies []time.Duration
		imports   time.Duration
		failures  atomic.Int64
		seq       atomic.Int64
	)
	b.ResetTimer()
	for range b.N {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var window []time.Duration
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				local := make([]time.Duration, 0, 4096)
				for {
					select {
					case <-stop:
						mu.Lock()
						window = append(window, local...)
						mu.Unlock()
						return
					default:
					}
					n := seq.Add(1)
					d, err := converse(fmt.Sprintf("user%d", n%500), benchQuestions[n%int64(len(benchQuestions))])
					if err != nil {
						failures.Add(1)
						continue
					}
					local = append(local, d)
				}
			}()
		}
		t0 := time.Now()
		if importing {
			waitDone(upload())
		} else {
			time.Sleep(2 * time.Second)
		}
		imports += time.Since(t0)
		close(stop)
		wg.Wait()
		latencies = append(latencies, window...)
	}
	b.StopTimer()
	if f := failures.Load(); f > 0 {
		b.Fatalf("%d bot API requests failed", f)
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[int(float64(len(latencies)-1)*p)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(latencies))/imports.Seconds(), "msgs/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(latencies[len(latencies)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(imports.Seconds()/float64(b.N), "window-s")
}
