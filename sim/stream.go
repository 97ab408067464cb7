package sim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/kookoo"
)

// The emulator's side of <stream> (shared/spec/kookoo-stream.md): KooKoo
// opens the app's WebSocket, sends start (with the verb's x-uui as
// x_headers), a 16 kHz calibration packet and then the caller's audio as
// 10 ms media messages (each 20 ms PCMU frame from the caller becomes two);
// it plays the app's packets to the caller and acknowledges each one that
// carried a seqid with a mark once played; clearBuffer drops what is queued
// and callDisconnect ends the call. When the app closes the socket the
// emulator requests the app with event=Stream and goes on with its XML; a
// hang-up during the stream sends stop and then Hangup with
// process=stream.

// Stream limits of the emulator.
const (
	// streamDialTimeout bounds opening the app's WebSocket.
	streamDialTimeout = 5 * time.Second
	// streamWriteTimeout bounds one write to the app; a slower app breaks
	// the stream.
	streamWriteTimeout = 2 * time.Second
	// streamOutQueue bounds the messages waiting to be written to the app
	// (frames and marks, about 2.5 s); more are dropped and counted.
	streamOutQueue = 512
	// streamMaxQueued bounds the app audio waiting to be played, in 20 ms
	// frames (one minute); an app that sends faster is cut off.
	streamMaxQueued = 3000
	// streamPairWait is how long a lone 10 ms app packet waits for its
	// pair before it is played padded with silence.
	streamPairWait = 30 * time.Millisecond
	// streamQuiet is how long after the app's audio has played out the
	// caller's UI is told the app listens (EventListen, mode stream): the
	// stream itself never says so.
	streamQuiet = time.Second
)

// errStreamDisconnect is the app's callDisconnect.
var errStreamDisconnect = errors.New("sim: the app sent callDisconnect")

// streamStats are one stream's figures, shown at its end.
type streamStats struct {
	framesIn, framesOut, marks, clears, dropped int64
}

// streamURL applies the URL policy to a <stream> URL: a ws(s) URL on this
// server is allowed, anything else must pass the policy as its http(s)
// twin.
func (s *Sim) streamURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || (u.Scheme != "ws" && u.Scheme != "wss") {
		return nil, fmt.Errorf("%w: <stream> url %q is not an absolute ws(s) URL", ErrApp, redactURL(u))
	}
	twin := *u
	twin.Scheme = map[string]string{"ws": "http", "wss": "https"}[u.Scheme]
	if s.isLocal(&twin) {
		return u, nil
	}
	if err := s.cfg.AllowURL(&twin); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrURLNotAllowed, redactURL(u), err)
	}
	return u, nil
}

// stream runs a <stream>: it bridges the caller to the app's WebSocket
// until the app closes it (then event=Stream), the app sends
// callDisconnect, or the caller hangs up.
func (c *call) stream(ctx context.Context, v kookoo.Stream) (url.Values, error) {
	c.flushTurn()
	c.process = "stream"
	u, err := c.s.streamURL(v.URL)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, streamDialTimeout)
	hc := *http.DefaultClient
	if c.s.cfg.HTTPClient != nil {
		hc = *c.s.cfg.HTTPClient
	}
	hc.Timeout = 0 // the dial context bounds it; a timeout would cut the socket
	ws, _, err := websocket.Dial(dctx, u.String(), &websocket.DialOptions{HTTPClient: &hc})
	cancel()
	if err != nil {
		// KooKoo could not open the stream; it goes on with event=Stream.
		c.leg.emit(Event{Type: EventStream, Mode: "error", Text: "could not open " + redactURL(u) + ": " + err.Error()})
		return c.values(kookoo.EventStream, "", ""), nil
	}
	ws.SetReadLimit(kookoo.MaxStreamMessageBytes)
	c.leg.emit(Event{Type: EventStream, Mode: "open", Text: redactURL(u)})
	b := &streamBridge{c: c, ws: ws, out: make(chan []byte, streamOutQueue), in: make(chan kookoo.StreamMessage, 64),
		readErr: make(chan error, 1), marks: map[uint64][]string{}}
	return b.run(ctx, v)
}

// streamBridge is one running stream. The call's goroutine owns it; a
// reader and a writer goroutine talk to the socket.
type streamBridge struct {
	c       *call
	ws      *websocket.Conn
	out     chan []byte
	in      chan kookoo.StreamMessage
	readErr chan error
	st      streamStats

	// pending is a lone app packet waiting for its pair.
	pending    []int16
	pendingSeq string
	pendingAt  time.Time
	// marks maps each queued play item to the seqids it carries.
	marks map[uint64][]string
	// spoke is set when app audio arrives and cleared when the caller's
	// UI is told the app listens; lastPlayed is when its last item played.
	spoke      bool
	lastPlayed time.Time
}

