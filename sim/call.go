package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/kookoo"
)

// KooKoo defaults for attributes an app leaves out (PHP library defaults).
const (
	defaultRecordSilence = 4 * time.Second
	defaultRecordMax     = 60 * time.Second
	defaultDTMFTimeout   = 4 * time.Second
	defaultTermChar      = '#'
)

const (
	maxCollectDigits = 64
	// maxArrivals bounds the per-frame arrival times kept per <record>
	// (10 minutes of frames).
	maxArrivals   = 30000
	maxSpeakRunes = 2000
	// recordGrace ends a <record> by the wall clock when the caller's
	// audio stops arriving (the end-pointer counts samples only).
	recordGrace = 3 * time.Second
	// maxIdleResponses ends a call whose app keeps answering
	// <response filler="yes"/> with nothing to play and nothing to wait for.
	maxIdleResponses = 3
	// maxDialRecording caps the silent recording made for an answered
	// <dial record="true">.
	maxDialRecording = 2 * time.Minute
	// closeGrace is how long the sim waits for the caller to close after
	// it announced the end of the call.
	closeGrace = 2 * time.Second
	// errorPrompt is spoken when the app fails.
	errorPrompt = "Sorry, the application is not responding. Goodbye."
)

var errMaxCallDuration = errors.New("sim: maximum call duration reached")

// call is one emulated KooKoo call. Only its run goroutine touches its
// fields.
type call struct {
	s      *Sim
	id     string
	sid    string
	opts   callOptions
	leg    *leg
	log    *slog.Logger
	target target
	start  time.Time
	seq    uint64
	idle   int
	// jar keeps the app's cookies for this call only (a PHP session, for
	// one), across every request, redirects and gotourl included.
	jar http.CookieJar

	// turn holds a recorded turn's figures until the reply's first frame.
	turn      *Event
	turnEndAt time.Time

	// process is the running tag, reported on Hangup.
	process string
	// hangupData and hangupStatus carry a recording cut short by hang-up.
	hangupData, hangupStatus string
}

func newCall(s *Sim, id, sid string, opts callOptions, l *leg, log *slog.Logger) *call {
	jar, _ := cookiejar.New(nil) // never fails without options
	return &call{s: s, id: id, sid: sid, opts: opts, leg: l, log: log, target: opts.target, process: "none", jar: jar}
}

