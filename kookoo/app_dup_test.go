package kookoo

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/koelvoice/koel/audio/stt"
)

// countingSTT counts the utterances a transcriber is asked to recognise.
type countingSTT struct {
	stt.Transcriber
	starts atomic.Int64
}

func (c *countingSTT) Start(ctx context.Context, v stt.Vocabulary) (stt.Stream, error) {
	c.starts.Add(1)
	return c.Transcriber.Start(ctx, v)
}

// TestDuplicateRecordEventsOnOneNode delivers 50 copies of one Record event
// to one node at once (issue 9 defect 2): every copy gets the same answer,
// byte for byte, and the recording is fetched and transcribed once.
func TestDuplicateRecordEventsOnOneNode(t *testing.T) {
	counting := &countingSTT{Transcriber: newSphinx(t)}
	h := newHarness(t, harnessOptions{stt: counting})
	const sid = "4100000000000001"
	rec := h.recs.putPCM(t, "/dup-hours.wav", telephone(t, "what are your opening hours"))
	if code, body := h.get("demo", "sid="+sid+"&event=NewCall&"+caller); code != http.StatusOK {
		t.Fatalf("NewCall: %d %s", code, body)
	}
	hitsBefore := h.recs.hits.Load()
	query := "sid=" + sid + "&event=Record&data=" + url.QueryEscape(rec) + "&status=silence"
	const copies = 50
	bodies := make([]string, copies)
	codes := make([]int, copies)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes[i], bodies[i] = h.get("demo", query)
		}()
	}
	close(start)
	wg.Wait()
	for i := range copies {
		if codes[i] != http.StatusOK || bodies[i] != bodies[0] {
			t.Fatalf("copy %d answered %d %q; copy 0 answered %d %q", i, codes[i], bodies[i], codes[0], bodies[0])
		}
	}
	if strings.Contains(bodies[0], demoSettings.BreakMessage) {
		t.Fatalf("the copies got the break message: %s", bodies[0])
	}
	if !strings.Contains(bodies[0], "<record") {
		t.Fatalf("answer does not listen again: %s", bodies[0])
	}
	if n := counting.starts.Load(); n != 1 {
		t.Errorf("speech recognition ran %d times for %d copies, want 1", n, copies)
	}
	if n := h.recs.hits.Load() - hitsBefore; n != 1 {
		t.Errorf("recording fetched %d times, want 1", n)
	}
	if turns := h.turns(sid); len(turns) != 1 {
		t.Errorf("turns = %d, want 1", len(turns))
	}
	if got := gatheredValue(t, h.reg, "koel_kookoo_duplicate_events_total", "", ""); got != copies-1 {
		t.Errorf("duplicates counted = %v, want %d", got, copies-1)
	}
}
