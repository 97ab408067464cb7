package sim

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/koelvoice/koel/audio/tts"
	"github.com/koelvoice/koel/kookoo"
)

// testTTS is the real espeak-ng synthesizer; the test skips without it.
func testTTS(tb testing.TB) tts.Synthesizer {
	tb.Helper()
	needEspeak(tb)
	e, err := tts.NewEspeak(tts.EspeakConfig{})
	if err != nil {
		tb.Fatalf("espeak-ng: %v", err)
	}
	return e
}

func needEspeak(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		tb.Skip("espeak-ng is not installed (make test installs it); skipping")
	}
}

// testLogger logs to the test at debug level when KOEL_TEST_LOG is set.
func testLogger(tb testing.TB) *slog.Logger {
	switch os.Getenv("KOEL_TEST_LOG") {
	case "":
		return slog.New(slog.DiscardHandler)
	case "stderr":
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// testServer is a Sim mounted on a real HTTP server.
type testServer struct {
	sim *Sim
	srv *httptest.Server
	reg *prometheus.Registry
}

// startSim starts a Sim whose PublicBaseURL is its own server; mutate
// adjusts the config (App, STT...).
func startSim(tb testing.TB, mutate func(*Config)) *testServer {
	tb.Helper()
	r := mux.NewRouter()
	srv := httptest.NewUnstartedServer(r)
	srv.Start()
	reg := prometheus.NewRegistry()
	cfg := Config{
		Logger:        testLogger(tb),
		Registerer:    reg,
		TTS:           testTTS(tb),
		PublicBaseURL: srv.URL,
		AppTimeout:    5 * time.Second,
		Open:          true,
		DialRingTime:  time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	s.Routes(r)
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
		srv.Close()
	})
	return &testServer{sim: s, srv: srv, reg: reg}
}

// appLog records the requests a test KooKoo app received.
type appLog struct {
	mu   sync.Mutex
	reqs []map[string]string
	seen chan struct{}
}

func newAppLog() *appLog { return &appLog{seen: make(chan struct{}, 1024)} }

func (l *appLog) add(r *http.Request) map[string]string {
	m := map[string]string{}
	for k, v := range r.URL.Query() {
		m[k] = v[0]
	}
	if _, ok := r.URL.Query()["event"]; !ok {
		m["event"] = "(none)"
	}
	// Every request must be one koel's own KooKoo parser accepts.
	if _, err := kookoo.ParseRequest(r); err != nil {
		m["parse_error"] = err.Error()
	}
	l.mu.Lock()
	l.reqs = append(l.reqs, m)
	l.mu.Unlock()
	l.seen <- struct{}{}
	return m
}

func (l *appLog) events() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, m := range l.reqs {
		e := m["event"]
		if p := m["parse_error"]; p != "" {
			e += " (unparsable: " + p + ")"
		}
		out = append(out, e)
	}
	return out
}

func (l *appLog) all() []map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]map[string]string(nil), l.reqs...)
}

// waitEvents waits until the app has seen n requests (the emulator's
// final request is sent after the caller hangs up).
func (l *appLog) waitEvents(tb testing.TB, n int) []string {
	tb.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for len(l.events()) < n {
		select {
		case <-l.seen:
		case <-deadline.C:
			tb.Fatalf("app saw %d requests %v, want %d", len(l.events()), l.events(), n)
		}
	}
	return l.events()
}

func xmlResponse(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/xml")
	_, _ = io.WriteString(w, body)
}