// run is the call's goroutine: converse, then tear down.
func (c *call) run(parent context.Context) {
	defer c.s.wg.Done()
	ctx, cancel := context.WithTimeoutCause(parent, c.s.cfg.MaxCallDuration, errMaxCallDuration)
	defer cancel()
	c.start = time.Now()
	c.leg.goTracked(func() { c.leg.sendEvents(ctx) })

	converse := c.converse
	if c.opts.echo {
		converse = c.echo
	}
	result, reason, why := converse(ctx)
	c.flushTurn()
	st := &c.leg.pacer.stats
	c.leg.emit(Event{Type: EventHangup, Reason: reason, Text: why, FramesSent: st.sent.Load(), FramesLate: st.late.Load()})
	c.leg.flushEvents(ctx, time.Second)
	if reason != "caller" {
		// Let the caller close first so the last events arrive.
		t := time.NewTimer(closeGrace)
		select {
		case <-c.leg.ended:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	cancel()
	if err := c.leg.close(); err != nil {
		c.log.Warn("close media leg", "err", err)
	}
	c.s.mu.Lock()
	delete(c.s.calls, c.id)
	c.s.mu.Unlock()
	c.s.release()
	c.s.m.calls.WithLabelValues(result).Inc()
	c.leg.mu.Lock()
	dropped := c.leg.dropped
	c.leg.mu.Unlock()
	c.log.Info("call ended", "result", result, "reason", why, "duration", time.Since(c.start).Round(time.Millisecond),
		"frames_sent", st.sent.Load(), "frames_late", st.late.Load(), "frames_dropped_in", dropped)
}

// converse runs the KooKoo request/response loop until the call ends and
// reports the result label, who ended it and why.
func (c *call) converse(ctx context.Context) (result, reason, why string) {
	t := time.NewTimer(connectTimeout)
	select {
	case <-c.leg.connected:
		t.Stop()
	case <-c.leg.ended:
		t.Stop()
		return resultCallerHangup, "caller", "hung up before media connected"
	case <-t.C:
		return resultFailed, "error", "media did not connect"
	case <-ctx.Done():
		t.Stop()
		return resultFailed, "error", context.Cause(ctx).Error()
	}
	// Pace frames from now on: before the media is up they would only be
	// dropped (and counted late while handshakes take the CPU).
	if !c.leg.goTracked(func() { c.leg.pacer.run(ctx) }) {
		return resultCallerHangup, "caller", "hung up before media connected"
	}
	c.leg.emit(Event{Type: EventCall, CallID: c.id, SID: c.sid, Text: c.target.String()})
	req := c.values(kookoo.EventNewCall, "", "")
	for {
		resp, err := c.fetch(ctx, req)
		if err == nil {
			req, err = c.execute(ctx, resp)
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, ErrCallerHangup), errors.Is(err, ErrMediaFailed):
			c.final(ctx, c.hangupValues())
			if errors.Is(err, ErrMediaFailed) {
				return resultFailed, "caller", err.Error()
			}
			return resultCallerHangup, "caller", ""
		case errors.Is(err, ErrAppHangup):
			c.final(ctx, c.disconnectValues(""))
			return resultCompleted, "app", ""
		case errors.Is(err, ErrAppEnded):
			// KooKoo ends a call whose app has nothing left to do, and
			// tells the app with Disconnect.
			c.leg.emit(Event{Type: EventInfo, Text: appEndedMessage})
			c.final(ctx, c.disconnectValues(""))
			return resultCompleted, "app", appEndedMessage
		case ctx.Err() != nil:
			cause := context.Cause(ctx)
			if errors.Is(cause, context.Canceled) {
				cause = ErrClosed
			}
			c.final(ctx, c.disconnectValues(cause.Error()))
			return resultFailed, "error", cause.Error()
		default:
			return c.fail(ctx, err)
		}
	}
}

// fail shows why the call failed, plays the error prompt and ends the call.
func (c *call) fail(ctx context.Context, err error) (string, string, string) {
	c.log.Warn("call failed", "err", err)
	c.leg.emit(Event{Type: EventError, Text: err.Error()})
	c.flushTurn()
	if _, perr := c.speak(ctx, errorPrompt, false); perr != nil && !errors.Is(perr, ErrCallerHangup) {
		c.log.Debug("error prompt not played", "err", perr)
	}
	return resultFailed, "error", err.Error()
}

// final sends the last request of a call (Hangup or Disconnect); the
// app's answer is ignored. It runs even when ctx has ended.
func (c *call) final(ctx context.Context, v url.Values) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.s.cfg.AppTimeout)
	defer cancel()
	c.leg.emit(Event{Type: EventRequest, KooKoo: v.Get("event"), Data: v.Get("data"), Status: v.Get("process")})
	if _, err := c.s.requestApp(fctx, c.target, v, c.jar, false); err != nil {
		c.log.Info("final request failed", "event", v.Get("event"), "err", err)
	}
}

type fetchResult struct {
	reply appReply
	err   error
}

// fetch sends one request to the app while the call stays responsive to
// hang-up; caller audio and keys meanwhile are dropped, as on KooKoo.
func (c *call) fetch(ctx context.Context, v url.Values) (kookoo.Response, error) {
	c.process = "none"
	ev := v.Get("event")
	c.leg.emit(Event{Type: EventRequest, KooKoo: ev, Data: v.Get("data"), Status: v.Get("status")})
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := make(chan fetchResult, 1)
	target, jar, strict := c.target, c.jar, c.opts.strict
	if !c.leg.goTracked(func() {
		r, err := c.s.requestApp(fctx, target, v, jar, strict)
		res <- fetchResult{r, err}
	}) {
		return kookoo.Response{}, ErrCallerHangup
	}
	var out fetchResult
	err := c.wait(ctx, waiter{result: res, onResult: func(r fetchResult) { out = r }})
	if err != nil {
		return kookoo.Response{}, err
	}
	for _, w := range out.reply.warnings {
		// Shown to the developer: the page, the CLI and the server log.
		c.leg.emit(Event{Type: EventWarning, Text: w.String()})
		c.log.Warn("app response read tolerantly", "warning", w.String())
	}
	return out.reply.resp, out.err
}