func (b *streamBridge) run(ctx context.Context, v kookoo.Stream) (url.Values, error) {
	c := b.c
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	writerDone := make(chan struct{})
	readerDone := make(chan struct{})
	if !c.leg.goTracked(func() { defer close(writerDone); b.write(sctx) }) {
		close(writerDone)
	}
	if !c.leg.goTracked(func() { defer close(readerDone); b.read(sctx) }) {
		close(readerDone)
	}
	start, _ := kookoo.MarshalStreamMessage(kookoo.StreamStart{
		UCID: c.sid, DID: c.s.cfg.CalledNumber, CallID: c.opts.cid, XHeaders: v.XUUI,
		Media: kookoo.StreamFormat{Encoding: "PCMU", SampleRate: kookoo.StreamRate, Channels: 1, BitsPerSample: 16},
	})
	b.send(start)
	b.send(kookoo.AppendMediaMessage(nil, c.sid, make([]int16, kookoo.CalibrationSamples), kookoo.CalibrationRate, ""))

	next, err := b.loop(ctx)
	// Whatever the app queued and the caller did not hear is dropped.
	c.leg.pacer.flush(ctx)
	if errors.Is(err, ErrCallerHangup) || errors.Is(err, ErrMediaFailed) || errors.Is(err, errStreamDisconnect) {
		stop, _ := kookoo.MarshalStreamMessage(kookoo.StreamStop{UCID: c.sid, DID: c.s.cfg.CalledNumber})
		b.send(stop)
	}
	// Let the writer put out stop, then close.
	close(b.out)
	select {
	case <-writerDone:
	case <-time.After(streamWriteTimeout):
	}
	_ = b.ws.Close(websocket.StatusNormalClosure, "")
	cancel()
	<-readerDone
	c.leg.emit(Event{Type: EventStream, Mode: "close", Text: fmt.Sprintf("frames in %d, out %d, marks %d, clearBuffer %d, dropped %d",
		b.st.framesIn, b.st.framesOut, b.st.marks, b.st.clears, b.st.dropped)})
	c.log.Info("stream ended", "frames_to_app", b.st.framesIn, "frames_from_app", b.st.framesOut, "marks", b.st.marks,
		"clear_buffer", b.st.clears, "dropped", b.st.dropped)
	if errors.Is(err, errStreamDisconnect) {
		return nil, ErrAppHangup
	}
	return next, err
}

// loop bridges until the stream ends; it returns the event=Stream request
// or why the call ends.
func (b *streamBridge) loop(ctx context.Context) (url.Values, error) {
	c := b.c
	pair := time.NewTimer(time.Hour)
	pair.Stop()
	defer pair.Stop()
	frame := make([]int16, kookoo.StreamFrameSamples)
	quiet := time.NewTicker(100 * time.Millisecond)
	defer quiet.Stop()
	for {
		select {
		case <-quiet.C:
			if b.spoke && b.pending == nil && len(b.marks) == 0 && time.Since(b.lastPlayed) >= streamQuiet {
				b.spoke = false
				c.leg.emit(Event{Type: EventListen, Mode: "stream"})
			}
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-c.leg.ended:
			if err := c.leg.endCause(); err != nil {
				return nil, err
			}
			return nil, ErrCallerHangup
		case f := <-c.leg.frames:
			// One 20 ms frame from the caller: two 10 ms media messages.
			for off := 0; off < len(f); off += kookoo.StreamFrameSamples {
				n := copy(frame, f[off:])
				clear(frame[n:])
				b.send(kookoo.AppendMediaMessage(nil, c.sid, frame, kookoo.StreamRate, ""))
				b.st.framesIn++
			}
		case <-c.leg.digits:
			// Keys are not carried on the stream (none is documented).
			c.s.m.dtmfDigits.Inc()
		case n := <-c.leg.notes:
			c.onNote(n)
			b.played(n)
		case m := <-b.in:
			if err := b.appMessage(ctx, m, pair); err != nil {
				return nil, err
			}
		case <-pair.C:
			b.flushPending(ctx)
		case err := <-b.readErr:
			b.flushPending(ctx)
			if websocket.CloseStatus(err) == -1 && !errors.Is(err, context.Canceled) {
				c.leg.emit(Event{Type: EventStream, Mode: "error", Text: "stream broken: " + err.Error()})
			}
			c.leg.emit(Event{Type: EventRequest, KooKoo: string(kookoo.EventStream)})
			return c.values(kookoo.EventStream, "", ""), nil
		}
	}
}

