package kookoo

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/koelvoice/koel/audio/stt"
)

// frameCountSTT is a transcriber whose streams report how many samples they
// got; it counts starts.
type frameCountSTT struct {
	mu     sync.Mutex
	starts int
	err    error
}

type frameCountStream struct{ n int }

func (c *frameCountSTT) Start(context.Context, stt.Vocabulary) (stt.Stream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.starts++
	if c.err != nil {
		return nil, c.err
	}
	return &frameCountStream{}, nil
}

func (s *frameCountStream) Write(p []int16) error { s.n += len(p); return nil }
func (s *frameCountStream) Partial() string       { return "" }
func (s *frameCountStream) Close(context.Context) (stt.Result, error) {
	if s.n == 0 {
		return stt.Result{}, stt.ErrEmptyAudio
	}
	return stt.Result{Text: strings.Repeat("x", s.n/StreamFrameSamples), Confidence: 1}, nil
}

// TestRecogniserFeed: the speech span is transcribed with 300 ms before and 700 ms
// after it (silence where not heard yet); a speculation is the transcript when the turn ends with the
// same span, and is redone when the caller spoke again; a turn without
// speech takes no decoder. The feed then holds exactly the audio its result
// was decoded from (ivr.HeldAudio, for the closed-vocabulary passes).
func TestRecogniserFeed(t *testing.T) {
	frame := make([]int16, StreamFrameSamples)
	feed := func(tr *frameCountSTT, frames int, steps func(f *recogniserFeed)) (*recogniserFeed, stt.Result, error) {
		f := startFeed(context.Background(), tr, stt.Vocabulary{Key: "k"})
		for range frames {
			f.write(frame)
		}
		steps(f)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, _, err := f.result(ctx)
		return f, res, err
	}
	// Speech in frames [50, 150) of 300: 30 + 100 + 70 frames decoded.
	tr := &frameCountSTT{}
	f, res, err := feed(tr, 300, func(f *recogniserFeed) { f.end(speechSpan{50, 150}) })
	if err != nil || len(res.Text) != 200 || tr.starts != 1 || f.speculated {
		t.Fatalf("plain: %d frames, %v, starts %d", len(res.Text), err, tr.starts)
	}
	held := func(name string, f *recogniserFeed, frames int) {
		t.Helper()
		pcm, ok := f.HeldPCM()
		if ok != (frames > 0) || len(pcm) != frames*StreamFrameSamples {
			t.Fatalf("%s: holds %d samples (%v), want %d frames' worth", name, len(pcm), ok, frames)
		}
	}
	held("plain", f, 200)
	// Near the start the lead is what there is; the trail not heard yet
	// is silence.
	_, res, _ = feed(&frameCountSTT{}, 120, func(f *recogniserFeed) { f.end(speechSpan{10, 100}) })
	if len(res.Text) != 170 {
		t.Fatalf("edges: %d frames, want 170", len(res.Text))
	}
	// A speculation on the final span is the result: one decode.
	tr = &frameCountSTT{}
	f, res, err = feed(tr, 200, func(f *recogniserFeed) {
		f.speculate(speechSpan{20, 120})
		waitFor(t, 5*time.Second, "the speculation", func() bool { return f.candidates.Load() == 1 })
		f.end(speechSpan{20, 120})
	})
	if err != nil || !f.speculated || tr.starts != 1 || len(res.Text) != 190 {
		t.Fatalf("speculated: %d frames, %v, speculated %v, starts %d", len(res.Text), err, f.speculated, tr.starts)
	}
	held("speculated", f, 190)
	// The caller spoke again: the final span is decoded.
	tr = &frameCountSTT{}
	f, res, err = feed(tr, 300, func(f *recogniserFeed) {
		f.speculate(speechSpan{20, 120})
		waitFor(t, 5*time.Second, "the speculation", func() bool { return f.candidates.Load() == 1 })
		f.end(speechSpan{20, 220})
	})
	if err != nil || f.speculated || tr.starts != 2 || len(res.Text) != 290 {
		t.Fatalf("spoke again: %d frames, %v, speculated %v, starts %d", len(res.Text), err, f.speculated, tr.starts)
	}
	held("spoke again", f, 290)
	// No speech: no decoder.
	tr = &frameCountSTT{}
	f, _, err = feed(tr, 300, func(f *recogniserFeed) { f.end(speechSpan{}) })
	if !errors.Is(err, stt.ErrEmptyAudio) || tr.starts != 0 {
		t.Fatalf("silent turn: %v, %d decoders taken", err, tr.starts)
	}
	held("silent turn", f, 0)
	// Before the result the feed holds nothing.
	pending := startFeed(context.Background(), &frameCountSTT{}, stt.Vocabulary{Key: "k"})
	if _, ok := pending.HeldPCM(); ok {
		t.Fatalf("an unfinished feed holds audio")
	}
	pending.end(speechSpan{})
	if _, _, err := pending.result(context.Background()); !errors.Is(err, stt.ErrEmptyAudio) {
		t.Fatalf("pending feed: %v", err)
	}
	// A recogniser that cannot start.
	f, _, err = feed(&frameCountSTT{err: stt.ErrUnavailable}, 100, func(f *recogniserFeed) { f.end(speechSpan{10, 50}) })
	if !errors.Is(err, stt.ErrUnavailable) {
		t.Fatalf("start error: %v", err)
	}
	if n := f.frames(); n != 0 {
		t.Fatalf("a finished feed keeps %d frames", n)
	}
}