// waiter says what a wait reacts to; a handler returning true ends it.
type waiter struct {
	frame    func([]int16) bool
	digit    func(rune) bool
	note     func(playNote) bool
	timer    <-chan time.Time
	fire     func() bool
	result   <-chan fetchResult
	onResult func(fetchResult)
}

// wait is the call's select loop: caller frames, keys, playback notes,
// a timer, an app result, hang-up and the call's end. Frames and keys
// without a handler are dropped.
func (c *call) wait(ctx context.Context, w waiter) error {
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-c.leg.ended:
			if err := c.leg.endCause(); err != nil {
				return err
			}
			return ErrCallerHangup
		case f := <-c.leg.frames:
			if w.frame != nil && w.frame(f) {
				return nil
			}
		case d := <-c.leg.digits:
			c.s.m.dtmfDigits.Inc()
			if w.digit != nil && w.digit(d) {
				return nil
			}
		case n := <-c.leg.notes:
			c.onNote(n)
			if w.note != nil && w.note(n) {
				return nil
			}
		case <-w.timer:
			if w.fire == nil || w.fire() {
				return nil
			}
		case r := <-w.result:
			w.onResult(r)
			return nil
		}
	}
}

// onNote completes a pending turn's figures with the reply latency: end
// of the recording to the first frame of the next audio.
func (c *call) onNote(n playNote) {
	if c.turn == nil || !n.started {
		return
	}
	lat := n.at.Sub(c.turnEndAt)
	c.s.m.replyLatency.Observe(lat.Seconds())
	c.turn.ReplyMS = lat.Milliseconds()
	c.leg.emit(*c.turn)
	c.turn = nil
}

// flushTurn emits a pending turn that got no audio reply.
func (c *call) flushTurn() {
	if c.turn == nil {
		return
	}
	c.turn.ReplyMS = -1
	c.leg.emit(*c.turn)
	c.turn = nil
}

// execute runs one response's verbs in order and returns the next
// request (§3.1 of the spec): the result of the input tag, or a follow-up
// with no event after play-only responses. gotourl redirects that request.
// A response with nothing to do ends the call (ErrAppEnded), as KooKoo
// ends it, unless it asks with filler="yes" to be called again.
func (c *call) execute(ctx context.Context, resp kookoo.Response) (url.Values, error) {
	var next url.Values
	action := ""
	did := false
	var skipped []string
	var jump *target
	for _, vb := range resp.Verbs {
		if action != "" {
			switch v := vb.(type) {
			case kookoo.GotoURL:
				t, err := c.s.urlTarget(v.URL)
				if err != nil {
					return nil, fmt.Errorf("%w: gotourl: %w", ErrApp, err)
				}
				jump = &t
			case kookoo.SendSMS:
				c.leg.emit(Event{Type: EventSMS, Text: v.Text})
			default:
				c.leg.emit(Event{Type: EventInfo, Text: fmt.Sprintf("ignored <%s> after <%s> (the input tag must be last)", vb.TagName(), action)})
			}
			continue
		}
		var err error
		switch v := vb.(type) {
		case kookoo.PlayText, kookoo.SayAs, kookoo.PlayAudio:
			_, err = c.playVerb(ctx, vb, false)
			did = true
		case kookoo.SendSMS:
			c.leg.emit(Event{Type: EventSMS, Text: v.Text})
			did = true
		case kookoo.GotoURL:
			t, terr := c.s.urlTarget(v.URL)
			if terr != nil {
				return nil, fmt.Errorf("%w: gotourl: %w", ErrApp, terr)
			}
			jump = &t
		case kookoo.CollectDTMF:
			action = "collectdtmf"
			next, err = c.collectDTMF(ctx, v)
		case kookoo.Record:
			action = "record"
			next, err = c.record(ctx, v)
		case kookoo.Dial:
			action = "dial"
			next, err = c.dial(ctx, v)
		case kookoo.Conference:
			action = "conference"
			next, err = c.conference(ctx, v)
		case kookoo.Hangup:
			return nil, ErrAppHangup
		case kookoo.Stream: // stream.go
			action = "stream"
			next, err = c.stream(ctx, v)
		case kookoo.StartRecord: // stream.go
			c.leg.emit(Event{Type: EventInfo, Text: "<start-record/>: whole-call recording is not emulated"})
		default:
			skipped = append(skipped, "<"+vb.TagName()+">")
			c.leg.emit(Event{Type: EventInfo, Text: "unsupported tag <" + vb.TagName() + "> skipped"})
		}
		if err != nil {
			return nil, err
		}
	}
	if jump != nil {
		c.target = *jump
		c.leg.emit(Event{Type: EventInfo, Text: "gotourl " + jump.String()})
	}
	switch {
	case action != "":
		c.idle = 0
		return next, nil
	case did || jump != nil:
		c.idle = 0
	case !resp.Filler:
		if len(skipped) > 0 {
			c.leg.emit(Event{Type: EventInfo, Text: "the emulator does not run " + strings.Join(skipped, ", ") + "; nothing else is left to do"})
		}
		return nil, ErrAppEnded
	default:
		if c.idle++; c.idle >= maxIdleResponses {
			return nil, fmt.Errorf("%w: %d responses in a row with filler=\"yes\" and nothing to do", ErrApp, c.idle)
		}
		c.leg.emit(Event{Type: EventInfo, Text: `filler="yes" with nothing to do: KooKoo requests the app again`})
	}
	return c.values(kookoo.EventNone, "", ""), nil
}

