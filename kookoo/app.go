package kookoo

import (
	"go.opentelemetry.io/otel/trace"

	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot"
)

// App defaults.
const (
	// DefaultLockTTL, DefaultLockWait and DefaultTurnTimeout are the voice
	// service's defaults (see [ivr.VoiceConfig]).
	DefaultLockTTL     = ivr.DefaultLockTTL
	DefaultLockWait    = ivr.DefaultLockWait
	DefaultTurnTimeout = ivr.DefaultTurnTimeout
	// DefaultDialTimeout is the ring timeout of a transfer.
	DefaultDialTimeout = 30 * time.Second
	// maxIdentifierBytes caps the {identifier} path segment.
	maxIdentifierBytes = 128
)

// AppStore is what the [App] needs from the store (the voice service's
// needs and the connection lookup); store.Store implements it.
type AppStore interface {
	ivr.VoiceStore
	GetConnection(ctx context.Context, channel ivr.Channel, identifier string) (ivr.Connection, error)
}

// Engine answers one turn of a conversation; *ivr.Engine implements it.
type Engine = ivr.VoiceEngine

// RecordingFetcher downloads recordings; *[Fetcher] implements it.
type RecordingFetcher interface {
	Fetch(ctx context.Context, rawURL string) (Recording, error)
	MaxBytes() int64
}

// TranscriptSource knows the transcripts of recordings it made itself (the
// softphone transcribes while the caller speaks), so the app can skip the
// download, the decode and the STT.
type TranscriptSource interface {
	LookupTranscript(recordingURL string) (stt.Result, bool)
}

// TranscriptTimings is implemented by a [TranscriptSource] that also knows
// how long the caller spoke and how long its recogniser worked; the app
// stores them on the turn (speech_ms, stt_ms) as record mode does.
type TranscriptTimings interface {
	LookupTranscriptTimings(recordingURL string) (speech, recognition time.Duration, ok bool)
}

// HeldRecordings is implemented by a [TranscriptSource] that also holds
// the audio of the recordings it transcribed (the softphone keeps them in
// memory): the voice service's closed-vocabulary passes decode it again
// without a download.
type HeldRecordings interface {
	// LookupRecordingPCM returns the recording's audio as 8 kHz mono PCM;
	// false for a recording the source does not hold (any more).
	LookupRecordingPCM(recordingURL string) ([]int16, bool)
}

// AppConfig configures an [App].
type AppConfig struct {
	// Store keeps calls, turns, users and conversations. Required.
	Store AppStore
	// Engine answers the caller's transcribed questions. Required.
	Engine Engine
	// STT transcribes recordings. Required.
	STT stt.Transcriber
	// Vocabulary gives the phrases speech recognition is restricted to
	// (the FAQ bot implements it). Nil recognises with an empty phrase
	// list.
	Vocabulary bot.Vocabulary
	// Fetcher downloads recordings (nil = NewFetcher with the defaults:
	// KooKoo's recording hosts, no loopback).
	Fetcher RecordingFetcher
	// PreTranscribed is the softphone's fast path; may be nil.
	PreTranscribed TranscriptSource
	// Handoff gives transfers the team's number and records them on the
	// conversation; may be nil.
	Handoff ivr.VoiceHandoff
	// TracerProvider, when set, gets the voice service's spans per turn;
	// nil traces nothing.
	TracerProvider trace.TracerProvider
	// MinConfidence is the transcript confidence under which the caller is
	// re-prompted (0 = stt.DefaultMinConfidence).
	MinConfidence float64
	// NodeID names this process in call locks; nodes sharing a database
	// need distinct ids ("" = a random id).
	NodeID string
	// MaxRecordingWork bounds the recordings fetched and transcribed at
	// once (0 = ivr.DefaultMaxWork); past it a recording waits up to
	// RecordingQueueWait (0 = ivr.DefaultQueueWait, negative = not at all)
	// and the caller then hears "One moment please." while KooKoo comes
	// back for it.
	MaxRecordingWork   int
	RecordingQueueWait time.Duration
	// CallIdleLimit is how long a live call may go without an event before
	// [App.RunSweeper] abandons it (0 = ivr.DefaultIdleLimit).
	CallIdleLimit time.Duration
	// LockTTL, LockWait, TurnTimeout: 0 = the defaults above.
	LockTTL     time.Duration
	LockWait    time.Duration
	TurnTimeout time.Duration
	// RecordFormat is the <record> format, wav or mp3 ("" = wav).
	RecordFormat string
	// Logger receives one line per failure, per call start and end (nil =
	// discard). Caller numbers are masked.
	Logger *slog.Logger
	// Registerer receives the app's metrics (nil = not exported).
	Registerer prometheus.Registerer
	// Now returns the current time (nil = time.Now).
	Now func() time.Time
}

