package kookoo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/ivr"
)

// Stream session limits.
const (
	// maxAhead is how far incoming media may run ahead of the wall clock
	// (KooKoo sends in real time; a burst longer than this is refused).
	maxAhead = time.Second
	// lateFrame is how far behind its slot an incoming frame counts late.
	lateFrame = 60 * time.Millisecond
	// markGrace is how long after its last packet was written a reply is
	// taken as played when no mark comes.
	markGrace = 1500 * time.Millisecond
	// inboundQueue bounds the messages read but not yet handled.
	inboundQueue = 128
	// sttStartTimeout bounds the wait for the vocabulary.
	sttStartTimeout = 3 * time.Second
	// speculateAfter is the pause after speech after which the transcript
	// is computed ahead of the end-pointer (or half the silence period).
	speculateAfter = 300 * time.Millisecond
)

// streamState is what the session is doing.
type streamState int

const (
	stateStarting  streamState = iota // waiting for start
	stateListening                    // end-pointing the caller's turn
	stateThinking                     // the turn is being answered
	stateSpeaking                     // the reply plays
)

// inbound is one message the reader got.
type inbound struct {
	msg StreamMessage
	err error
	at  time.Time
}

// turnResult is what the worker of a turn hands back, in order: reply audio
// segments as they are synthesized, then the end (handled).
type turnResult struct {
	gen     int
	pcm     []int16
	handled bool
	actions []ivr.CallAction
	call    ivr.Call
	err     error
}

// streamSession serves one call's stream. One goroutine (run) owns its
// state; the reader, the writer and each turn's worker talk to it through
// channels.
type streamSession struct {
	s        *StreamServer
	sid      string
	claim    StreamClaim
	conn     ivr.Connection
	settings ivr.ConnectionSettings
	call     ivr.Call
	log      *slog.Logger
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}

	in      chan inbound
	w       *streamWriter
	vocab   stt.Vocabulary
	results chan turnResult

	state      streamState
	gotMedia   bool
	firstMedia time.Time // arrival of the first audio frame
	mediaStart time.Time // the same, re-anchored after late frames
	mediaN     int64     // audio frames since mediaStart
	framesIn   int64

	// listening
	ep     *audio.Endpointer
	rec    *recogniserFeed
	listen ivr.Listen
	// paused is how long the caller has been quiet after speech;
	// speculating says the feed was asked for a transcript of the pause.
	paused         time.Duration
	speculating    bool
	speculateAfter time.Duration
	prefeed        [][]int16
	endAt          time.Time
	turnCount      int

	// speaking
	nextPacket   int64 // number of the next packet to queue
	replyFirst   int64
	replyLast    int64 // -1 while the reply is still being synthesized
	replyText    []string
	acked        int64
	measured     bool
	after        []ivr.CallAction // the actions after the reply: Listen, or an exit
	handled      bool
	playedAt     time.Time // when the last packet was written
	vad          *audio.VAD
	half         []int16
	voiced       time.Duration
	recent       [][]int16 // the last frames heard while speaking, for the barge-in turn
	bargeIns     int
	bargeHeard   time.Duration
	workerCancel context.CancelFunc
	exit         bool
	// gen numbers replies; results of an older reply (cut by a barge-in)
	// are ignored.
	gen int
}

func newStreamSession(s *StreamServer, claim StreamClaim, conn ivr.Connection, log *slog.Logger) *streamSession {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.MaxStreamDuration)
	return &streamSession{
		s: s, sid: claim.SID, claim: claim, conn: conn, log: log, ctx: ctx, cancel: cancel,
		done: make(chan struct{}), in: make(chan inbound, inboundQueue), results: make(chan turnResult, 8),
		acked: -1, replyLast: -1,
	}
}