// playVerb plays a play tag; with bargeIn, keys pressed during it stop it
// and are returned.
func (c *call) playVerb(ctx context.Context, vb kookoo.Verb, bargeIn bool) (string, error) {
	switch v := vb.(type) {
	case kookoo.PlayText:
		c.process = "playtext"
		return c.speak(ctx, v.Text, bargeIn)
	case kookoo.SayAs:
		c.process = "say-as"
		return c.speak(ctx, sayAsText(v.Value, v.Format), bargeIn)
	case kookoo.PlayAudio:
		c.process = "playaudio"
		return c.playURL(ctx, v.URL, bargeIn)
	}
	c.leg.emit(Event{Type: EventInfo, Text: "ignored <" + vb.TagName() + "> inside <collectdtmf>"})
	return "", nil
}

// speak synthesizes text and plays it.
func (c *call) speak(ctx context.Context, text string, bargeIn bool) (string, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return "", nil
	}
	if utf8.RuneCountInString(text) > maxSpeakRunes {
		text = string([]rune(text)[:maxSpeakRunes])
		c.leg.emit(Event{Type: EventInfo, Text: fmt.Sprintf("text cut to %d characters", maxSpeakRunes)})
	}
	c.leg.emit(Event{Type: EventBot, Text: text})
	// Synthesize chunk by chunk and queue each as soon as it is ready:
	// the first frame leaves after the first clause is synthesized, and
	// later chunks are synthesized while earlier ones play.
	var last uint64
	for i, chunk := range splitSpeech(text) {
		synthStart := time.Now()
		pcm, err := c.s.cfg.TTS.Synthesize(ctx, chunk, c.s.cfg.Voice)
		if err == nil && pcm.Rate != audio.SampleRate {
			pcm, err = audio.Resample(pcm, audio.SampleRate)
		}
		c.log.Debug("synthesized", "chunk", i, "took", time.Since(synthStart), "chars", len(chunk))
		if err != nil {
			if ctx.Err() != nil {
				return "", context.Cause(ctx)
			}
			c.leg.emit(Event{Type: EventError, Text: "text-to-speech failed: " + err.Error()})
			break
		}
		if len(pcm.Samples) == 0 {
			continue
		}
		c.seq++
		last = c.seq
		if !c.leg.pacer.enqueue(ctx, &playItem{id: last, pcm: pcm.Samples}) {
			return "", context.Cause(ctx)
		}
	}
	if last == 0 {
		return "", nil
	}
	return c.awaitPlayed(ctx, last, bargeIn)
}

// splitSpeech cuts text into sentences, and a long first sentence at its
// first comma, so the first chunk is short to synthesize.
func splitSpeech(text string) []string {
	var out []string
	rest := text
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
		if i < 0 {
			out = append(out, rest)
			break
		}
		out = append(out, rest[:i+1])
		rest = strings.TrimSpace(rest[i+1:])
	}
	if len(out) > 0 && len(out[0]) > 60 {
		if j := strings.Index(out[0][25:], ", "); j >= 0 {
			cut := 25 + j + 1
			out = append([]string{out[0][:cut], strings.TrimSpace(out[0][cut:])}, out[1:]...)
		}
	}
	return out
}

