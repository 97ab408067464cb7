package sim

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/pion/webrtc/v4"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/kookoo"
)

// The fast path's interfaces, as koel's KooKoo app looks for them.
var (
	_ kookoo.TranscriptSource  = (*Sim)(nil)
	_ kookoo.TranscriptTimings = (*Sim)(nil)
	_ kookoo.HeldRecordings    = (*Sim)(nil)
)

// maxOfferRequestBytes caps the JSON body of POST /sim/offer.
const maxOfferRequestBytes = 64 << 10

// Sim is the softphone server: it answers WebRTC offers, runs one KooKoo
// emulator per call and serves the page and the recordings.
type Sim struct {
	cfg  Config
	log  *slog.Logger
	m    *metrics
	api  *webrtc.API
	recs *recordings

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	limits *offerLimits
	hs     *handshakes
	// clock sends every call's frames (see FrameClock).
	clock *FrameClock

	mu       sync.Mutex
	closed   bool
	draining bool
	active   int
	calls    map[string]*call
}

// New validates cfg, applies defaults and returns a Sim ready to mount.
func New(cfg Config) (*Sim, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	api, err := newAPI(cfg.Logger)
	if err != nil {
		return nil, err
	}
	hs, err := newHandshakes(cfg.MaxHandshakes, connectTimeout, cfg.Registerer, cfg.Logger)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Sim{
		hs:     hs,
		clock:  NewFrameClock(0),
		cfg:    cfg,
		log:    cfg.Logger,
		m:      m,
		api:    api,
		recs:   newRecordings(cfg.MaxRecordingBytes, cfg.RecordingTTL),
		limits: newOfferLimits(cfg.OffersPerMinute, time.Now),
		ctx:    ctx,
		cancel: cancel,
		calls:  map[string]*call{},
	}, nil
}

// Routes mounts the sim on r: GET /sim/ (the page) and its static files
// under /sim/static/, POST /sim/offer (SDP offer → answer) and
// GET /sim/recordings/{id}.wav.
func (s *Sim) Routes(r *mux.Router) {
	r.HandleFunc("/sim", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/sim/", http.StatusMovedPermanently)
	}).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/sim/", pageHandler()).Methods(http.MethodGet, http.MethodHead)
	r.PathPrefix("/sim/static/").Handler(staticHandler()).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/sim/offer", s.handleOffer).Methods(http.MethodPost)
	r.HandleFunc("/sim/link", s.handleLink).Methods(http.MethodGet)
	r.HandleFunc("/sim/recordings/{id}.wav", s.handleRecording).Methods(http.MethodGet, http.MethodHead)
}

// LookupTranscript returns the transcript the softphone streamed while it
// recorded recordingURL, for koel's KooKoo app's fast path. It reports
// false for URLs the sim did not make, recordings made without
// speech-to-text, and recordings that expired.
func (s *Sim) LookupTranscript(recordingURL string) (stt.Result, bool) {
	rec, ok := s.transcribed(recordingURL)
	if !ok {
		return stt.Result{}, false
	}
	return rec.transcript, true
}

// LookupTranscriptTimings returns, for a recording LookupTranscript knows,
// how long the caller spoke (the end-pointer's span of speech) and how long
// the recogniser worked on the transcript, so that koel stores them on the
// turn as record mode does.
func (s *Sim) LookupTranscriptTimings(recordingURL string) (speech, recognition time.Duration, ok bool) {
	rec, ok := s.transcribed(recordingURL)
	if !ok {
		return 0, 0, false
	}
	return rec.speech, rec.sttTime, true
}

// LookupRecordingPCM returns the audio of a recording LookupTranscript
// knows, as 8 kHz mono PCM read from the sim's memory (nothing is
// downloaded), so that koel's voice service can decode it again with a
// closed vocabulary (the yes/no and digits passes).
func (s *Sim) LookupRecordingPCM(recordingURL string) ([]int16, bool) {
	rec, ok := s.transcribed(recordingURL)
	if !ok {
		return nil, false
	}
	pcm, err := audio.DecodeWAV(bytes.NewReader(rec.wav), int64(len(rec.wav)))
	if err != nil || pcm.Rate != audio.SampleRate {
		// The sim wrote this WAV itself; it cannot be malformed.
		s.log.Warn("held recording not decodable", "recording", rec.id, "err", err)
		return nil, false
	}
	return pcm.Samples, true
}