// run serves the stream until it ends, then closes the socket.
func (ss *streamSession) run(ws *websocket.Conn) {
	defer close(ss.done)
	defer ss.s.detach(ss)
	defer ss.cancel()
	m := ss.s.m
	m.active.Inc()
	defer m.active.Dec()
	start := ss.s.now()
	ss.w = newStreamWriter(ws, ss.sid, ss.s.cfg.WriteTimeout, ss.s.cfg.MaxQueuedAudio, func(late bool) {
		m.framesOut.Inc()
		if late {
			m.late.WithLabelValues("out").Inc()
		}
	})
	wctx, wcancel := context.WithCancel(ss.ctx)
	defer wcancel()
	go ss.w.run(wctx)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		ss.read(ws)
	}()
	ss.log.LogAttrs(ss.ctx, slog.LevelInfo, "stream opened")

	code, reason := ss.loop()
	// Nothing more is read from KooKoo: drain what the reader still hands
	// over, so it can take the peer's close frame.
	go func() {
		for range ss.in {
		}
	}()
	ss.finishTurn()
	if ss.workerCancel != nil {
		ss.workerCancel()
	}
	wcancel()
	<-ss.w.done
	if len(reason) > 120 {
		reason = reason[:120]
	}
	if err := ws.Close(code, reason); err != nil {
		_ = ws.CloseNow()
	}
	ss.cancel()
	<-readerDone
	if ss.rec != nil {
		ss.rec.end(speechSpan{})
		ss.rec = nil
	}
	m.closed.WithLabelValues(closeLabel(code, ss.exit)).Inc()
	ss.log.LogAttrs(context.Background(), slog.LevelInfo, "stream closed", slog.String("reason", reason),
		slog.Bool("exit", ss.exit), slog.Int("turns", ss.turnCount), slog.Int64("frames_in", ss.framesIn),
		slog.Int64("frames_out", ss.w.out.Load()), slog.Int64("frames_out_late", ss.w.late.Load()),
		slog.Int("barge_ins", ss.bargeIns), slog.Duration("duration", ss.s.now().Sub(start).Round(time.Millisecond)))
}

func closeLabel(code websocket.StatusCode, exit bool) string {
	switch {
	case exit:
		return "exit"
	case code == websocket.StatusNormalClosure:
		return "ended"
	}
	return "error"
}

// read turns socket messages into inbound values until the socket fails.
func (ss *streamSession) read(ws *websocket.Conn) {
	defer close(ss.in)
	for {
		typ, data, err := ws.Read(ss.ctx)
		var in inbound
		switch {
		case err != nil:
			in.err = err
		case typ != websocket.MessageText:
			in.err = fmt.Errorf("%w: a binary frame; KooKoo sends JSON text", ErrStreamMessage)
		default:
			in.msg, in.err = ParsePlatformMessage(data)
		}
		in.at = ss.s.now()
		select {
		case ss.in <- in:
		case <-ss.ctx.Done():
			return
		}
		if in.err != nil {
			return
		}
	}
}

// loop is the session's state machine; it returns how to close the socket.
func (ss *streamSession) loop() (websocket.StatusCode, string) {
	startTimer := time.NewTimer(ss.s.cfg.StartTimeout)
	defer startTimer.Stop()
	graceTimer := time.NewTimer(time.Hour)
	graceTimer.Stop()
	defer graceTimer.Stop()
	for {
		var startC <-chan time.Time
		if ss.state == stateStarting {
			startC = startTimer.C
		}
		select {
		case <-ss.ctx.Done():
			if errors.Is(ss.ctx.Err(), context.DeadlineExceeded) {
				return websocket.StatusNormalClosure, "maximum stream duration"
			}
			return websocket.StatusGoingAway, "server closing the stream"
		case <-startC:
			return websocket.StatusPolicyViolation, fmt.Sprintf("no start within %v", ss.s.cfg.StartTimeout)
		case in, ok := <-ss.in:
			if !ok {
				return websocket.StatusNormalClosure, "socket closed"
			}
			if code, reason, end := ss.inbound(in); end {
				return code, reason
			}
		case r := <-ss.results:
			if code, reason, end := ss.result(r); end {
				return code, reason
			}
		case <-ss.w.kick:
			if ss.w.failed.Load() {
				return websocket.StatusGoingAway, "writing to the socket failed or timed out"
			}
			ss.progress(graceTimer)
		case <-graceTimer.C:
			ss.progress(graceTimer)
		}
		if ss.state == stateSpeaking && ss.replyDone() {
			if code, reason, end := ss.afterReply(); end {
				return code, reason
			}
		}
	}
}