// App answers KooKoo at /kookoo/{identifier}: it finds the connection by
// identifier, turns each request into an [ivr.VoiceEvent] for the
// [ivr.VoiceService] and renders the service's actions as KooKoo verbs:
// NewCall gets the welcome and a <record>; each recording is fetched,
// transcribed and answered by the engine; keys, transfers and hang-ups move
// the call on. See the package documentation of ivr for the call flow.
//
// The voice service serializes the events of one sid (in process and
// through the store's call lock across nodes sharing one PostgreSQL) and
// answers a repeated delivery of the last event with the stored response.
type App struct {
	store   AppStore
	voice   *ivr.VoiceService
	fetcher RecordingFetcher
	pre     TranscriptSource
	format  string
	log     *slog.Logger
	m       *appMetrics
	now     func() time.Time

	// stream is the <stream> transport, set by NewStreamServer
	// (stream_server.go); nil = record mode only.
	stream *StreamServer
}

// NewApp returns an app. Store, Engine and STT are required.
func NewApp(cfg AppConfig) (*App, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("kookoo: app needs a store")
	case cfg.Engine == nil:
		return nil, errors.New("kookoo: app needs an engine")
	case cfg.STT == nil:
		return nil, errors.New("kookoo: app needs a transcriber")
	}
	a := &App{
		store:   cfg.Store,
		fetcher: cfg.Fetcher,
		pre:     cfg.PreTranscribed,
		format:  cfg.RecordFormat,
		log:     cfg.Logger,
		now:     cfg.Now,
	}
	switch a.format {
	case "":
		a.format = "wav"
	case "wav", "mp3":
	default:
		return nil, fmt.Errorf("kookoo: record format %q is neither wav nor mp3", a.format)
	}
	if a.fetcher == nil {
		f, err := NewFetcher(FetcherConfig{Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		a.fetcher = f
	}
	node := cfg.NodeID
	if node == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		node = "node-" + hex.EncodeToString(b[:])
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	reg := cfg.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newAppMetrics(reg)
	if err != nil {
		return nil, err
	}
	a.m = m
	a.voice, err = ivr.NewVoiceService(ivr.VoiceConfig{
		Store:          cfg.Store,
		Engine:         cfg.Engine,
		STT:            cfg.STT,
		Vocabulary:     cfg.Vocabulary,
		Channel:        ivr.ChannelKooKoo,
		MinConfidence:  cfg.MinConfidence,
		NodeID:         node,
		IdleLimit:      cfg.CallIdleLimit,
		MaxWork:        cfg.MaxRecordingWork,
		QueueWait:      cfg.RecordingQueueWait,
		LockTTL:        cfg.LockTTL,
		LockWait:       cfg.LockWait,
		TurnTimeout:    cfg.TurnTimeout,
		Logger:         a.log,
		MaskCaller:     MaskNumber,
		Registerer:     reg,
		Now:            a.now,
		Handoff:        cfg.Handoff,
		TracerProvider: cfg.TracerProvider,
	})
	if err != nil {
		return nil, fmt.Errorf("kookoo: %w", err)
	}
	return a, nil
}

// Voice returns the app's voice turn service, for transports that share it
// (the KooKoo stream transport).
func (a *App) Voice() *ivr.VoiceService { return a.voice }

// RunSweeper abandons calls idle past the idle limit every interval (0 =
// a minute) until ctx is done; see [ivr.VoiceService.SweepIdleCalls].
func (a *App) RunSweeper(ctx context.Context, every time.Duration) { a.voice.RunSweeper(ctx, every) }

// ActiveCalls returns the calls this process started (or took over) that
// have not ended as far as it knows.
func (a *App) ActiveCalls() int { return a.voice.ActiveCalls() }

// ServeHTTP answers one KooKoo request. Mount it with
// r.Handle("/kookoo/{identifier}", app).Methods("GET", "POST").
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := a.now()
	req, perr := ParseRequest(r)
	label := eventLabel(req, perr)
	defer func() { a.m.requests.WithLabelValues(label).Observe(seconds(a.now().Sub(start))) }()

	if errors.Is(perr, ErrMethodNotAllowed) {
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	identifier := mux.Vars(r)["identifier"]
	log := a.log.With(slog.String("identifier", truncate(identifier)), slog.String("sid", req.SID), slog.String("event", label))
	ctx := r.Context()

	conn, err := a.connection(ctx, identifier)
	if err != nil {
		if errors.Is(err, ivr.ErrNotFound) {
			log.LogAttrs(ctx, slog.LevelWarn, "kookoo request for an unknown or inactive connection")
			if req.Event.Ended() {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			writeXML(w, http.StatusNotFound, Response{SID: req.SID, Verbs: []Verb{Hangup{}}})
			return
		}
		log.LogAttrs(ctx, slog.LevelError, "kookoo connection lookup failed", slog.String("error", err.Error()))
		a.internalError(w, req, ivr.ConnectionSettings{})
		return
	}
	settings := a.voiceSettings(conn, log)

	if perr != nil {
		a.m.invalid.Inc()
		log.LogAttrs(ctx, slog.LevelWarn, "invalid kookoo request; answering safely", slog.String("error", perr.Error()))
		a.invalid(w, r, req, conn, settings, log)
		return
	}
	if req.IsProbe() {
		// The portal's "Test Application URL": valid XML, no side effects.
		writeXML(w, http.StatusOK, Response{Verbs: []Verb{PlayText{Text: settings.WelcomeMessage}, Hangup{}}})
		return
	}
	if a.stream != nil && a.stream.answers(req, settings) {
		// Stream-mode NewCall and event=Stream (stream_server.go).
		a.stream.serve(ctx, w, identifier, req, conn, settings, log)
		return
	}
	switch req.Event {
	case EventNewCall, EventRecord, EventGotDTMF, EventNone, EventDial, EventHangup, EventDisconnect:
	default:
		// Conference, Recognize, Stream: koel never asks for them.
		a.m.invalid.Inc()
		log.LogAttrs(ctx, slog.LevelWarn, "unexpected kookoo event; answering safely")
		a.invalid(w, r, req, conn, settings, log)
		return
	}
	resp, err := a.handle(ctx, req, conn, settings)
	if err != nil {
		logFailure(ctx, log, err)
		if req.Event.Ended() {
			WriteEmpty(w)
			return
		}
		a.internalError(w, req, settings)
		return
	}
	writeBody(w, resp)
}

// connection finds the active KooKoo connection of identifier; ErrNotFound
// when there is none or it is inactive.
func (a *App) connection(ctx context.Context, identifier string) (ivr.Connection, error) {
	if identifier == "" || len(identifier) > maxIdentifierBytes || !utf8.ValidString(identifier) {
		return ivr.Connection{}, ivr.ErrNotFound
	}
	conn, err := a.store.GetConnection(ctx, ivr.ChannelKooKoo, identifier)
	if err != nil {
		if errors.Is(err, ivr.ErrNotFound) {
			return ivr.Connection{}, ivr.ErrNotFound
		}
		return ivr.Connection{}, err
	}
	if !conn.Active {
		return ivr.Connection{}, ivr.ErrNotFound
	}
	return conn, nil
}

// voiceSettings returns the connection's voice settings with defaults, and
// drops an agent number or caller id KooKoo would refuse.
func (a *App) voiceSettings(conn ivr.Connection, log *slog.Logger) ivr.ConnectionSettings {
	s := ivr.VoiceSettings(conn.Settings)
	if s.AgentNumber != "" && !validNumber(s.AgentNumber) {
		log.Warn("connection agent number is not a dialable number; transfers disabled")
		s.AgentNumber = ""
	}
	if s.CallerID != "" && !validNumber(s.CallerID) {
		log.Warn("connection caller id is not a number; not sent")
		s.CallerID = ""
	}
	return s
}

func writeBody(w http.ResponseWriter, b ivr.VoiceAnswer) {
	if b.Empty {
		WriteEmpty(w)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(b.Body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(b.Body))
}

func writeXML(w http.ResponseWriter, status int, resp Response) {
	out := resp.Render()
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(out)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// internalError answers when koel itself failed (store down): the break
// message and a new recording, so the caller can try again and the next
// event finds the call as it was. Nothing was stored.
func (a *App) internalError(w http.ResponseWriter, req Request, s ivr.ConnectionSettings) {
	a.voice.CountBreak(ivr.FailInternal)
	if req.Event.Ended() {
		WriteEmpty(w)
		return
	}
	s = ivr.VoiceSettings(s)
	sid := req.SID
	name := "koel-" + strconv.FormatInt(a.now().UnixMilli(), 10)
	if sid != "" {
		name = sid + "-e" + strconv.FormatInt(a.now().UnixMilli(), 10)
	}
	writeXML(w, http.StatusOK, Response{SID: sid, Verbs: []Verb{
		PlayText{Text: s.BreakMessage},
		a.record(ivr.Listen{Name: name, Silence: time.Duration(s.SilencePeriod) * time.Second, MaxDuration: time.Duration(s.MaxRecordTime) * time.Second}),
	}})
}

// invalid answers a malformed request or an event koel never asks for. A
// Hangup or Disconnect still ends the call; a live call gets the break
// message and listens again (counted as a failure); anything else is hung
// up. Nothing of the bad request is stored.
func (a *App) invalid(w http.ResponseWriter, r *http.Request, req Request, conn ivr.Connection, s ivr.ConnectionSettings, log *slog.Logger) {
	ctx := r.Context()
	if req.SID == "" {
		req.SID, req.Event, req.EventMissing = headOfQuery(r)
	}
	if req.SID == "" || !validSID(req.SID) {
		if req.Event.Ended() {
			WriteEmpty(w)
			return
		}
		writeXML(w, http.StatusOK, Response{Verbs: []Verb{Hangup{}}})
		return
	}
	// Only the head of the request is trusted: event and sid.
	head := Request{Event: req.Event, EventMissing: req.EventMissing, SID: req.SID, CallDuration: -1, TotalCallDuration: -1, RecordDuration: -1}
	resp, err := a.handleInvalid(ctx, head, r.URL.RawQuery, conn, s)
	if err != nil {
		logFailure(ctx, log, err)
		if req.Event.Ended() {
			WriteEmpty(w)
			return
		}
		a.internalError(w, req, s)
		return
	}
	writeBody(w, resp)
}

// headOfQuery reads the sid and the event from the query string of a
// request the parser refused as a whole (a value over its cap), so a live
// call can still be answered safely. Nothing else of the request is used.
func headOfQuery(r *http.Request) (sid string, ev Event, missing bool) {
	if len(r.URL.RawQuery) > MaxRequestBytes {
		return "", "", false
	}
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "", "", false
	}
	sid = v.Get("sid")
	if !validSID(sid) {
		return "", "", false
	}
	_, present := v["event"]
	raw := v.Get("event")
	for _, known := range []Event{EventNewCall, EventRecord, EventGotDTMF, EventDial, EventHangup, EventDisconnect} {
		if strings.EqualFold(raw, string(known)) {
			return sid, known, !present
		}
	}
	return sid, Event("invalid"), !present
}

// eventLabel names the request's event for metrics, from a closed set.
func eventLabel(req Request, err error) string {
	switch {
	case errors.Is(err, ErrUnknownEvent):
		return eventLabelOther
	case err != nil:
		return eventLabelInvalid
	case req.IsProbe():
		return eventLabelProbe
	case req.Event == EventNone:
		return eventLabelNone
	case req.Event.Known():
		return string(req.Event)
	}
	return eventLabelOther
}

// eventKey identifies a delivery of an event: a repeated delivery has the
// same key. request_time is left out (it may change between retries).
func eventKey(req Request) string {
	h := sha256.New()
	for _, s := range []string{string(req.Event), strconv.FormatBool(req.EventMissing), req.Data, req.Status, req.Process,
		req.Message, strconv.Itoa(req.CallDuration), strconv.Itoa(req.TotalCallDuration), strconv.Itoa(req.RecordDuration)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	ev := string(req.Event)
	if req.EventMissing {
		ev = eventLabelNone
	}
	return ev + ":" + hex.EncodeToString(h.Sum(nil)[:16])
}

// invalidKey identifies a rejected delivery by its head and its raw query,
// so its repetition is answered the same way.
func invalidKey(head Request, rawQuery string) string {
	h := sha256.Sum256([]byte(rawQuery))
	return "invalid:" + eventKey(head) + ":" + hex.EncodeToString(h[:8])
}

func truncate(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	for i := n; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "…"
		}
	}
	return ""
}

// limitText cuts s to KooKoo's playtext cap at a rune boundary.
func limitText(s string) string {
	if len(s) <= MaxTextBytes {
		return s
	}
	i := MaxTextBytes
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return strings.TrimSpace(s[:i])
}
