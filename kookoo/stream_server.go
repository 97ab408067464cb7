package kookoo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/audio/tts"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot"
)

// Voice modes of a KooKoo connection (ivr.ConnectionSettings.VoiceMode).
const (
	VoiceModeRecord = "record"
	VoiceModeStream = "stream"
)

// Stream defaults.
const (
	// DefaultBargeIn is how long the caller must speak over a reply before
	// it is cut (barge-in).
	DefaultBargeIn = 300 * time.Millisecond
	// DefaultStartTimeout is how long the socket may stay without a start.
	DefaultStartTimeout = 5 * time.Second
	// DefaultStreamWriteTimeout bounds one WebSocket write; a reader slower
	// than that breaks the stream (the call goes on in record mode).
	DefaultStreamWriteTimeout = 2 * time.Second
	// DefaultMaxQueuedAudio caps the reply audio queued for the writer.
	DefaultMaxQueuedAudio = 2 * time.Minute
	// DefaultMaxStreamDuration caps one stream.
	DefaultMaxStreamDuration = time.Hour
	// streamKeyPrefix marks a call's last event key as written by the
	// stream transport, so event=Stream knows the stored answer is the way
	// out of the stream.
	streamKeyPrefix = "stream:"
	// sessionEndWait bounds how long event=Stream waits for this node's
	// session of the call to store its last turn.
	sessionEndWait = 10 * time.Second
)

// StreamConfig configures a [StreamServer].
type StreamConfig struct {
	// App is the KooKoo app whose connections and voice service the stream
	// shares. Required.
	App *App
	// STT is the streaming recogniser. Required.
	STT stt.Transcriber
	// Vocabulary restricts recognition (the FAQ bot); nil = none.
	Vocabulary bot.Vocabulary
	// TTS speaks replies. Required.
	TTS tts.Synthesizer
	// Voice is the TTS voice.
	Voice tts.Voice
	// Tokens signs and checks the per-call stream URLs. Required.
	Tokens *StreamTokens
	// PublicURL is the http(s) base URL KooKoo reaches koel at; the stream
	// URL is its ws(s) twin. Required.
	PublicURL string
	// BargeIn, StartTimeout, WriteTimeout, MaxQueuedAudio,
	// MaxStreamDuration: 0 = the defaults above.
	BargeIn           time.Duration
	StartTimeout      time.Duration
	WriteTimeout      time.Duration
	MaxQueuedAudio    time.Duration
	MaxStreamDuration time.Duration
	// Logger gets one line per stream start, refusal and end (nil =
	// discard).
	Logger *slog.Logger
	// Registerer receives the stream metrics (nil = not exported).
	Registerer prometheus.Registerer
	// Now is the clock (nil = time.Now).
	Now func() time.Time
}

// StreamServer is koel's side of KooKoo's <stream>: for connections with
// voice_mode stream it answers NewCall with <stream> (a per-call signed
// URL), serves the WebSocket at /kookoo/{identifier}/stream, runs each
// turn on the live audio (end-pointer, streaming recogniser, the voice
// turn service, paced TTS back, barge-in), and answers event=Stream with
// the way out of the stream (dial, collectdtmf, hangup) or, when the
// stream broke, with record mode from the stored call.
type StreamServer struct {
	app  *App
	cfg  StreamConfig
	base *url.URL
	log  *slog.Logger
	m    *streamMetrics
	now  func() time.Time

	// onReplyLatency, when set (benchmarks), sees every end of turn ->
	// first reply packet latency.
	onReplyLatency func(time.Duration)

	mu       sync.Mutex
	sessions map[string]*streamSession
	wg       sync.WaitGroup
	closed   bool
}