// playURL fetches, decodes and plays an audio URL. Failures are shown and
// skipped, as a player would.
func (c *call) playURL(ctx context.Context, raw string, bargeIn bool) (string, error) {
	c.leg.emit(Event{Type: EventBot, URL: raw})
	pcm, err := c.s.fetchAudio(ctx, raw)
	if err != nil {
		if ctx.Err() != nil {
			return "", context.Cause(ctx)
		}
		c.leg.emit(Event{Type: EventError, Text: "playaudio: " + err.Error()})
		return "", nil
	}
	return c.play(ctx, pcm.Samples, bargeIn)
}

// fetchAudio gets an audio URL as 8 kHz PCM: the sim's own recordings
// directly, other URLs in process or over HTTP under the URL policy.
func (s *Sim) fetchAudio(ctx context.Context, raw string) (audio.PCM, error) {
	var body []byte
	if id, ok := s.localRecordingID(raw); ok {
		rec, found := s.recs.get(id)
		if !found {
			return audio.PCM{}, fmt.Errorf("%w: recording %s not found", ErrAudio, id)
		}
		body = rec.wav
	} else {
		t, err := s.urlTarget(raw)
		if err != nil {
			return audio.PCM{}, err
		}
		fctx, cancel := context.WithTimeout(ctx, s.cfg.AppTimeout)
		defer cancel()
		body, err = s.get(fctx, t, s.cfg.MaxAudioBytes, nil)
		if err != nil {
			return audio.PCM{}, fmt.Errorf("%w: fetch %s: %w", ErrAudio, t, err)
		}
	}
	pcm, err := audio.Decode(bytes.NewReader(body), s.cfg.MaxAudioBytes)
	if err != nil {
		return audio.PCM{}, fmt.Errorf("%w: decode: %w", ErrAudio, err)
	}
	if pcm.Rate != audio.SampleRate {
		if pcm, err = audio.Resample(pcm, audio.SampleRate); err != nil {
			return audio.PCM{}, fmt.Errorf("%w: resample: %w", ErrAudio, err)
		}
	}
	return pcm, nil
}

// localRecordingID recognises the sim's own recording URLs.
func (s *Sim) localRecordingID(raw string) (string, bool) {
	rest, ok := strings.CutPrefix(raw, s.cfg.PublicBaseURL+"/sim/recordings/")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, ".wav")
}

// play sends samples to the caller and waits until they have been sent.
// With bargeIn, the first key stops the audio; keys are returned.
func (c *call) play(ctx context.Context, samples []int16, bargeIn bool) (string, error) {
	if len(samples) == 0 {
		return "", nil
	}
	c.seq++
	id := c.seq
	if !c.leg.pacer.enqueue(ctx, &playItem{id: id, pcm: samples}) {
		return "", context.Cause(ctx)
	}
	return c.awaitPlayed(ctx, id, bargeIn)
}

// awaitPlayed waits until item last (and so everything queued before it)
// has been sent. With bargeIn, the first key flushes the queue; keys are
// returned.
func (c *call) awaitPlayed(ctx context.Context, last uint64, bargeIn bool) (string, error) {
	var keys []rune
	err := c.wait(ctx, waiter{
		note: func(n playNote) bool { return n.id == last && !n.started },
		digit: func(r rune) bool {
			if !bargeIn {
				return false
			}
			keys = append(keys, r)
			if len(keys) == 1 {
				c.leg.pacer.flush(ctx)
			}
			return false
		},
	})
	return string(keys), err
}

// dropQueuedFrames discards the caller frames waiting to be read.
func (c *call) dropQueuedFrames() {
	for {
		select {
		case <-c.leg.frames:
		default:
			return
		}
	}
}