// inbound handles one message from KooKoo.
func (ss *streamSession) inbound(in inbound) (websocket.StatusCode, string, bool) {
	if in.err != nil {
		switch {
		case websocket.CloseStatus(in.err) != -1:
			return websocket.StatusNormalClosure, "KooKoo closed the socket: " + websocket.CloseStatus(in.err).String(), true
		case errors.Is(in.err, ErrStreamMessage), errors.Is(in.err, ErrTooLarge):
			ss.s.m.bad.Inc()
			return websocket.StatusUnsupportedData, "bad message: " + in.err.Error(), true
		case strings.Contains(in.err.Error(), "read limited"):
			ss.s.m.bad.Inc()
			return websocket.StatusMessageTooBig, fmt.Sprintf("message over %d bytes", MaxStreamMessageBytes), true
		}
		return websocket.StatusGoingAway, "socket broken: " + in.err.Error(), true
	}
	switch m := in.msg.(type) {
	case StreamStart:
		if ss.state != stateStarting {
			ss.s.m.bad.Inc()
			return websocket.StatusPolicyViolation, "a second start", true
		}
		if m.UCID != ss.sid {
			ss.s.m.bad.Inc()
			return websocket.StatusPolicyViolation, "start for another call (ucid does not match the token)", true
		}
		if sid := headerSID(m.XHeaders); sid != "" && sid != ss.sid {
			ss.s.m.bad.Inc()
			return websocket.StatusPolicyViolation, "start x_headers name another call", true
		}
		ss.startCall()
	case StreamMedia:
		if ss.state == stateStarting {
			ss.s.m.bad.Inc()
			return websocket.StatusPolicyViolation, "media before start", true
		}
		if !ss.gotMedia {
			ss.gotMedia = true
			if m.IsCalibration() {
				return 0, "", false
			}
		}
		if m.SampleRate != StreamRate || len(m.Samples) != StreamFrameSamples {
			ss.s.m.bad.Inc()
			return websocket.StatusUnsupportedData, fmt.Sprintf("media of %d samples at %d Hz; KooKoo sends %d at %d", len(m.Samples), m.SampleRate, StreamFrameSamples, StreamRate), true
		}
		if ss.framesIn == 0 {
			ss.firstMedia = in.at
			ss.mediaStart = in.at
		}
		// Rate: KooKoo sends in real time, so the audio received never runs
		// far ahead of the time since the first frame (a stall on koel's
		// side only delays frames). Lateness is counted against a slot
		// re-anchored after each late frame, so one gap counts once.
		if ahead := time.Duration(ss.framesIn)*StreamFrameDuration - in.at.Sub(ss.firstMedia); ahead > maxAhead {
			ss.s.m.bad.Inc()
			return websocket.StatusPolicyViolation, fmt.Sprintf("media %v ahead of real time", ahead.Round(time.Millisecond)), true
		}
		if lag := in.at.Sub(ss.mediaStart.Add(time.Duration(ss.mediaN) * StreamFrameDuration)); lag > lateFrame {
			ss.s.m.late.WithLabelValues("in").Inc()
			ss.mediaStart, ss.mediaN = in.at, 0
		}
		ss.mediaN++
		ss.framesIn++
		ss.s.m.framesIn.Inc()
		return ss.frame(m.Samples)
	case StreamMark:
		if n, ok := ss.w.packetOf(m.SeqID); ok && n > ss.acked {
			ss.acked = n
		}
	case StreamStop:
		return websocket.StatusNormalClosure, "stop", true
	}
	return 0, "", false
}

// headerSID returns the sid in x_headers JSON, "" when there is none.
func headerSID(xh string) string {
	var h struct {
		SID string `json:"sid"`
	}
	if json.Unmarshal([]byte(xh), &h) != nil {
		return ""
	}
	return h.SID
}

// startCall speaks the welcome, then listens for the first turn.
func (ss *streamSession) startCall() {
	if ss.s.cfg.Vocabulary != nil {
		ctx, cancel := context.WithTimeout(ss.ctx, sttStartTimeout)
		phrases, version, err := ss.s.cfg.Vocabulary.Phrases(ctx, ss.call.BusinessID)
		cancel()
		if err != nil {
			ss.log.LogAttrs(ss.ctx, slog.LevelWarn, "stream vocabulary unavailable", slog.String("error", err.Error()))
		}
		ss.vocab = stt.Vocabulary{Key: fmt.Sprintf("biz%d-v%d", ss.call.BusinessID, version), Phrases: phrases}
	} else {
		ss.vocab = stt.Vocabulary{Key: "biz" + strconv.FormatInt(ss.call.BusinessID, 10) + "-none"}
	}
	listen := ivr.Listen{
		Name:        ivr.RecordingName(ss.sid, ss.call.Turn),
		Silence:     time.Duration(ss.settings.SilencePeriod) * time.Second,
		MaxDuration: time.Duration(ss.settings.MaxRecordTime) * time.Second,
	}
	ss.beginReply()
	ss.after = []ivr.CallAction{listen}
	ss.handled = true
	go ss.speakTexts(ss.ctx, ss.gen, []string{ss.settings.WelcomeMessage})
}

