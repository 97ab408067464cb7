package kookoo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/stt"
)

// gatedSTT is a transcriber whose utterances finish only when the test
// lets them, and which counts the utterances in flight.
type gatedSTT struct {
	gate     chan struct{}
	started  chan struct{}
	inFlight atomic.Int64
	max      atomic.Int64
	starts   atomic.Int64
}

func (g *gatedSTT) Start(ctx context.Context, _ stt.Vocabulary) (stt.Stream, error) {
	g.starts.Add(1)
	n := g.inFlight.Add(1)
	for {
		m := g.max.Load()
		if n <= m || g.max.CompareAndSwap(m, n) {
			break
		}
	}
	g.started <- struct{}{}
	return &gatedStream{g: g}, nil
}

type gatedStream struct {
	g       *gatedSTT
	samples int
}

func (s *gatedStream) Write(pcm []int16) error { s.samples += len(pcm); return nil }
func (s *gatedStream) Partial() string         { return "" }
func (s *gatedStream) Close(ctx context.Context) (stt.Result, error) {
	defer s.g.inFlight.Add(-1)
	select {
	case <-s.g.gate:
	case <-ctx.Done():
		return stt.Result{}, ctx.Err()
	}
	return stt.Result{Text: "what are your opening hours", Confidence: 0.9, Words: 5}, nil
}

// TestRecordingWorkIsBounded sends more concurrent recordings than there
// are recording slots (issue 9 defect 11): at most MaxRecordingWork are
// fetched and transcribed at once, the others are answered at once with the
// hold message and no input verb, and KooKoo's follow-up request (no event)
// brings each held recording back and gets its answer.
func TestRecordingWorkIsBounded(t *testing.T) {
	const slots, calls = 2, 6
	g := &gatedSTT{gate: make(chan struct{}), started: make(chan struct{}, calls)}
	h := newHarness(t, harnessOptions{stt: g, maxWork: slots, queueWait: -1})
	rec := h.recs.putPCM(t, "/work.wav", audio.PCM{Rate: audio.SampleRate, Samples: make([]int16, 8000)})
	sid := func(i int) string { return fmt.Sprintf("81%014d", i) }
	for i := range calls {
		if code, body := h.get("demo", "sid="+sid(i)+"&event=NewCall&"+caller); code != http.StatusOK {
			t.Fatalf("NewCall: %d %s", code, body)
		}
	}
	record := func(i int) (int, string) {
		return h.get("demo", "sid="+sid(i)+"&event=Record&status=silence&data="+url.QueryEscape(rec))
	}
	var wg sync.WaitGroup
	answers := make([]string, calls)
	for i := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, answers[i] = record(i)
		}()
	}
	for range slots {
		<-g.started // both slots are transcribing
	}
	hold := `<playtext>One moment please.</playtext></response>`
	for i := slots; i < calls; i++ {
		code, body := record(i)
		if code != http.StatusOK || !strings.HasSuffix(body, hold) || strings.Contains(body, "<record") {
			t.Fatalf("call %d beyond the bound answered %d %s, want the hold message without an input verb", i, code, body)
		}
	}
	close(g.gate)
	wg.Wait()
	for i := range slots {
		if !strings.Contains(answers[i], "nine in the morning") {
			t.Errorf("call %d answered %s", i, answers[i])
		}
	}
	// KooKoo's follow-up after a response without an input verb.
	for i := slots; i < calls; i++ {
		code, body := h.get("demo", "sid="+sid(i))
		if code != http.StatusOK || !strings.Contains(body, "nine in the morning") || !strings.Contains(body, "<record") {
			t.Errorf("follow-up of held call %d answered %d %s", i, code, body)
		}
		if turns := h.turns(sid(i)); len(turns) != 1 || turns[0].RecordingURL != rec {
			t.Errorf("held call %d has turns %+v, want the held recording's", i, turns)
		}
	}
	if m := g.max.Load(); m > slots {
		t.Errorf("%d recordings transcribed at once, bound is %d", m, slots)
	}
	if n := g.starts.Load(); n != calls {
		t.Errorf("%d transcriptions for %d recordings", n, calls)
	}
	if got := gatheredValue(t, h.reg, "koel_call_holds_total", "", ""); got != calls-slots {
		t.Errorf("holds counted = %v, want %d", got, calls-slots)
	}
}

// TestLargeRecordingStreamsInBoundedMemory decodes a 7 MiB WAV recording (near the default 8 MiB cap)
// through the app's audio source: it is streamed, so the bytes allocated
// stay a small fraction of the recording (decoding it whole took about
// three times its size).
func TestLargeRecordingStreamsInBoundedMemory(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	const samples = 7 << 20 / 2 // 7 MiB of 16-bit PCM, under the fetcher's default 8 MiB cap
	pcm := audio.PCM{Rate: audio.SampleRate, Samples: make([]int16, samples)}
	for i := range pcm.Samples {
		pcm.Samples[i] = int16(i % 2000)
	}
	u := h.recs.putPCM(t, "/large.wav", pcm)
	pcm.Samples = nil
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := h.app.OpenAudio(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]int16, 4000)
	total := 0
	for {
		n, err := r.ReadPCM(buf)
		total += n
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	runtime.ReadMemStats(&after)
	if total != samples {
		t.Errorf("read %d samples, want %d", total, samples)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("7 MiB recording streamed with %d KiB allocated", alloc>>10)
	if alloc > 512<<10 {
		t.Errorf("streaming a 7 MiB recording allocated %d KiB, want under 512 KiB", alloc>>10)
	}
}