// record runs a <record>: the end-pointer on the caller's frames with the
// verb's silence and maxduration (or the call's overrides), the WAV kept
// and served, the transcript streamed on the fast path.
func (c *call) record(ctx context.Context, v kookoo.Record) (url.Values, error) {
	c.flushTurn()
	c.process = "record"
	silence := firstPositive(c.opts.silence, v.Silence, defaultRecordSilence)
	maxDur := firstPositive(c.opts.maxRecord, v.MaxDuration, defaultRecordMax)
	term := rune(defaultTermChar)
	if r, _ := utf8.DecodeRuneInString(v.TermChar); r != utf8.RuneError {
		term = r
	}
	ep, err := audio.NewEndpointer(audio.EndpointConfig{
		SilencePeriod:  silence,
		MaxRecordTime:  maxDur,
		InitialSilence: min(c.s.cfg.InitialSilence, maxDur),
		TerminatorKey:  term,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: <record silence=%v maxduration=%v>: %w", ErrApp, silence, maxDur, err)
	}
	rec := audio.NewRecorder(maxDur)
	// The recording starts now: caller audio queued before it (while the
	// app answered or a reply was synthesized) is not part of it. Counted
	// as the recording's initial silence, up to five seconds of it made
	// the record end no_input at once, before the caller's words arrived.
	c.dropQueuedFrames()
	// The fast-path transcript starts before the caller is told: a caller
	// who hangs up (or whose call ends) as soon as it hears "listening"
	// ends the call's context, and a transcript started after that would
	// fail, leaving the recording to be downloaded again. Frames arriving
	// while it starts (the first call of a vocabulary builds its model)
	// queue and are end-pointed and transcribed after.
	live := c.startTranscript(ctx, silence)
	c.leg.emit(Event{Type: EventListen, Mode: "record"})

	var (
		res     audio.EndResult
		pressed rune // a key other than the terminator, reported as GotDTMF
		// arrivals[i] is when frame i arrived (ns since recordStart), to
		// measure how long after the last speech frame the end-pointer fired.
		arrivals    = make([]int64, 0, 512)
		recordStart = time.Now()
	)
	safety := time.NewTimer(maxDur + recordGrace)
	defer safety.Stop()
	err = c.wait(ctx, waiter{
		frame: func(f []int16) bool {
			_ = rec.Write(f) // full at maxduration; the end-pointer stops there too
			if len(arrivals) < maxArrivals {
				arrivals = append(arrivals, int64(time.Since(recordStart)))
			}
			var done bool
			res, done = ep.Write(f)
			if live != nil {
				live.write(f, res, ep.Speaking(), rec)
			}
			return done
		},
		digit: func(r rune) bool {
			var done bool
			res, done = ep.DTMF(r)
			if !done {
				// Not the terminator: the key stops the recording and is
				// reported as GotDTMF (see the package doc).
				res, pressed = ep.Hangup(), r
				res.Reason = audio.EndDTMF
				done = true
			}
			return done
		},
		timer: safety.C,
		fire: func() bool {
			res = audio.EndResult{Reason: "max_duration", End: maxDur}
			return true
		},
	})
	endAt := time.Now()
	hungUp := errors.Is(err, ErrCallerHangup) || errors.Is(err, ErrMediaFailed)
	if err != nil && !hungUp {
		if live != nil {
			live.abort()
		}
		return nil, err
	}
	if hungUp {
		res = ep.Hangup()
	}
	var tr stt.Result
	hasText := false
	closeStart := time.Now()
	if live != nil {
		tr, hasText = live.finish()
	}
	sttClose := time.Since(closeStart)
	pcm := rec.PCM()
	var buf bytes.Buffer
	if werr := audio.EncodeWAV(&buf, pcm, audio.EncodingPCM16); werr != nil {
		return nil, fmt.Errorf("sim: encode recording: %w", werr)
	}
	var speech time.Duration
	if res.Spoke {
		speech = res.SpeechEnd - res.SpeechStart
	}
	var sttTime time.Duration
	if live != nil {
		sttTime = live.busy
	}
	id := newRecordingID(v.Name)
	c.s.recs.put(&recording{id: id, wav: buf.Bytes(), transcript: tr, hasText: hasText, speech: speech, sttTime: sttTime})
	recURL := c.s.cfg.PublicBaseURL + "/sim/recordings/" + id + ".wav"
	if hasText {
		c.leg.emit(Event{Type: EventCaller, Text: tr.Text, Confidence: tr.Confidence})
	}
	status := recordStatus(res.Reason)
	c.s.m.endpointDelay.Observe(res.End.Seconds())
	c.turn = &Event{Type: EventTurn, Reason: status, SpeechMS: speech.Milliseconds(), RecordMS: res.End.Milliseconds(), URL: recURL, EndpointMS: -1}
	if i := int(res.SpeechEnd/audio.FrameDuration) - 1; res.Reason == audio.EndSilence && i >= 0 && i < len(arrivals) {
		// Wall time from the arrival of the last speech frame to the
		// decision; the configured silence period plus processing delay.
		c.turn.EndpointMS = (endAt.Sub(recordStart) - time.Duration(arrivals[i])).Milliseconds()
	}
	c.turnEndAt = endAt
	c.log.Debug("record ended", "reason", status, "speech", speech, "length", res.End, "stt_close", sttClose)
	if hungUp {
		c.hangupData, c.hangupStatus = recURL, status
		c.flushTurn()
		return nil, err
	}
	if pressed != 0 {
		c.flushTurn()
		c.leg.emit(Event{Type: EventDTMF, Text: string(pressed)})
		return c.values(kookoo.EventGotDTMF, string(pressed), ""), nil
	}
	r := c.request(kookoo.EventRecord)
	r.Data, r.Status = recURL, status
	r.RecordDuration = int((res.End + time.Second/2) / time.Second)
	return r.Values(), nil
}

// recordStatus is the Record event's status for an end reason.
func recordStatus(r audio.EndReason) string {
	if r == "" {
		return "unknown"
	}
	return string(r)
}

// collectDTMF runs a <collectdtmf>: prompts (a key stops them), then keys
// until l digits, the terminator t, or o milliseconds without a key.
func (c *call) collectDTMF(ctx context.Context, v kookoo.CollectDTMF) (url.Values, error) {
	// A pending turn is not flushed here: the prompts are the reply to it
	// (koel's menus speak inside <collectdtmf>), and their first frame
	// completes it. It is flushed after them, when none played.
	c.process = "collectdtmf"
	timeout := v.Timeout
	if timeout <= 0 {
		timeout = defaultDTMFTimeout
	}
	maxDigits := v.MaxDigits
	if maxDigits <= 0 || maxDigits > maxCollectDigits {
		maxDigits = maxCollectDigits
	}
	var digits []rune
	done := false
	press := func(r rune) bool {
		if v.TermChar != "" && string(r) == v.TermChar {
			done = true
			return true
		}
		digits = append(digits, r)
		done = len(digits) >= maxDigits
		return done
	}
	c.leg.emit(Event{Type: EventListen, Mode: "dtmf"})
	for _, p := range v.Prompts {
		keys, err := c.playVerb(ctx, p, true)
		c.process = "collectdtmf"
		if err != nil {
			return nil, err
		}
		for _, r := range keys {
			if press(r) {
				break
			}
		}
		if len(keys) > 0 {
			break
		}
	}
	c.flushTurn()
	if !done {
		t := time.NewTimer(timeout)
		defer t.Stop()
		err := c.wait(ctx, waiter{
			digit: func(r rune) bool {
				if press(r) {
					return true
				}
				t.Reset(timeout)
				return false
			},
			timer: t.C,
		})
		if err != nil {
			return nil, err
		}
	}
	c.leg.emit(Event{Type: EventDTMF, Text: string(digits)})
	return c.values(kookoo.EventGotDTMF, string(digits), ""), nil
}

// dial simulates a <dial>: it rings for DialRingTime, then reports the
// call's chosen outcome; an answered dial first talks for the chosen
// duration (capped by limittime). The caller hanging up meanwhile gives
// Hangup with process=dial and the dial's data and status (§1.3).
func (c *call) dial(ctx context.Context, v kookoo.Dial) (url.Values, error) {
	c.flushTurn()
	c.process = "dial"
	outcome := c.opts.dialOutcome
	c.leg.emit(Event{Type: EventDial, Text: kookoo.MaskNumber(v.Number), Status: outcome})
	c.hangupData, c.hangupStatus = "-1", DialNotAnswered
	if err := c.pause(ctx, c.s.cfg.DialRingTime); err != nil {
		return nil, err
	}
	data, talked := "-1", 0
	if outcome == DialAnswered {
		talk := c.opts.dialDuration
		if v.LimitTime > 0 {
			talk = min(talk, v.LimitTime)
		}
		if v.Record {
			data = c.silentRecording("dial", min(talk, maxDialRecording))
		}
		c.hangupData, c.hangupStatus = data, DialAnswered
		c.leg.emit(Event{Type: EventInfo, Text: fmt.Sprintf("dial answered (simulated): talking for %v", talk)})
		if err := c.pause(ctx, talk); err != nil {
			return nil, err
		}
		talked = int((talk + time.Second/2) / time.Second)
	}
	c.hangupData, c.hangupStatus = "", ""
	r := c.request(kookoo.EventDial)
	r.Data, r.Status, r.CallDuration = data, outcome, talked
	return r.Values(), nil
}

// conference simulates a <conference>: the caller is in it until they
// press # (KooKoo's Conference event, §1.3), or for the call's chosen
// conference duration when one is set. Other keys are ignored. Hanging up
// gives Hangup with process=conference.
func (c *call) conference(ctx context.Context, v kookoo.Conference) (url.Values, error) {
	c.flushTurn()
	c.process = "conference"
	c.leg.emit(Event{Type: EventConference, Text: v.Name})
	c.leg.emit(Event{Type: EventListen, Mode: "conference"})
	start := time.Now()
	w := waiter{digit: func(r rune) bool { return r == '#' }}
	if d := c.opts.confDuration; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		w.timer = t.C
	}
	if err := c.wait(ctx, w); err != nil {
		return nil, err
	}
	r := c.request(kookoo.EventConference)
	r.CallDuration = int((time.Since(start) + time.Second/2) / time.Second)
	return r.Values(), nil
}