// beginReply starts a reply: audio segments follow through results.
func (ss *streamSession) beginReply() {
	ss.gen++
	ss.state = stateSpeaking
	ss.replyFirst, ss.replyLast = ss.nextPacket, -1
	ss.measured, ss.handled, ss.after = false, false, nil
	ss.replyText = nil
	ss.voiced, ss.half, ss.recent = 0, ss.half[:0], ss.recent[:0]
	ss.vad, _ = audio.NewVAD(audio.VADConfig{}) // the defaults are valid
}

// speakTexts synthesizes texts clause by clause and hands each segment to
// the session; then marks the reply complete.
func (ss *streamSession) speakTexts(ctx context.Context, gen int, texts []string) {
	for _, text := range texts {
		for _, clause := range splitClauses(text) {
			t0 := ss.s.now()
			pcm, err := ss.s.cfg.TTS.Synthesize(ctx, clause, ss.s.cfg.Voice)
			ss.log.LogAttrs(ctx, slog.LevelDebug, "stream clause synthesized", slog.Duration("took", ss.s.now().Sub(t0)), slog.Int("chars", len(clause)))
			if err == nil && pcm.Rate != audio.SampleRate {
				pcm, err = audio.Resample(pcm, audio.SampleRate)
			}
			if err != nil {
				if ctx.Err() == nil {
					ss.log.LogAttrs(ctx, slog.LevelWarn, "stream reply not synthesized", slog.String("error", err.Error()))
				}
				continue
			}
			select {
			case ss.results <- turnResult{gen: gen, pcm: pcm.Samples}:
			case <-ctx.Done():
				return
			}
		}
	}
	select {
	case ss.results <- turnResult{gen: gen}:
	case <-ctx.Done():
	}
}

// result handles what a turn's worker sent.
func (ss *streamSession) result(r turnResult) (websocket.StatusCode, string, bool) {
	if r.gen != ss.gen {
		return 0, "", false // a reply cut by a barge-in
	}
	switch {
	case r.handled:
		ss.handled = true
		ss.turnCount++
		if r.err != nil {
			// The service failed (the store): nothing was stored; say the
			// break message and listen again, as the app does.
			ss.log.LogAttrs(ss.ctx, slog.LevelError, "stream turn failed", slog.String("error", r.err.Error()))
			ss.s.app.voice.CountBreak(ivr.FailInternal)
			ss.after = []ivr.CallAction{ss.listen}
			return 0, "", false
		}
		ss.call = r.call
		ss.after = nil
		if n := len(r.actions); n > 0 {
			ss.after = r.actions[n-1:]
			if _, ok := r.actions[n-1].(ivr.Say); ok {
				ss.after = nil
			}
		}
	case r.pcm != nil:
		ss.state = stateSpeaking
		n := int64((len(r.pcm) + StreamFrameSamples - 1) / StreamFrameSamples)
		if !ss.w.send(writerCmd{kind: cmdAudio, pcm: r.pcm, first: ss.nextPacket}) {
			return websocket.StatusGoingAway, "the writer is stuck (slow reader)", true
		}
		ss.nextPacket += n
	default:
		// The reply is complete.
		ss.state = stateSpeaking
		ss.replyLast = ss.nextPacket - 1
	}
	return 0, "", false
}

// progress looks at the writer: the first packet of a reply (latency), and
// when the last one left (the mark grace).
func (ss *streamSession) progress(grace *time.Timer) {
	sent := ss.w.sent.Load()
	if ss.state != stateSpeaking {
		return
	}
	if !ss.measured && sent >= ss.replyFirst && !ss.endAt.IsZero() {
		ss.measured = true
		lat := ss.s.now().Sub(ss.endAt)
		ss.s.m.replyLatency.Observe(lat.Seconds())
		if ss.s.onReplyLatency != nil {
			ss.s.onReplyLatency(lat)
		}
	}
	if ss.replyLast >= 0 && sent >= ss.replyLast && ss.playedAt.IsZero() {
		ss.playedAt = ss.s.now()
		grace.Reset(markGrace)
	}
}

