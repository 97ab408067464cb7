package tts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/koelvoice/koel/audio"
)

func newTestEspeak(tb testing.TB) *Espeak {
	tb.Helper()
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		tb.Skip("espeak-ng not installed (make test installs it); skipping")
	}
	e, err := NewEspeak(EspeakConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func TestEspeakSynthesize(t *testing.T) {
	e := newTestEspeak(t)
	ctx := t.Context()
	slow, err := e.Synthesize(ctx, "Our stores are open from nine in the morning.", Voice{Rate: 120})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := e.Synthesize(ctx, "Our stores are open from nine in the morning.", Voice{Name: "en-gb", Rate: 300})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []audio.PCM{slow, fast} {
		if p.Rate != audio.SampleRate {
			t.Fatalf("rate %d, want %d", p.Rate, audio.SampleRate)
		}
		var peak int16
		for _, s := range p.Samples {
			peak = max(peak, s, -s)
		}
		if peak < 1000 {
			t.Errorf("peak %d: no speech", peak)
		}
	}
	if d1, d2 := slow.Duration(), fast.Duration(); d2 >= d1*3/4 {
		t.Errorf("300 wpm lasts %v, 120 wpm %v: rate ignored", d2, d1)
	}
}

// Text that looks like an option is spoken, not obeyed.
func TestEspeakTextIsNeverAnOption(t *testing.T) {
	e := newTestEspeak(t)
	p, err := e.Synthesize(t.Context(), "--version", Voice{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Duration() < 200e6 {
		t.Errorf("only %v of audio for %q", p.Duration(), "--version")
	}
}

func TestEspeakBadInput(t *testing.T) {
	e := newTestEspeak(t)
	tests := []struct {
		name  string
		text  string
		voice Voice
		want  error
	}{
		{"empty", "", Voice{}, ErrEmptyText},
		{"blank", " \n\t ", Voice{}, ErrEmptyText},
		{"huge", strings.Repeat("hello ", 1000), Voice{}, ErrTextTooLong},
		{"control", "hello\x00world", Voice{}, ErrInvalidText},
		{"not utf8", "hello \xff", Voice{}, ErrInvalidText},
		{"voice is an option", "hello", Voice{Name: "--help"}, ErrInvalidVoice},
		{"voice with space", "hello", Voice{Name: "en us"}, ErrInvalidVoice},
		{"rate too low", "hello", Voice{Rate: 5}, ErrInvalidVoice},
		{"rate too high", "hello", Voice{Rate: 5000}, ErrInvalidVoice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Synthesize(t.Context(), tt.text, tt.voice)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("unknown voice", func(t *testing.T) {
		if _, err := e.Synthesize(t.Context(), "hello", Voice{Name: "zz-nonexistent"}); err == nil {
			t.Fatal("want an error for an unknown voice")
		}
	})
}

func TestNewEspeakMissingBinary(t *testing.T) {
	_, err := NewEspeak(EspeakConfig{Binary: "/nonexistent/espeak-ng"})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

// fakeSynth renders a tone whose length depends on the text, counting
// calls; if gate is set, each call waits on it.
type fakeSynth struct {
	calls   atomic.Int32
	gate    chan struct{}
	started chan struct{} // if set, receives one value per call
	err     error
}

func (f *fakeSynth) Synthesize(ctx context.Context, text string, v Voice) (audio.PCM, error) {
	f.calls.Add(1)
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return audio.PCM{}, ctx.Err()
		}
	}
	if f.err != nil {
		return audio.PCM{}, f.err
	}
	s := make([]int16, 100*len(text)+v.Rate)
	for i := range s {
		s[i] = int16(i % 1000)
	}
	return audio.PCM{Rate: audio.SampleRate, Samples: s}, nil
}

func TestCacheHitsAndKeys(t *testing.T) {
	f := &fakeSynth{}
	c, err := NewCache(f, CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	a1, _ := c.Synthesize(ctx, "hello", Voice{Name: "en-us"})
	a1.Samples[0] = 12345 // callers own their copy
	a2, _ := c.Synthesize(ctx, "hello", Voice{Name: "en-us"})
	if got := f.calls.Load(); got != 1 {
		t.Fatalf("next called %d times for one key", got)
	}
	if a2.Samples[0] == 12345 {
		t.Fatal("cache returned a shared slice")
	}
	for _, v := range []Voice{{Name: "en-gb"}, {Name: "en-us", Rate: 200}} {
		if _, err := c.Synthesize(ctx, "hello", v); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.calls.Load(); got != 3 {
		t.Fatalf("next called %d times, want 3 (voice and rate are part of the key)", got)
	}
}

func TestCacheErrorsNotCached(t *testing.T) {
	f := &fakeSynth{err: errors.New("boom")}
	c, _ := NewCache(f, CacheConfig{})
	for range 2 {
		if _, err := c.Synthesize(t.Context(), "x", Voice{}); err == nil {
			t.Fatal("want error")
		}
	}
	if f.calls.Load() != 2 {
		t.Fatalf("calls = %d, want 2", f.calls.Load())
	}
}

func TestCacheConcurrentMissRendersOnce(t *testing.T) {
	f := &fakeSynth{gate: make(chan struct{}), started: make(chan struct{}, 8)}
	c, _ := NewCache(f, CacheConfig{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := c.Synthesize(context.Background(), "same", Voice{})
			errs <- err
		})
	}
	// Release the single render once it has started.
	<-f.started
	close(f.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := f.calls.Load(); got != 1 {
		t.Fatalf("rendered %d times", got)
	}
}

func TestCacheEvictsToBudget(t *testing.T) {
	f := &fakeSynth{}
	c, _ := NewCache(f, CacheConfig{MaxMemoryBytes: 5000}) // each entry: 2*100*len bytes
	for _, s := range []string{"aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"} {
		if _, err := c.Synthesize(t.Context(), s, Voice{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.MemoryBytes(); got > 5000 {
		t.Fatalf("holds %d bytes, budget 5000", got)
	}
	// The oldest entry was evicted: asking again renders it.
	before := f.calls.Load()
	_, _ = c.Synthesize(t.Context(), "aaaaaaaaaa", Voice{})
	if f.calls.Load() != before+1 {
		t.Fatal("evicted entry was not rendered again")
	}
}

func TestCacheDiskSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	f := &fakeSynth{}
	c1, err := NewCache(f, CacheConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	want, err := c1.Synthesize(t.Context(), "persist me", Voice{Name: "en-us"})
	if err != nil {
		t.Fatal(err)
	}
	broken := &fakeSynth{err: errors.New("must not be called")}
	c2, _ := NewCache(broken, CacheConfig{Dir: dir})
	got, err := c2.Synthesize(t.Context(), "persist me", Voice{Name: "en-us"})
	if err != nil {
		t.Fatal(err)
	}
	if !equalPCM(got, want) {
		t.Fatal("disk entry differs from the rendering")
	}
}

func equalPCM(a, b audio.PCM) bool {
	if a.Rate != b.Rate || len(a.Samples) != len(b.Samples) {
		return false
	}
	for i := range a.Samples {
		if a.Samples[i] != b.Samples[i] {
			return false
		}
	}
	return true
}

// fakeSpeechServer is an OpenAI /v1/audio/speech server answering a
// 24 kHz tone WAV.
func fakeSpeechServer(t *testing.T, status int, body []byte) (*httptest.Server, *speechRequest) {
	t.Helper()
	var got speechRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/audio/speech" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer sekret" {
			http.Error(w, "bad key", http.StatusUnauthorized)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func toneWAV(t *testing.T, rate, n int) []byte {
	t.Helper()
	s := make([]int16, n)
	for i := range s {
		s[i] = int16((i * 97) % 2000)
	}
	var b bytes.Buffer
	if err := audio.EncodeWAV(&b, audio.PCM{Rate: rate, Samples: s}, audio.EncodingPCM16); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestHTTPSynthesize(t *testing.T) {
	srv, got := fakeSpeechServer(t, http.StatusOK, toneWAV(t, 24000, 24000))
	h, err := NewHTTP(HTTPConfig{BaseURL: srv.URL, APIKey: "sekret", Model: "kokoro"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.Synthesize(t.Context(), "Hello there", Voice{Rate: 350})
	if err != nil {
		t.Fatal(err)
	}
	if p.Rate != audio.SampleRate || len(p.Samples) != 8000 {
		t.Fatalf("got %d Hz, %d samples; want 8000 Hz, 8000 samples", p.Rate, len(p.Samples))
	}
	want := speechRequest{Model: "kokoro", Input: "Hello there", Voice: "alloy", ResponseFormat: "wav", Speed: 2}
	if *got != want {
		t.Fatalf("request %+v, want %+v", *got, want)
	}
}

func TestHTTPErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   []byte
		key    string
		want   error
	}{
		{"server error", http.StatusInternalServerError, []byte("down"), "sekret", ErrRemote},
		{"wrong key", http.StatusOK, nil, "wrong", ErrRemote},
		{"not audio", http.StatusOK, []byte("<html>"), "sekret", ErrRemote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeSpeechServer(t, tt.status, tt.body)
			h, _ := NewHTTP(HTTPConfig{BaseURL: srv.URL, APIKey: tt.key})
			_, err := h.Synthesize(t.Context(), "hi", Voice{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), tt.key) {
				t.Fatalf("error leaks the API key: %v", err)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		h, _ := NewHTTP(HTTPConfig{BaseURL: srv.URL})
		if _, err := h.Synthesize(t.Context(), "hi", Voice{}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
	t.Run("bad base url", func(t *testing.T) {
		if _, err := NewHTTP(HTTPConfig{BaseURL: "ftp://x"}); err == nil {
			t.Fatal("want error")
		}
	})
}

func FuzzCheckInput(f *testing.F) {
	for _, s := range []string{"hello", "", "--help", "en-us+f2", "a\x00b", "\xff", strings.Repeat("x", 70)} {
		f.Add(s, s, 0)
	}
	f.Fuzz(func(t *testing.T, text, name string, rate int) {
		if out, err := checkText(text, 256); err == nil {
			if out == "" || len(out) > 256 || strings.TrimSpace(out) != out {
				t.Fatalf("accepted %q as %q", text, out)
			}
		}
		if err := checkVoice(Voice{Name: name, Rate: rate}); err == nil && strings.HasPrefix(name, "-") {
			t.Fatalf("accepted option-like voice %q", name)
		}
	})
}

func BenchmarkEspeakCold(b *testing.B) {
	e := newTestEspeak(b)
	for b.Loop() {
		if _, err := e.Synthesize(b.Context(), "Our stores are open from nine in the morning to nine in the evening.", Voice{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCacheHit(b *testing.B) {
	e := newTestEspeak(b)
	c, _ := NewCache(e, CacheConfig{})
	const text = "Our stores are open from nine in the morning to nine in the evening."
	if _, err := c.Synthesize(b.Context(), text, Voice{}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Synthesize(b.Context(), text, Voice{}); err != nil {
			b.Fatal(err)
		}
	}
}