// pause lets d pass on the call (caller audio and keys are dropped),
// ending early if the caller hangs up.
func (c *call) pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	return c.wait(ctx, waiter{timer: t.C})
}

// silentRecording serves d of silence as a recording and returns its URL
// (the emulator has no far end to record).
func (c *call) silentRecording(name string, d time.Duration) string {
	pcm := audio.PCM{Rate: audio.SampleRate, Samples: make([]int16, int(d/time.Second)*audio.SampleRate)}
	var buf bytes.Buffer
	if err := audio.EncodeWAV(&buf, pcm, audio.EncodingPCM16); err != nil {
		return "-1"
	}
	id := newRecordingID(name)
	c.s.recs.put(&recording{id: id, wav: buf.Bytes()})
	return c.s.cfg.PublicBaseURL + "/sim/recordings/" + id + ".wav"
}

// request is a KooKoo request of this call (§1.2 of the spec), without
// event-specific fields; durations start absent (-1).
func (c *call) request(ev kookoo.Event) kookoo.Request {
	return kookoo.Request{
		Event:             ev,
		EventMissing:      ev == kookoo.EventNone,
		SID:               c.sid,
		CID:               c.opts.cid,
		CalledNumber:      c.s.cfg.CalledNumber,
		CallDuration:      -1,
		TotalCallDuration: -1,
		RecordDuration:    -1,
	}
}

