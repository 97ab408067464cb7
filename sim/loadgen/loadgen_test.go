package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/tts"
	"github.com/koelvoice/koel/sim"
)

// fakeApp is a strict KooKoo application: it checks each event's
// parameters, fetches each recording from the URL given and decodes it,
// and answers as koel does (record, then a menu once, then hang up on the
// third recording).
type fakeApp struct {
	t      *testing.T
	mu     sync.Mutex
	events map[string][]string // sid → events
	heard  int
}

func (a *fakeApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sid, ev := q.Get("sid"), q.Get("event")
	if r.Method != http.MethodGet || sid == "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.events[sid] = append(a.events[sid], ev)
	n := len(a.events[sid])
	a.mu.Unlock()
	switch ev {
	case "NewCall":
		if q.Get("cid") == "" || q.Get("called_number") == "" {
			http.Error(w, "NewCall without caller", http.StatusBadRequest)
			return
		}
	case "Record":
		resp, err := http.Get(q.Get("data"))
		if err != nil || resp.StatusCode != http.StatusOK {
			http.Error(w, "recording not fetched", http.StatusBadGateway)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		p, err := audio.DecodeWAV(bytes.NewReader(b), 1<<22)
		if err != nil || p.Rate != audio.SampleRate || p.Duration() < 500*time.Millisecond || q.Get("status") != "silence" {
			http.Error(w, "recording not speech", http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.heard++
		a.mu.Unlock()
		if n == 2 {
			fmt.Fprintf(w, `<response sid="%s"><collectdtmf l="1" o="3000"><playtext>Press 1 for sales.</playtext></collectdtmf></response>`, sid)
			return
		}
		if n >= 5 {
			fmt.Fprintf(w, `<response sid="%s"><playtext>Goodbye.</playtext><hangup/></response>`, sid)
			return
		}
	case "GotDTMF":
		if q.Has("data") && q.Get("data") != "" {
			http.Error(w, "a key the caller did not press", http.StatusBadRequest)
			return
		}
	case "Hangup":
		w.WriteHeader(http.StatusOK)
		return
	default:
		http.Error(w, "unknown event", http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, `<response sid="%s"><playtext>Tell me.</playtext><record format="wav" silence="3" maxduration="10">r</record></response>`, sid)
}

func testUtterances() []Utterance {
	var us []Utterance
	for i := range 3 {
		p := audio.PCM{Rate: audio.SampleRate, Samples: make([]int16, audio.SampleRate*(i+1))}
		for j := range p.Samples {
			p.Samples[j] = int16((j * 37 % 2000) - 1000)
		}
		var buf bytes.Buffer
		_ = audio.EncodeWAV(&buf, p, audio.EncodingPCM16)
		us = append(us, Utterance{Text: fmt.Sprint("utterance ", i), WAV: buf.Bytes(), Speech: p.Duration()})
	}
	return us
}

func TestKooKooCallShape(t *testing.T) {
	app := &fakeApp{t: t, events: map[string][]string{}}
	srv := httptest.NewServer(app)
	defer srv.Close()
	rep, err := Run(context.Background(), Config{Scenario: ScenarioKooKoo, AppURL: srv.URL + "/ivr?app=1", Sessions: 3, Concurrency: 3, Turns: 5,
		Utterances: testUtterances(), Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || rep.SessionsOK != 3 || rep.Target != srv.URL+"/ivr?app=1" {
		t.Fatalf("report %+v", rep)
	}
	// NewCall, Record, (menu) GotDTMF, Record, Record → hang up by the app.
	want := "NewCall Record GotDTMF Record Record"
	for sid, evs := range app.events {
		if got := strings.Join(evs, " "); got != want {
			t.Errorf("%s: events %q, want %q", sid, got, want)
		}
	}
	if app.heard != 9 || rep.Turns != 9 || rep.Latency["record"].Count != 9 || rep.Latency["gotdtmf"].Count != 3 {
		t.Errorf("heard %d, report %+v", app.heard, rep)
	}
}

func TestKooKooAppErrorsAreCounted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("event") == "Record" {
			w.Write([]byte("<html>oops</html>"))
			return
		}
		fmt.Fprint(w, `<response><record>r</record></response>`)
	}))
	defer srv.Close()
	rep, err := Run(context.Background(), Config{Scenario: ScenarioKooKoo, AppURL: srv.URL, Sessions: 4, Concurrency: 2, Utterances: testUtterances()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 4 || rep.SessionsOK != 0 || len(rep.ErrorSamples) != 1 || !strings.Contains(rep.ErrorSamples[0], "not a KooKoo <response>") {
		t.Fatalf("report %+v", rep)
	}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil || !strings.Contains(buf.String(), "errors 4") {
		t.Fatalf("text report %q (%v)", buf.String(), err)
	}
}

func TestCheckLoopback(t *testing.T) {
	ctx := context.Background()
	for _, ok := range []string{"http://127.0.0.1:8080", "http://localhost:1/x", "https://[::1]:9/"} {
		if err := CheckLoopback(ctx, ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"http://10.0.0.1/", "http://192.0.2.1:80", "http://[2001:db8::1]/"} {
		if err := CheckLoopback(ctx, bad); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("%s: %v, want ErrNotLoopback", bad, err)
		}
	}
	for _, bad := range []string{"ftp://127.0.0.1/", "127.0.0.1:80", ""} {
		if err := CheckLoopback(ctx, bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestRecorderMemoryIsBounded: a run's latencies are kept up to
// maxLatencySamples per kind however many are observed (the in-process
// soak's heap grew 0.7 MB/min with every one kept), with the count and
// the maximum exact and the percentiles those of a uniform sample.
func TestRecorderMemoryIsBounded(t *testing.T) {
	r := newRecorder()
	n := 3 * maxLatencySamples
	for i := range n {
		r.observe("message", time.Duration(i%1000+1)*time.Millisecond) // uniform on 1..1000 ms
	}
	r.observe("message", time.Hour)
	if kept := len(r.lat["message"].kept); kept != maxLatencySamples {
		t.Fatalf("kept %d latencies of %d, want %d", kept, n+1, maxLatencySamples)
	}
	l := r.report(Config{}, time.Second).Latency["message"]
	if l.Count != n+1 || l.Max != float64(time.Hour.Milliseconds()) {
		t.Fatalf("count %d, max %v; want %d and the exact maximum", l.Count, l.Max, n+1)
	}
	// The sample's median of a uniform 1..1000 ms is 500 ms within a few ms
	// (its standard error at 100,000 samples is under 1 ms).
	if l.P50 < 490 || l.P50 > 510 || l.P99 < 980 || l.P99 > 1000 {
		t.Fatalf("p50 %v, p99 %v from the reservoir; want about 500 and 990", l.P50, l.P99)
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := summarize(ds)
	want := Latency{Count: 100, P50: 50, P90: 90, P95: 95, P99: 99, Max: 100}
	if got != want {
		t.Fatalf("summarize = %+v, want %+v", got, want)
	}
	if (summarize(nil) != Latency{}) {
		t.Fatal("empty summary")
	}
}

func TestPromptTime(t *testing.T) {
	r := reply{texts: []string{"Welcome to Bluebird Electronics.", "How can I help you?"}}
	if got := promptTime(r); got < 3*time.Second || got > 3500*time.Millisecond {
		t.Fatalf("a prompt of 9 words takes %v, want 3.3 s", got)
	}
}

// FuzzParseReply: any answer is parsed or refused without panicking, and a
// parsed one came from a <response>.
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{
		`<response sid="1"><playtext>hi</playtext><record format="wav">r</record></response>`,
		`<?xml version="1.0"?><Response><collectdtmf l="1"><playtext>x</playtext></collectdtmf></Response>`,
		`<response><dial>0804</dial><hangup/></response>`, ``, `<html>`, `<response><playtext>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseReply(b)
		if err == nil && !bytes.Contains(bytes.ToLower(b), []byte("response")) {
			t.Fatalf("parsed %q without a response element: %+v", b, r)
		}
	})
}

// startSoftphone is koel's softphone server in process: a sim on a real
// HTTP server with its /metrics, taking every offer (development mode)
// with at most handshakes negotiating at once.
func startSoftphone(t *testing.T, handshakes int) string {
	t.Helper()
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		t.Skip("espeak-ng is not installed (make test installs it)")
	}
	synth, err := tts.NewEspeak(tts.EspeakConfig{})
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	srv := httptest.NewServer(r)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	s, err := sim.New(sim.Config{TTS: synth, Registerer: reg, PublicBaseURL: srv.URL, Open: true, MaxHandshakes: handshakes})
	if err != nil {
		t.Fatal(err)
	}
	s.Routes(r)
	r.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(func() {
		_ = s.Close()
		srv.Close()
	})
	return srv.URL
}

// TestEchoScenario: softphone calls over real WebRTC on loopback to the
// echo app, two arriving on a ramp and a burst of three at once through a
// single handshake slot: every call connects, and every frame the callers
// sent is accounted for (echoed or lost), none heard twice or corrupt.
func TestEchoScenario(t *testing.T) {
	target := startSoftphone(t, 1)
	rep, err := Run(context.Background(), Config{Scenario: ScenarioEcho, Target: target, Sessions: 5, Concurrency: 5, Burst: 3, RampRate: 20,
		Duration: 4 * time.Second, Timeout: 30 * time.Second, sampleEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_ = rep.WriteText(&buf)
	t.Log("\n" + buf.String())
	f := rep.Frames
	if rep.Errors != 0 || rep.SessionsOK != 5 || f == nil || f.Connected != 5 || f.BurstConnected != 3 {
		t.Fatalf("report %+v, frames %+v", rep, f)
	}
	if f.Sent == 0 || f.Echoed == 0 || f.Echoed+f.Lost != f.Sent || f.Duplicates != 0 || f.Corrupt != 0 {
		t.Fatalf("frames %+v", f)
	}
	if rep.LateFrames < 0 || f.HandshakesQueued < 0 || f.PeakCalls < 1 {
		t.Fatalf("server metrics not read: late %d, queued %d, peak %d", rep.LateFrames, f.HandshakesQueued, f.PeakCalls)
	}
	if rep.Latency["handshake"].Count != 2 || rep.Latency["handshake_burst"].Count != 3 || rep.Latency["echo_rtt"].Count != f.Echoed {
		t.Fatalf("latencies %+v", rep.Latency)
	}
	// The server's resources, from its /metrics (here the test process,
	// generator included): CPU used, and goroutines per streaming call.
	x := rep.Resources
	if x == nil {
		t.Fatal("no resources in the report: the target's process metrics were not read")
	}
	if x.ServerCPUSeconds <= 0 || x.ServerCores <= 0 || x.GeneratorCPUSeconds <= 0 || x.BaseRSSMB <= 0 || x.PeakRSSMB < x.BaseRSSMB {
		t.Errorf("resources %+v", *x)
	}
	if x.PeakSessions < 1 || x.PeakSessions > 5 || x.PeakGoroutines <= x.BaseGoroutines || x.GoroutinesPerSession <= 0 {
		t.Errorf("resources %+v: want 1..5 calls streaming at a sample, each with goroutines of its own", *x)
	}
	if !strings.Contains(buf.String(), "calls up 5 (burst 3)") || !strings.Contains(buf.String(), "server cpu ") {
		t.Fatalf("text report %q", buf.String())
	}
}

func TestEchoScenarioRefusesBadShapes(t *testing.T) {
	for _, cfg := range []Config{
		{Scenario: ScenarioEcho, Target: "http://127.0.0.1:1", Sessions: 5, Concurrency: 2},
		{Scenario: ScenarioEcho, Target: "http://127.0.0.1:1", Sessions: 2, Concurrency: 2, Burst: 3},
		{Scenario: ScenarioEcho, Target: "http://127.0.0.1:1", Sessions: 2, Concurrency: 2, RampRate: -1},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}