// NewStreamServer returns a stream server and hooks it into cfg.App, which
// from then on answers NewCall of stream-mode connections and event=Stream
// through it.
func NewStreamServer(cfg StreamConfig) (*StreamServer, error) {
	switch {
	case cfg.App == nil:
		return nil, errors.New("kookoo: stream server needs the app")
	case cfg.STT == nil:
		return nil, errors.New("kookoo: stream server needs a transcriber")
	case cfg.TTS == nil:
		return nil, errors.New("kookoo: stream server needs a synthesizer")
	case cfg.Tokens == nil:
		return nil, errors.New("kookoo: stream server needs a token issuer")
	}
	base, err := url.Parse(strings.TrimRight(cfg.PublicURL, "/"))
	if err != nil || base.Host == "" || (base.Scheme != "http" && base.Scheme != "https") {
		return nil, fmt.Errorf("kookoo: stream public URL %q is not an absolute http(s) URL", cfg.PublicURL)
	}
	base.Scheme = map[string]string{"http": "ws", "https": "wss"}[base.Scheme]
	cfg.BargeIn = orDuration(cfg.BargeIn, DefaultBargeIn)
	cfg.StartTimeout = orDuration(cfg.StartTimeout, DefaultStartTimeout)
	cfg.WriteTimeout = orDuration(cfg.WriteTimeout, DefaultStreamWriteTimeout)
	cfg.MaxQueuedAudio = orDuration(cfg.MaxQueuedAudio, DefaultMaxQueuedAudio)
	cfg.MaxStreamDuration = orDuration(cfg.MaxStreamDuration, DefaultMaxStreamDuration)
	s := &StreamServer{app: cfg.App, cfg: cfg, base: base, log: cfg.Logger, now: cfg.Now, sessions: map[string]*streamSession{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	reg := cfg.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if s.m, err = newStreamMetrics(reg); err != nil {
		return nil, err
	}
	cfg.App.stream = s
	return s, nil
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// ActiveStreams returns the streams this process is serving.
func (s *StreamServer) ActiveStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Close ends every stream this process serves and waits for their last
// turns to be stored.
func (s *StreamServer) Close() {
	s.mu.Lock()
	s.closed = true
	for _, ss := range s.sessions {
		ss.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// answers reports whether the app hands req to the stream transport.
func (s *StreamServer) answers(req Request, settings ivr.ConnectionSettings) bool {
	switch req.Event {
	case EventStream:
		return true
	case EventNewCall:
		return streamMode(settings)
	}
	return false
}

// streamMode reports whether a connection's calls are streamed.
func streamMode(settings ivr.ConnectionSettings) bool {
	return strings.EqualFold(strings.TrimSpace(settings.VoiceMode), VoiceModeStream) && validNumber(settings.SIPNumber)
}

// serve answers NewCall (with <stream>) and event=Stream.
func (s *StreamServer) serve(ctx context.Context, w http.ResponseWriter, identifier string, req Request, conn ivr.Connection, settings ivr.ConnectionSettings, log *slog.Logger) {
	var (
		ans ivr.VoiceAnswer
		err error
	)
	if req.Event == EventNewCall {
		ans, err = s.app.voice.Handle(ctx, ivr.VoiceEvent{
			SID: req.SID, Connection: conn, Settings: settings, Caller: req.CID, CalledNumber: req.CalledNumber,
			Key: eventKey(req), Event: ivr.CallStarted{},
		}, startRenderer{s: s, identifier: identifier, settings: settings})
	} else {
		ans, err = s.streamEnded(ctx, req, settings, log)
	}
	if err != nil {
		logFailure(ctx, log, err)
		s.app.internalError(w, req, settings)
		return
	}
	writeBody(w, ans)
}

// startRenderer renders the answer to a stream-mode NewCall: the welcome
// and the first turn happen on the stream, so the answer is <stream> (and
// <start-record/> when the connection records calls).
type startRenderer struct {
	s          *StreamServer
	identifier string
	settings   ivr.ConnectionSettings
}

func (r startRenderer) Render(call ivr.Call, actions []ivr.CallAction) ivr.VoiceAnswer {
	if len(actions) == 0 || !call.Live() {
		return r.s.app.Render(call, actions)
	}
	if _, ok := actions[len(actions)-1].(ivr.Listen); !ok {
		return r.s.app.Render(call, actions)
	}
	// The call is stored right after rendering, at the next version; the
	// token is good for that version only.
	token := r.s.cfg.Tokens.Issue(r.identifier, call.SID, call.Version+1)
	u := *r.s.base
	u.Path = strings.TrimRight(u.Path, "/") + "/kookoo/" + url.PathEscape(r.identifier) + "/stream"
	u.RawQuery = url.Values{"token": {token}}.Encode()
	uui, _ := json.Marshal(map[string]string{"sid": call.SID}) // a map of strings always marshals
	verbs := []Verb{}
	if r.settings.RecordCalls {
		verbs = append(verbs, StartRecord{})
	}
	verbs = append(verbs, Stream{URL: u.String(), SIPNumber: r.settings.SIPNumber, XUUI: string(uui)})
	return ivr.VoiceAnswer{Body: Response{SID: call.SID, Verbs: verbs}.String()}
}

// streamEnded answers event=Stream: the stream of the call is over and the
// call is up. The stored call says what comes next: the exit the stream
// chose (dial, collectdtmf, hangup), or, when the stream broke, record
// mode from the last stored turn. Nothing is written.
func (s *StreamServer) streamEnded(ctx context.Context, req Request, settings ivr.ConnectionSettings, log *slog.Logger) (ivr.VoiceAnswer, error) {
	s.awaitSession(ctx, req.SID)
	call, err := s.app.store.GetCall(ctx, req.SID)
	if errors.Is(err, ivr.ErrNotFound) {
		log.LogAttrs(ctx, slog.LevelWarn, "event=Stream for a call koel never streamed; hanging up")
		return ivr.VoiceAnswer{Body: Response{SID: req.SID, Verbs: []Verb{Hangup{}}}.String()}, nil
	}
	if err != nil {
		return ivr.VoiceAnswer{}, fmt.Errorf("get call: %w", err)
	}
	if !call.Live() {
		return ivr.VoiceAnswer{Body: Response{SID: call.SID, Verbs: []Verb{Hangup{}}}.String()}, nil
	}
	if strings.HasPrefix(call.LastEventKey, streamKeyPrefix) && call.LastResponse != "" {
		if resp, err := ParseResponse([]byte(call.LastResponse)); err == nil {
			if n := len(resp.Verbs); n > 0 && resp.Verbs[n-1].TagName() != "record" {
				// The exit the stream chose.
				return ivr.VoiceAnswer{Body: call.LastResponse}, nil
			}
		}
		s.m.fallbacks.Inc()
		log.LogAttrs(ctx, slog.LevelWarn, "stream ended without an exit; the call goes on in record mode", slog.Int("turn", call.Turn))
		return ivr.VoiceAnswer{Body: call.LastResponse}, nil
	}
	// The stream never got to a turn: start over in record mode.
	s.m.fallbacks.Inc()
	log.LogAttrs(ctx, slog.LevelWarn, "stream ended before its first turn; the call goes on in record mode")
	s2 := ivr.VoiceSettings(settings)
	return s.app.Render(call, []ivr.CallAction{ivr.Say{Text: s2.WelcomeMessage}, ivr.Listen{
		Name:        ivr.RecordingName(call.SID, max(call.Turn, 1)),
		Silence:     time.Duration(s2.SilencePeriod) * time.Second,
		MaxDuration: time.Duration(s2.MaxRecordTime) * time.Second,
	}}), nil
}

// awaitSession waits until this node's session of sid, if any, has ended
// (and stored its last turn).
func (s *StreamServer) awaitSession(ctx context.Context, sid string) {
	s.mu.Lock()
	ss := s.sessions[sid]
	s.mu.Unlock()
	if ss == nil {
		return
	}
	ss.cancel()
	t := time.NewTimer(sessionEndWait)
	defer t.Stop()
	select {
	case <-ss.done:
	case <-t.C:
	case <-ctx.Done():
	}
}

// ServeHTTP accepts KooKoo's WebSocket at /kookoo/{identifier}/stream.
// Everything is checked before the upgrade: the token (signature, expiry,
// connection), that no other socket serves the call, and that the stored
// call is still where the token left it; any failure is an HTTP error and
// one log line, and nothing is stored.
func (s *StreamServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	identifier := mux.Vars(r)["identifier"]
	log := s.log.With(slog.String("identifier", truncate(identifier)))
	ctx := r.Context()
	refuse := func(status int, reason, msg string, attrs ...slog.Attr) {
		s.m.refused.WithLabelValues(reason).Inc()
		log.LogAttrs(ctx, slog.LevelWarn, "stream refused: "+msg, attrs...)
		http.Error(w, msg, status)
	}
	claim, err := s.cfg.Tokens.Verify(r.URL.Query().Get("token"))
	switch {
	case errors.Is(err, ErrStreamTokenExpired):
		refuse(http.StatusUnauthorized, "expired", "stream token expired")
		return
	case err != nil:
		refuse(http.StatusUnauthorized, "forged", "invalid stream token")
		return
	case claim.Identifier != identifier:
		refuse(http.StatusUnauthorized, "forged", "stream token is for another connection")
		return
	}
	log = log.With(slog.String("sid", claim.SID))
	conn, err := s.app.connection(ctx, identifier)
	if err != nil {
		refuse(http.StatusNotFound, "connection", "unknown or inactive connection")
		return
	}
	ss, status, reason, err := s.attach(ctx, claim, conn, log)
	if err != nil {
		refuse(status, reason, err.Error())
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		s.detach(ss)
		log.LogAttrs(ctx, slog.LevelWarn, "stream upgrade failed", slog.String("error", err.Error()))
		return
	}
	ws.SetReadLimit(MaxStreamMessageBytes)
	ss.run(ws)
}

// attach claims the call for a new session: no other session on this
// node, and the stored call at the token's version, which the claim then
// moves on (so the token cannot open a second socket anywhere).
func (s *StreamServer) attach(ctx context.Context, claim StreamClaim, conn ivr.Connection, log *slog.Logger) (*streamSession, int, string, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, http.StatusServiceUnavailable, "closing", errors.New("shutting down")
	}
	if _, busy := s.sessions[claim.SID]; busy {
		s.mu.Unlock()
		return nil, http.StatusConflict, "second_socket", errors.New("the call already has a stream")
	}
	ss := newStreamSession(s, claim, conn, log)
	s.sessions[claim.SID] = ss
	s.wg.Add(1)
	s.mu.Unlock()

	call, err := s.app.store.GetCall(ctx, claim.SID)
	switch {
	case errors.Is(err, ivr.ErrNotFound):
		s.detach(ss)
		return nil, http.StatusNotFound, "unknown_call", errors.New("no such call")
	case err != nil:
		s.detach(ss)
		return nil, http.StatusServiceUnavailable, "store", fmt.Errorf("load call: %w", err)
	case call.Version != claim.Version || !call.Live() || call.ConnectionID != conn.ID:
		s.detach(ss)
		return nil, http.StatusConflict, "second_socket", errors.New("the call's stream was already opened or has ended")
	}
	settings := s.app.voiceSettings(conn, log)
	fallback := s.app.Render(call, []ivr.CallAction{ivr.Say{Text: settings.WelcomeMessage}, ivr.Listen{
		Name:        ivr.RecordingName(call.SID, call.Turn),
		Silence:     time.Duration(settings.SilencePeriod) * time.Second,
		MaxDuration: time.Duration(settings.MaxRecordTime) * time.Second,
	}})
	call.LastEventKey, call.LastResponse = streamKeyPrefix+"attach", fallback.Body
	if err := s.app.store.UpdateCall(ctx, &call); err != nil {
		s.detach(ss)
		return nil, http.StatusConflict, "second_socket", fmt.Errorf("claim the call: %w", err)
	}
	ss.call, ss.settings = call, settings
	return ss, 0, "", nil
}

// detach forgets a session.
func (s *StreamServer) detach(ss *streamSession) {
	s.mu.Lock()
	if s.sessions[ss.sid] == ss {
		delete(s.sessions, ss.sid)
	}
	s.mu.Unlock()
	s.wg.Done()
}
