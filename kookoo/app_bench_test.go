package kookoo

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio/audiotest"
)

// BenchmarkRecordEvent measures a Record event for a 3 s utterance: the
// loopback fetch of the WAV, decode, pocketsphinx with the FAQ vocabulary,
// the engine and FAQ bot on SQLite, the call update and the XML answer. It
// reports the p50 and p95 of the per-event time (target p95 <= 150 ms on 2
// cores).
func BenchmarkRecordEvent(b *testing.B) {
	h := newHarness(b, harnessOptions{stt: newSphinx(b)})
	speech := telephone(b, "what are your opening hours")
	utterance := audiotest.Concat(speech, audiotest.Silence(3*time.Second-speech.Duration()))
	if d := utterance.Duration(); d < 3*time.Second {
		b.Fatalf("utterance is %v", d)
	}
	h.recs.putPCM(b, "/bench/0.wav", utterance)
	data := h.recs.files["/bench/0.wav"]
	const sid = "6000000000000001"
	if code, body := h.get("demo", "sid="+sid+"&event=NewCall&"+caller); code != http.StatusOK {
		b.Fatalf("NewCall: %d %s", code, body)
	}
	// Warm the recogniser's vocabulary build and decoder pool.
	h.recs.put("/bench/warm.wav", data)
	h.get("demo", "sid="+sid+"&event=Record&data="+url.QueryEscape(h.recs.URL+"/bench/warm.wav"))

	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		u := h.recs.put(fmt.Sprintf("/bench/%d.wav", i+1), data)
		q := "sid=" + sid + "&event=Record&status=silence&data=" + url.QueryEscape(u)
		b.StartTimer()
		start := time.Now()
		code, body := h.get("demo", q)
		times = append(times, time.Since(start))
		if code != http.StatusOK || !strings.Contains(body, "nine in the morning") || !strings.Contains(body, "<record") {
			b.Fatalf("event %d: %d %s", i, code, body)
		}
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(times[(len(times)*95)/100].Microseconds())/1000, "p95-ms")
}

// BenchmarkNewCall measures NewCall handling through the router on SQLite
// (connection lookup, call insert, XML answer), in parallel (target >=
// 5,000 requests/s).
func BenchmarkNewCall(b *testing.B) {
	h := newHarness(b, harnessOptions{})
	var n atomic.Int64
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sid := "7" + strconv.FormatInt(n.Add(1), 10)
			code, _ := h.get("demo", "event=NewCall&sid="+sid+"&"+caller)
			if code != http.StatusOK {
				b.Errorf("NewCall answered %d", code)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