// replyDone reports whether the reply has been played: every packet
// acknowledged, or written and the mark grace over.
func (ss *streamSession) replyDone() bool {
	if !ss.handled || ss.replyLast < 0 {
		return false
	}
	if ss.replyLast < ss.replyFirst {
		return true // nothing to say
	}
	if ss.acked >= ss.replyLast {
		return true
	}
	return !ss.playedAt.IsZero() && ss.s.now().Sub(ss.playedAt) >= markGrace
}

// afterReply moves on once a reply has played: listen, or leave the
// stream (transfer, menu, goodbye).
func (ss *streamSession) afterReply() (websocket.StatusCode, string, bool) {
	ss.playedAt = time.Time{}
	if len(ss.after) == 1 {
		if l, ok := ss.after[0].(ivr.Listen); ok {
			ss.startListening(l, nil)
			return 0, "", false
		}
	}
	ss.exit = true
	return websocket.StatusNormalClosure, "leaving the stream: " + exitName(ss.after), true
}

func exitName(after []ivr.CallAction) string {
	if len(after) == 0 {
		return "call over"
	}
	switch after[0].(type) {
	case ivr.Transfer:
		return "transfer"
	case ivr.Menu:
		return "key menu"
	case ivr.HangUp:
		return "goodbye"
	}
	return fmt.Sprintf("%T", after[0])
}

// startListening opens the next turn: a fresh end-pointer and recogniser,
// fed first with prefeed (the speech that barged in).
func (ss *streamSession) startListening(l ivr.Listen, prefeed [][]int16) {
	ss.state = stateListening
	ss.listen = l
	silence := orDuration(l.Silence, time.Duration(ss.settings.SilencePeriod)*time.Second)
	maxDur := orDuration(l.MaxDuration, time.Duration(ss.settings.MaxRecordTime)*time.Second)
	ep, err := audio.NewEndpointer(audio.EndpointConfig{SilencePeriod: silence, MaxRecordTime: maxDur})
	if err != nil {
		// The voice settings are clamped; this cannot happen with them.
		ss.log.LogAttrs(ss.ctx, slog.LevelError, "stream end-pointer", slog.String("error", err.Error()))
		ep, _ = audio.NewEndpointer(audio.EndpointConfig{SilencePeriod: 3 * time.Second, MaxRecordTime: 10 * time.Second})
	}
	ss.ep = ep
	ss.paused, ss.speculating = 0, false
	ss.speculateAfter = min(speculateAfter, silence/2)
	if ss.rec != nil {
		ss.rec.end(speechSpan{})
	}
	ss.rec = startFeed(ss.ctx, ss.s.cfg.STT, ss.vocab)
	ss.log.LogAttrs(ss.ctx, slog.LevelDebug, "stream listening", slog.Int("prefeed", len(prefeed)), slog.Int64("frames_in", ss.framesIn))
	ss.prefeed = prefeed
	for _, f := range prefeed {
		if _, _, end := ss.listenFrame(f); end {
			return
		}
	}
}

// frame handles 10 ms of caller audio.
func (ss *streamSession) frame(samples []int16) (websocket.StatusCode, string, bool) {
	switch ss.state {
	case stateListening:
		return ss.listenFrame(samples)
	case stateSpeaking:
		ss.bargeFrame(samples)
	}
	return 0, "", false
}

func (ss *streamSession) listenFrame(samples []int16) (websocket.StatusCode, string, bool) {
	ss.rec.write(samples)
	res, done := ss.ep.Write(samples)

	if done {
		ss.endTurn(res, false)
		return 0, "", false
	}
	// Speculate on a pause so the transcript is ready when the end-pointer
	// fires; drop the speculation if the caller goes on.
	switch {
	case ss.ep.Speaking() || !res.Spoke:
		ss.paused, ss.speculating = 0, false
	case !ss.speculating:
		ss.paused += StreamFrameDuration
		if ss.paused >= ss.speculateAfter {
			ss.speculating = true
			ss.rec.speculate(spanOf(res))
		}
	}
	return 0, "", false
}