// transcribed returns the live recording at recordingURL that has a
// transcript.
func (s *Sim) transcribed(recordingURL string) (*recording, bool) {
	rest, ok := strings.CutPrefix(recordingURL, s.cfg.PublicBaseURL+"/sim/recordings/")
	if !ok {
		return nil, false
	}
	id, ok := strings.CutSuffix(rest, ".wav")
	if !ok {
		return nil, false
	}
	rec, ok := s.recs.get(id)
	if !ok || !rec.hasText {
		return nil, false
	}
	return rec, true
}

// ActiveCalls is the number of calls in progress (including ones still
// negotiating).
func (s *Sim) ActiveCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// Drain refuses new calls (503) and lets the calls in progress go on; the
// server's drain calls it before it waits for them. Close still ends them.
func (s *Sim) Drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining = true
}

// Close refuses new calls, hangs up every call and waits for their
// goroutines. It is idempotent.
func (s *Sim) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// reserve takes a call slot.
func (s *Sim) reserve() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.draining {
		return ErrDraining
	}
	if s.active >= s.cfg.MaxCalls {
		return fmt.Errorf("%w (limit %d)", ErrTooManyCalls, s.cfg.MaxCalls)
	}
	s.active++
	s.m.callsActive.Inc()
	return nil
}

func (s *Sim) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	s.m.callsActive.Dec()
}

// offerRequest is the body of POST /sim/offer.
type offerRequest struct {
	// SDP is the caller's complete (non-trickle) offer.
	SDP  string `json:"sdp"`
	Type string `json:"type,omitempty"`
	// Connection names koel's own KooKoo connection; AppURL any KooKoo
	// app. Exactly one is set.
	Connection string `json:"connection,omitempty"`
	AppURL     string `json:"app_url,omitempty"`
	// SilencePeriod and MaxRecordTime (seconds) override every <record>'s
	// silence and maxduration when positive.
	SilencePeriod float64 `json:"silence_period,omitempty"`
	MaxRecordTime float64 `json:"max_record_time,omitempty"`
	// Caller is the cid to present; empty draws a realistic one.
	Caller string `json:"caller,omitempty"`
	// Strict ends the call on any response that needs tolerant reading or
	// fails kookoo's validation (koel call --strict).
	Strict bool `json:"strict,omitempty"`
	// DialOutcome is the simulated result of every <dial>: answered,
	// not_answered or busy; empty uses the server's default.
	DialOutcome string `json:"dial_outcome,omitempty"`
	// DialDuration is how long an answered <dial> talks, in seconds
	// (callduration).
	DialDuration float64 `json:"dial_duration,omitempty"`
	// ConferenceDuration is how long the caller stays in a <conference>
	// before leaving, in seconds; 0 stays until the caller presses #.
	ConferenceDuration float64 `json:"conference_duration,omitempty"`
	// Echo calls the echo app instead of a KooKoo app: the caller's
	// audio is played back to it (koel load echo). No connection or
	// app_url with it.
	Echo bool `json:"echo,omitempty"`
}

// offerResponse is the answer to POST /sim/offer.
type offerResponse struct {
	SDP    string `json:"sdp"`
	Type   string `json:"type"`
	CallID string `json:"call_id"`
	SID    string `json:"sid"`
}

// callOptions are a call's validated settings.
type callOptions struct {
	target       target
	connection   string
	silence      time.Duration
	maxRecord    time.Duration
	cid          string
	strict       bool
	dialOutcome  string
	dialDuration time.Duration
	confDuration time.Duration
	echo         bool
}