// appMessage handles one message from the app.
func (b *streamBridge) appMessage(ctx context.Context, m kookoo.StreamMessage, pair *time.Timer) error {
	c := b.c
	switch m := m.(type) {
	case kookoo.StreamMedia:
		b.st.framesOut++
		b.spoke = true
		if len(m.Samples) != kookoo.StreamFrameSamples {
			c.leg.emit(Event{Type: EventWarning, Text: fmt.Sprintf("<stream> media of %d samples; KooKoo expects %d", len(m.Samples), kookoo.StreamFrameSamples)})
		}
		if b.pending == nil {
			b.pending, b.pendingSeq, b.pendingAt = append([]int16(nil), m.Samples...), m.SeqID, time.Now()
			pair.Reset(streamPairWait)
			return nil
		}
		pcm := append(b.pending, m.Samples...)
		seqs := []string{b.pendingSeq, m.SeqID}
		b.pending, b.pendingSeq = nil, ""
		pair.Stop()
		return b.enqueue(ctx, pcm, seqs)
	case kookoo.StreamCommand:
		switch m.Command {
		case kookoo.CommandClearBuffer:
			b.st.clears++
			b.pending, b.pendingSeq = nil, ""
			c.leg.pacer.flush(ctx)
			c.leg.emit(Event{Type: EventStream, Mode: "clear", Text: "clearBuffer: the app stopped its audio (barge-in)"})
		case kookoo.CommandCallDisconnect:
			c.leg.emit(Event{Type: EventStream, Mode: "disconnect", Text: "callDisconnect"})
			return errStreamDisconnect
		}
	}
	return nil
}

// flushPending plays a lone packet padded with silence.
func (b *streamBridge) flushPending(ctx context.Context) {
	if b.pending == nil {
		return
	}
	pcm, seqs := b.pending, []string{b.pendingSeq}
	b.pending, b.pendingSeq = nil, ""
	_ = b.enqueue(ctx, pcm, seqs)
}

// enqueue queues 20 ms of app audio for the caller.
func (b *streamBridge) enqueue(ctx context.Context, pcm []int16, seqs []string) error {
	if len(b.marks) >= streamMaxQueued {
		b.st.dropped++
		return nil
	}
	c := b.c
	c.seq++
	id := c.seq
	keep := make([]string, 0, len(seqs))
	for _, s := range seqs {
		if s != "" {
			keep = append(keep, s)
		}
	}
	b.marks[id] = keep
	if !c.leg.pacer.enqueue(ctx, &playItem{id: id, pcm: pcm[:min(len(pcm), audio.FrameSamples)]}) {
		return context.Cause(ctx)
	}
	return nil
}

// played acknowledges the packets of an item the caller heard.
func (b *streamBridge) played(n playNote) {
	if n.started {
		return
	}
	seqs, ok := b.marks[n.id]
	if !ok {
		return
	}
	delete(b.marks, n.id)
	b.lastPlayed = time.Now()
	if n.flushed {
		return
	}
	for _, s := range seqs {
		mark, _ := kookoo.MarshalStreamMessage(kookoo.StreamMark{UCID: b.c.sid, SeqID: s, Timestamp: n.at.UnixMilli()})
		b.send(mark)
		b.st.marks++
	}
}

// send queues a message for the writer without blocking the call.
func (b *streamBridge) send(msg []byte) {
	select {
	case b.out <- msg:
	default:
		b.st.dropped++
	}
}

// write writes queued messages until the queue is closed or a write fails.
func (b *streamBridge) write(ctx context.Context) {
	for msg := range b.out {
		wctx, cancel := context.WithTimeout(ctx, streamWriteTimeout)
		err := b.ws.Write(wctx, websocket.MessageText, msg)
		cancel()
		if err != nil {
			select {
			case b.readErr <- fmt.Errorf("write to the app: %w", err):
			default:
			}
			for range b.out {
			}
			return
		}
	}
}

// read parses the app's messages strictly (kookoo.ParseAppMessage).
func (b *streamBridge) read(ctx context.Context) {
	for {
		typ, data, err := b.ws.Read(ctx)
		if err == nil && typ != websocket.MessageText {
			err = fmt.Errorf("%w: a binary frame; KooKoo expects JSON text", kookoo.ErrStreamMessage)
		}
		var m kookoo.StreamMessage
		if err == nil {
			m, err = kookoo.ParseAppMessage(data)
		}
		if err != nil {
			if !errors.Is(err, context.Canceled) && websocket.CloseStatus(err) == -1 {
				b.c.leg.emit(Event{Type: EventWarning, Text: "<stream>: " + err.Error()})
			}
			select {
			case b.readErr <- err:
			default:
			}
			return
		}
		select {
		case b.in <- m:
		case <-ctx.Done():
			return
		}
	}
}