// bargeFrame watches the caller while a reply plays: speech longer than the
// barge-in threshold cuts the reply.
func (ss *streamSession) bargeFrame(samples []int16) {
	f := append([]int16(nil), samples...)
	ss.recent = append(ss.recent, f)
	if keep := int((ss.s.cfg.BargeIn + time.Second) / StreamFrameDuration); len(ss.recent) > keep {
		ss.recent = ss.recent[len(ss.recent)-keep:]
	}
	ss.half = append(ss.half, samples...)
	if len(ss.half) < audio.FrameSamples {
		return
	}
	d := ss.vad.Frame(ss.half[:audio.FrameSamples])
	ss.half = ss.half[:0]
	if !d.Voiced {
		ss.voiced = 0
		return
	}
	ss.voiced += audio.FrameDuration
	if ss.voiced < ss.s.cfg.BargeIn || !ss.handled {
		return
	}
	// Barge-in: drop what is queued, note what was heard, and listen to
	// the caller from the start of the speech.
	ss.bargeIns++
	ss.s.m.bargeIns.Inc()
	heard := time.Duration(max(0, ss.acked-ss.replyFirst+1)) * StreamFrameDuration
	ss.w.send(writerCmd{kind: cmdClear})
	if ss.workerCancel != nil {
		ss.workerCancel()
		ss.workerCancel = nil
	}
	ss.log.LogAttrs(ss.ctx, slog.LevelInfo, "barge-in", slog.Duration("heard", heard), slog.Int("turn", ss.call.Turn))
	after := ss.after
	ss.playedAt = time.Time{}
	l, ok := ivr.Listen{}, false
	if len(after) == 1 {
		l, ok = after[0].(ivr.Listen)
	}
	if !ok {
		// A reply before an exit is not cut: the exit needs it heard.
		return
	}
	// Everything kept from the last second: the speech that barged in
	// began before the VAD was sure of it.
	prefeed := ss.recent
	ss.recent = nil
	ss.bargeHeard = heard
	ss.startListening(l, prefeed)
}

// endTurn hands a finished utterance to a worker: close the recogniser,
// run the voice turn, synthesize the reply.
func (ss *streamSession) endTurn(res audio.EndResult, final bool) {
	ss.endAt = ss.s.now()
	ss.log.LogAttrs(ss.ctx, slog.LevelDebug, "stream turn end-pointed", slog.String("reason", string(res.Reason)),
		slog.Duration("speech_start", res.SpeechStart), slog.Duration("speech_end", res.SpeechEnd), slog.Duration("end", res.End))
	rec := ss.rec
	ss.rec = nil
	status := recordStatus(res.Reason)
	if ss.bargeHeard > 0 {
		status = fmt.Sprintf("barge_in:%s:heard_ms=%d", status, ss.bargeHeard.Milliseconds())
		ss.bargeHeard = 0
	}
	ss.beginReply()
	ss.state = stateThinking
	ctx, cancel := context.WithCancel(ss.ctx)
	ss.workerCancel = cancel
	in := turnInput{span: spanOf(res), endAt: ss.endAt, gen: ss.gen, rec: rec, spoke: res.Spoke, speech: res.SpeechEnd - res.SpeechStart, status: status, call: ss.call, final: final}
	if final {
		ss.work(context.WithoutCancel(ctx), in)
		return
	}
	go ss.work(ctx, in)
}

// turnInput is what a worker needs.
type turnInput struct {
	span   speechSpan
	endAt  time.Time
	gen    int
	rec    *recogniserFeed
	spoke  bool
	speech time.Duration
	status string
	call   ivr.Call
	final  bool // the stream is ending: store the turn, say nothing
}

// spanOf is the speech of an end-pointer result in 10 ms frames.
func spanOf(res audio.EndResult) speechSpan {
	if !res.Spoke {
		return speechSpan{}
	}
	return speechSpan{start: int(res.SpeechStart / StreamFrameDuration), end: int(res.SpeechEnd / StreamFrameDuration)}
}

func recordStatus(r audio.EndReason) string {
	if r == "" {
		return "unknown"
	}
	return string(r)
}