// parseOfferRequest validates everything in an offer request but the SDP.
func (s *Sim) parseOfferRequest(req offerRequest) (callOptions, error) {
	var o callOptions
	if req.Type != "" && req.Type != "offer" {
		return o, fmt.Errorf("%w: type %q is not \"offer\"", ErrBadRequest, req.Type)
	}
	var err error
	switch {
	case req.Echo && (req.Connection != "" || req.AppURL != ""):
		return o, fmt.Errorf("%w: an echo call takes no connection or app_url", ErrBadRequest)
	case req.Echo:
		o.echo = true
	case req.Connection != "" && req.AppURL != "":
		return o, fmt.Errorf("%w: give a connection or an app_url, not both", ErrBadRequest)
	case req.Connection != "":
		o.connection = req.Connection
		o.target, err = s.connectionTarget(req.Connection)
	case req.AppURL != "":
		o.target, err = s.urlTarget(req.AppURL)
	default:
		return o, fmt.Errorf("%w: give a connection or an app_url", ErrBadRequest)
	}
	if err != nil {
		return o, err
	}
	sec := func(name string, v, max float64) (time.Duration, error) {
		if v < 0 || v > max || v != v {
			return 0, fmt.Errorf("%w: %s %v is outside 0..%v seconds", ErrBadRequest, name, v, max)
		}
		return time.Duration(v * float64(time.Second)), nil
	}
	if o.silence, err = sec("silence_period", req.SilencePeriod, 60); err != nil {
		return o, err
	}
	if o.maxRecord, err = sec("max_record_time", req.MaxRecordTime, 600); err != nil {
		return o, err
	}
	if o.dialDuration, err = sec("dial_duration", req.DialDuration, 3600); err != nil {
		return o, err
	}
	if o.confDuration, err = sec("conference_duration", req.ConferenceDuration, 3600); err != nil {
		return o, err
	}
	o.strict = req.Strict
	switch req.DialOutcome {
	case "":
		o.dialOutcome, o.dialDuration = s.cfg.DialOutcome, cmp.Or(o.dialDuration, s.cfg.DialDuration)
	case DialAnswered, DialNotAnswered, DialBusy:
		o.dialOutcome = req.DialOutcome
	default:
		return o, fmt.Errorf("%w: dial_outcome %q is not %s, %s or %s", ErrBadRequest, req.DialOutcome, DialAnswered, DialNotAnswered, DialBusy)
	}
	switch {
	case req.Caller == "":
		o.cid = randomDigits("9", 10)
	case len(req.Caller) > 16 || strings.Trim(req.Caller, "+0123456789") != "":
		return o, fmt.Errorf("%w: caller %q is not a phone number", ErrBadRequest, req.Caller)
	default:
		o.cid = req.Caller
	}
	return o, nil
}