// wsPair returns the client end of a loopback WebSocket whose server end
// runs serve.
func wsPair(t *testing.T, serve func(ws *websocket.Conn)) *websocket.Conn {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		serve(ws)
	}))
	t.Cleanup(srv.Close)
	ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return ws
}

// TestStreamWriterPacing: packets leave one per 10 ms with seqids that map
// back to their numbers; a segment over the queue cap is dropped;
// clearBuffer drops what is queued.
func TestStreamWriterPacing(t *testing.T) {
	type got struct {
		at  time.Time
		msg StreamMessage
	}
	msgs := make(chan got, 1024)
	ws := wsPair(t, func(ws *websocket.Conn) {
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			m, err := ParseAppMessage(data)
			if err != nil {
				t.Errorf("writer sent %s: %v", data, err)
				return
			}
			msgs <- got{time.Now(), m}
		}
	})
	w := newStreamWriter(ws, "2127", time.Second, 600*time.Millisecond, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.run(ctx)
	pcm := make([]int16, 30*StreamFrameSamples-20) // 30 packets, the last one padded
	if !w.send(writerCmd{kind: cmdAudio, pcm: pcm, first: 100}) {
		t.Fatal("send refused")
	}
	if !w.send(writerCmd{kind: cmdAudio, pcm: make([]int16, 8000), first: 130}) { // 1 s: over the 600 ms cap
		t.Fatal("send refused")
	}
	var first, lastAt time.Time
	for i := range 30 {
		g := <-msgs
		m, ok := g.msg.(StreamMedia)
		if !ok || len(m.Samples) != StreamFrameSamples {
			t.Fatalf("packet %d: %#v", i, g.msg)
		}
		if n, ok := w.packetOf(m.SeqID); !ok || n != int64(100+i) {
			t.Fatalf("packet %d has seqid %q -> %d, %v", i, m.SeqID, n, ok)
		}
		if i == 0 {
			first = g.at
		}
		lastAt = g.at
	}
	if d := lastAt.Sub(first); d < 29*StreamFrameDuration-5*time.Millisecond {
		t.Fatalf("30 packets in %v: not paced at 10 ms", d)
	}
	if w.drop.Load() != 1 {
		t.Fatalf("drops = %d, want the over-cap segment dropped", w.drop.Load())
	}
	if _, ok := w.packetOf("foreign-seqid"); ok {
		t.Fatal("a foreign seqid was taken for ours")
	}
	// A long segment, then clearBuffer: the command goes out and the rest
	// of the segment does not.
	w.send(writerCmd{kind: cmdAudio, pcm: make([]int16, 40*StreamFrameSamples), first: 200})
	<-msgs
	w.send(writerCmd{kind: cmdClear})
	deadline := time.After(5 * time.Second)
	for {
		select {
		case g := <-msgs:
			if c, ok := g.msg.(StreamCommand); ok && c.Command == CommandClearBuffer {
				sent := w.sent.Load()
				select {
				case g := <-msgs:
					t.Fatalf("after clearBuffer the writer sent %#v", g.msg)
				case <-time.After(100 * time.Millisecond):
				}
				if sent >= 239 {
					t.Fatalf("the whole segment was sent before clearBuffer")
				}
				return
			}
		case <-deadline:
			t.Fatal("no clearBuffer")
		}
	}
}

// TestStreamWriterSlowReader: a peer that never reads stalls only the
// writer: the session's sends never block; they are refused once the
// writer's queue is full, and the session then leaves the stream.
func TestStreamWriterSlowReader(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	ws := wsPair(t, func(*websocket.Conn) { <-block })
	w := newStreamWriter(ws, "2127", 300*time.Millisecond, time.Hour, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.run(ctx)
	refused := false
	start := time.Now()
	for i := range 100000 {
		if !w.send(writerCmd{kind: cmdAudio, pcm: make([]int16, 8000), first: int64(i) * 100}) {
			refused = true
			break
		}
		if i%64 == 0 {
			w.send(writerCmd{kind: cmdCommand, command: CommandClearBuffer})
		}
	}
	if !refused {
		t.Fatal("sends were never refused")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("sending took %v: the session would have been stalled", d)
	}
}