// work runs one turn: the recogniser's final result, the voice turn
// service (which stores the turn exactly as in record mode), then the
// reply's speech.
func (ss *streamSession) work(ctx context.Context, in turnInput) {
	var res stt.Result
	var took time.Duration
	var utter *ivr.Utterance
	ev := ivr.Recorded{}
	if in.rec != nil {
		in.rec.end(in.span)
	}
	if in.spoke && in.rec != nil {
		// The end-pointer heard speech: the recogniser's final result.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ivr.DefaultTurnTimeout)
		r, t, err := in.rec.result(rctx)
		cancel()
		switch {
		case err == nil:
			res, took = r, t
		case errors.Is(err, stt.ErrEmptyAudio):
		default:
			ev.FailReason = ivr.FailSTT
			ss.log.LogAttrs(ctx, slog.LevelWarn, "stream transcript failed", slog.String("error", err.Error()))
		}
	}
	if ev.FailReason == "" {
		utter = &ivr.Utterance{RecordingURL: "", RecordStatus: in.status, Transcript: &res, SpeechDuration: in.speech, STTDuration: took}
		if in.spoke && in.rec != nil {
			// The audio the feed transcribed, for the closed-vocabulary
			// passes (a confirmation's yes, a spoken order number).
			utter.Held = in.rec
		}
	}
	sttDone := ss.s.now()
	rr := &turnRenderer{app: ss.s.app}
	_, err := ss.s.app.voice.Handle(ctx, ivr.VoiceEvent{
		SID: ss.sid, Connection: ss.conn, Settings: ss.settings, Caller: in.call.Caller, CalledNumber: in.call.CalledNumber,
		Key:   fmt.Sprintf("%sturn:%d:%d", streamKeyPrefix, in.call.Turn, ss.s.now().UnixNano()),
		Event: ev, Speech: utter,
	}, rr)
	ss.log.LogAttrs(ctx, slog.LevelDebug, "stream turn answered", slog.Duration("stt_final", sttDone.Sub(in.endAt)),
		slog.Duration("voice_turn", ss.s.now().Sub(sttDone)))
	out := turnResult{gen: in.gen, handled: true, err: err, actions: rr.actions, call: rr.call}
	if in.final {
		return
	}
	select {
	case ss.results <- out:
	case <-ctx.Done():
		return
	}
	if err != nil {
		ss.speakTexts(ctx, in.gen, []string{ss.settings.BreakMessage})
		return
	}
	var texts []string
	for _, a := range rr.actions {
		if s, ok := a.(ivr.Say); ok {
			texts = append(texts, s.Text)
		}
	}
	ss.speakTexts(ctx, in.gen, texts)
}

// turnRenderer captures a stream turn's actions and renders what KooKoo
// gets if the stream ends now: a reply and a <record> (record mode goes on
// where the stream stopped), or the exit (dial, collectdtmf, hangup), whose
// spoken part is said on the stream.
type turnRenderer struct {
	app     *App
	call    ivr.Call
	actions []ivr.CallAction
}

func (r *turnRenderer) Render(call ivr.Call, actions []ivr.CallAction) ivr.VoiceAnswer {
	r.call, r.actions = call, actions
	n := len(actions)
	if n == 0 {
		return r.app.Render(call, actions)
	}
	if _, listen := actions[n-1].(ivr.Listen); listen {
		return r.app.Render(call, actions)
	}
	exit := make([]ivr.CallAction, 0, 1)
	for _, a := range actions {
		if _, say := a.(ivr.Say); !say {
			exit = append(exit, a)
		}
	}
	return r.app.Render(call, exit)
}

// finishTurn stores the turn in progress when the stream ends: speech
// being listened to is end-pointed as a hang-up and answered (the caller
// may be gone, but the turn is kept); a turn being answered is waited for.
func (ss *streamSession) finishTurn() {
	switch ss.state {
	case stateListening:
		if ss.ep != nil && ss.ep.Result().Spoke {
			ss.endTurn(ss.ep.Hangup(), true)
		}
	case stateThinking:
		t := time.NewTimer(ivr.DefaultTurnTimeout)
		defer t.Stop()
		for {
			select {
			case r := <-ss.results:
				if r.handled {
					return
				}
			case <-t.C:
				return
			}
		}
	}
}

// splitClauses cuts a reply into sentences, and a long first sentence at
// its first comma, so the first clause is quick to synthesize.
func splitClauses(text string) []string {
	var out []string
	rest := strings.TrimSpace(text)
	for rest != "" {
		i := strings.IndexAny(rest, ".!?")
		for i >= 0 && i+1 < len(rest) && rest[i+1] != ' ' {
			j := strings.IndexAny(rest[i+1:], ".!?")
			if j < 0 {
				i = -1
				break
			}
			i += 1 + j
		}
		end := len(rest)
		if i >= 0 {
			end = i + 1
		}
		if len(out) == 0 && end > 40 {
			if c := strings.Index(rest[:end], ", "); c > 10 {
				end = c + 1
			}
		}
		if s := strings.TrimSpace(rest[:end]); s != "" {
			out = append(out, s)
		}
		rest = strings.TrimSpace(rest[end:])
	}
	return out
}