// httpError writes a JSON error, {"error_message": "…"}, with the status
// that fits err.
func httpError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrTooManyCalls), errors.Is(err, ErrClosed), errors.Is(err, ErrDraining):
		code = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "5")
	case errors.Is(err, ErrRateLimited):
		code = http.StatusTooManyRequests
		w.Header().Set("Retry-After", "10")
	case errors.Is(err, ErrUnauthorized):
		code = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Bearer realm="koel softphone"`)
	case errors.Is(err, ErrUnknownConnection):
		code = http.StatusNotFound
	case errors.Is(err, ErrUnsupportedMedia):
		code = http.StatusUnsupportedMediaType
	case errors.Is(err, ErrBadOffer), errors.Is(err, ErrNoAudio), errors.Is(err, ErrBadRequest), errors.Is(err, ErrURLNotAllowed):
		code = http.StatusBadRequest
	}
	msg := err.Error()
	if code == http.StatusInternalServerError {
		msg = "sim: internal error"
	}
	writeJSON(w, code, map[string]string{"error_message": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// handleOffer answers POST /sim/offer: limit and authorize the client,
// validate, check the connection, take a slot, answer the SDP, start the
// call.
func (s *Sim) handleOffer(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.Open && !s.limits.allow(clientAddr(r)) {
		s.m.calls.WithLabelValues(resultRejected).Inc()
		httpError(w, fmt.Errorf("%w: at most %d offers a minute from one address", ErrRateLimited, s.cfg.OffersPerMinute))
		return
	}
	// JSON only: a cross-site form or text/plain post (no CORS preflight)
	// cannot start calls.
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		httpError(w, fmt.Errorf("%w: offer must be application/json", ErrUnsupportedMedia))
		return
	}
	var req offerRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxOfferRequestBytes))
	if err := dec.Decode(&req); err != nil {
		httpError(w, fmt.Errorf("%w: body: %w", ErrBadRequest, err))
		return
	}
	if err := s.authorize(r, req.Connection); err != nil {
		s.m.calls.WithLabelValues(resultRejected).Inc()
		httpError(w, err)
		return
	}
	opts, err := s.parseOfferRequest(req)
	if err != nil {
		httpError(w, err)
		return
	}
	if err := checkOffer(req.SDP); err != nil {
		httpError(w, err)
		return
	}
	if opts.connection != "" && s.cfg.CheckConnection != nil {
		if err := s.cfg.CheckConnection(r.Context(), opts.connection); err != nil {
			s.m.calls.WithLabelValues(resultRejected).Inc()
			httpError(w, err)
			return
		}
	}
	if err := s.reserve(); err != nil {
		s.m.calls.WithLabelValues(resultRejected).Inc()
		s.log.Warn("offer refused", "err", err)
		httpError(w, err)
		return
	}
	release, err := s.hs.acquire(r.Context())
	if err != nil {
		s.release()
		s.m.calls.WithLabelValues(resultRejected).Inc()
		s.log.Warn("offer refused", "err", err)
		httpError(w, err)
		return
	}
	resp, err := s.answer(r.Context(), req.SDP, opts, release)
	if err != nil {
		s.release()
		s.m.calls.WithLabelValues(resultRejected).Inc()
		s.log.Warn("offer failed", "err", err)
		httpError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// answer builds the media leg for an offer and starts the call; release
// frees the offer's handshake slot once the media is up (or failed). On
// error nothing is left running.
func (s *Sim) answer(ctx context.Context, offer string, opts callOptions, release func()) (offerResponse, error) {
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		release()
		return offerResponse{}, fmt.Errorf("sim: new peer connection: %w", err)
	}
	sid := randomDigits("2", 17)
	id := randomHex(8)
	log := s.log.With("call_id", id, "sid", sid)
	l := newLeg(pc, log, randomUint32())
	l.pacer.onSent = func() { s.m.framesSent.Inc(); s.m.rtpOut.Inc() }
	l.onPacket = s.m.packetIn
	l.pacer.onLate = s.m.framesLate.Inc
	l.pacer.clock = s.clock
	l.wire()
	l.holdUntilConnected(release)
	fail := func(err error) (offerResponse, error) {
		_ = l.close()
		return offerResponse{}, err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrBadOffer, err))
	}
	sender, err := pc.AddTrack(l.track)
	if err != nil {
		return fail(fmt.Errorf("%w: add track: %w", ErrBadOffer, err))
	}
	l.goTracked(func() { drainRTCP(sender) })
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("%w: create answer: %w", ErrBadOffer, err))
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return fail(fmt.Errorf("sim: set local description: %w", err))
	}
	t := time.NewTimer(gatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		return fail(fmt.Errorf("sim: ice gathering timed out"))
	case <-ctx.Done():
		return fail(ctx.Err())
	case <-s.ctx.Done():
		return fail(ErrClosed)
	}
	c := newCall(s, id, sid, opts, l, log)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fail(ErrClosed)
	}
	s.calls[id] = c
	s.wg.Add(1)
	s.mu.Unlock()
	go c.run(s.ctx)
	app := opts.target.String()
	if opts.echo {
		app = "echo"
	}
	log.Info("call started", "app", app, "caller", kookoo.MaskNumber(opts.cid))
	return offerResponse{SDP: pc.LocalDescription().SDP, Type: "answer", CallID: id, SID: sid}, nil
}

// handleRecording serves GET /sim/recordings/{id}.wav.
func (s *Sim) handleRecording(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	rec, ok := s.recs.get(id)
	if !ok {
		http.Error(w, "recording not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "audio/wav")
	w.Header().Set("Cache-Control", "private, max-age=3600")
	http.ServeContent(w, r, id+".wav", rec.created, bytes.NewReader(rec.wav))
}

func randomUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

func randomHex(n int) string {
	const hexdigits = "0123456789abcdef"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = hexdigits[b[i]&0x0f]
	}
	return string(b)
}

// randomDigits returns prefix followed by random digits, n digits in all.
func randomDigits(prefix string, n int) string {
	b := make([]byte, n-len(prefix))
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return prefix + string(b)
}