// values encodes a request with data and status. An empty event is the
// follow-up request after a play-only response.
func (c *call) values(ev kookoo.Event, data, status string) url.Values {
	r := c.request(ev)
	r.Data, r.Status = data, status
	if ev == kookoo.EventNewCall {
		tail := c.opts.cid
		if len(tail) > 10 {
			tail = tail[len(tail)-10:]
		}
		r.CIDE164, r.CIDType, r.Circle, r.Operator = "+91"+tail, "MOBILE", "KARNATAKA", "Airtel"
		r.CIDCountry, r.CIDCountryName = "91", "India"
		r.RequestTime = time.Now().Format(time.DateTime)
	}
	return r.Values()
}

// callSeconds is the call's duration so far in whole seconds.
func (c *call) callSeconds() int { return int(time.Since(c.start).Seconds()) }

// hangupValues is the Hangup request after the caller hung up, with the
// running tag and any recording cut short.
func (c *call) hangupValues() url.Values {
	r := c.request(kookoo.EventHangup)
	r.Data, r.Status = c.hangupData, c.hangupStatus
	r.Process = c.process
	r.TotalCallDuration = c.callSeconds()
	return r.Values()
}

// disconnectValues is the Disconnect request after <hangup/> (or a
// shutdown, with message).
func (c *call) disconnectValues(message string) url.Values {
	r := c.request(kookoo.EventDisconnect)
	r.Process = "none"
	r.Message = message
	r.TotalCallDuration = c.callSeconds()
	return r.Values()
}

func firstPositive(ds ...time.Duration) time.Duration {
	for _, d := range ds {
		if d > 0 {
			return d
		}
	}
	return 0
}
