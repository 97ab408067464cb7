package ivr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/ivr/bot"

	"go.opentelemetry.io/otel/trace"
)

// The voice turn service.
//
// [VoiceService] runs every event of a voice call for a transport (the
// KooKoo app, the softphone through it, the KooKoo stream transport): it
// serializes the events of one call, loads the call, does the event's work
// (fetch, decode and transcribe a recording, or take the transcript the
// transport already made), asks the [Engine], steps [Call.Step], stores the
// call with the rendered answer, and records the turn.
//
// A transport only translates. It turns its request into a [VoiceEvent]
// (the sid, the connection, a delivery key and a [CallEvent], plus an
// [Utterance] for speech) and passes a [VoiceRenderer] that turns the
// resulting [CallAction]s into its protocol's answer (KooKoo XML). The
// service stores that answer with the call, so a repeated delivery of the
// same event is answered with byte-identical bytes and no side effects.
//
// # Serialization and duplicates
//
// Events of one sid are serialized twice: in process, by a per-sid lock
// that every request of this service waits for, and across nodes sharing a
// database, by the store's call lock owned by this node. The call is
// updated with optimistic versioning. A delivery whose key equals the call's
// last event key is answered from the stored response: one node behaves
// like two, and a recording is fetched and transcribed once however many
// copies of its event arrive at once.
//
// # Speech
//
// An [Utterance] carries either a transcript the transport made itself
// (the softphone's streaming recogniser, a stream transport's end-pointed
// frames), with the audio it transcribed when it still holds it
// ([HeldAudio], for the closed-vocabulary passes), or an [AudioSource]
// that opens the recording as 8 kHz PCM. The
// service streams that PCM into the speech recogniser as it is decoded, so
// a large recording is never held whole; at most [VoiceConfig].MaxWork
// recordings are fetched and transcribed at once.
type VoiceService struct {
	tracer        trace.Tracer
	store         VoiceStore
	engine        VoiceEngine
	stt           stt.Transcriber
	vocab         bot.Vocabulary
	channel       Channel
	minConfidence float64
	answerConf    float64
	confirmConf   float64
	node          string
	idleLimit     time.Duration
	work          chan struct{}
	queueWait     time.Duration
	lockTTL       time.Duration
	lockWait      time.Duration
	turnTimeout   time.Duration
	log           *slog.Logger
	handoff       VoiceHandoff
	mask          func(string) string
	m             *voiceMetrics
	now           func() time.Time

	mu     sync.Mutex
	locks  map[string]*sidLock
	active atomic.Int64
}

// Voice service defaults.
const (
	// DefaultLockTTL bounds how long a node may hold a call's lock; it
	// exceeds the longest event handling (two fetch attempts, STT, bot).
	DefaultLockTTL = 30 * time.Second
	// DefaultLockWait bounds how long an event waits for its call's lock
	// (a duplicate delivery being answered, another node).
	DefaultLockWait = 10 * time.Second
	// DefaultTurnTimeout bounds the work of one event (fetch, decode, STT,
	// bot, store).
	DefaultTurnTimeout = 20 * time.Second
	// DefaultMaxWork bounds the recordings fetched and transcribed at
	// once; each costs a recogniser and a few kilobytes of buffers.
	DefaultMaxWork = 8
	// DefaultQueueWait is how long a recording waits for a slot before the
	// caller is put on hold.
	DefaultQueueWait = 2 * time.Second
)

// VoiceStore is what the [VoiceService] needs from the store.
type VoiceStore interface {
	CreateCall(ctx context.Context, c *Call) error
	GetCall(ctx context.Context, sid string) (Call, error)
	UpdateCall(ctx context.Context, c *Call) error
	AcquireCallLock(ctx context.Context, sid, owner string, ttl time.Duration) error
	ReleaseCallLock(ctx context.Context, sid, owner string) error
	AddTurn(ctx context.Context, t *Turn) error
	CloseConversation(ctx context.Context, id int64) error
	MessagesAfter(ctx context.Context, conversationID, afterID int64) ([]Message, error)
	// ListIdleCalls finds calls for the abandoned-call sweeper.
	ListIdleCalls(ctx context.Context, before time.Time, limit int) ([]Call, error)
	// ListFAQ gives the topic menu its topics.
	ListFAQ(ctx context.Context, businessID int64, activeOnly bool) ([]FAQNode, error)
}

// VoiceEngine understands one caller utterance and stores what the call
// said; *[Engine] implements it.
type VoiceEngine interface {
	Handle(ctx context.Context, in Inbound) (Reply, error)
	Said(ctx context.Context, msgs []*Message) error
}

// Errors an [AudioSource] wraps so the service can tell the caller what
// went wrong. An error wrapping neither counts as a fetch failure when
// opening and as a decode failure when reading.
var (
	// ErrRecordingFetch means the recording could not be downloaded.
	ErrRecordingFetch = errors.New("ivr: recording not fetched")
	// ErrRecordingFormat means the recording is not audio koel decodes.
	ErrRecordingFormat = errors.New("ivr: recording not decodable")
	// ErrRecordingEmpty means the recording holds no audio at all: the
	// caller said nothing.
	ErrRecordingEmpty = errors.New("ivr: recording empty")
)

// AudioSource opens recordings; the KooKoo app implements it with its
// SSRF-safe fetcher and the audio decoders.
type AudioSource interface {
	// OpenAudio starts downloading the recording at recordingURL and
	// returns its audio as 8 kHz mono PCM, decoded as it arrives.
	OpenAudio(ctx context.Context, recordingURL string) (PCMReader, error)
}

// PCMReader yields 8 kHz mono 16-bit PCM. ReadPCM returns io.EOF after the
// last sample.
type PCMReader interface {
	ReadPCM(p []int16) (int, error)
	Close() error
}

// Utterance is what the caller said in one turn, as the transport has it:
// a transcript it made itself, or a recording to fetch and transcribe.
type Utterance struct {
	// RecordingURL names the recording (stored on the turn).
	RecordingURL string
	// RecordStatus is the platform's status of the recording, if any.
	RecordStatus string
	// Transcript, when set, is what the transport recognised itself
	// (softphone, stream transport): nothing is fetched or transcribed.
	Transcript *stt.Result
	// SpeechDuration and STTDuration go with a Transcript: how long the
	// caller spoke, and how long the transport's recogniser worked on the
	// final transcript. They are stored on the turn as speech_ms and
	// stt_ms, as record mode stores the recording's length and its
	// transcription time.
	SpeechDuration, STTDuration time.Duration
	// Audio opens RecordingURL when Transcript is nil.
	Audio AudioSource
	// Held, when set with a Transcript, gives the audio the transport
	// transcribed, as it holds it in process. The service decodes it
	// again with a closed vocabulary when the transcript calls for it (a
	// confirmation's reply that is neither yes nor no, a value being
	// collected), exactly as it decodes a recording it fetched itself;
	// nothing is downloaded. Nil: the turn has only the transcript.
	Held HeldAudio
}

// HeldAudio is the audio of an utterance that a transport transcribed
// itself and still holds in process: the softphone's recording, a stream
// turn's frames.
type HeldAudio interface {
	// HeldPCM returns the utterance's audio as 8 kHz mono PCM; ok is false
	// when the transport no longer holds it. It does not block.
	HeldPCM() (pcm []int16, ok bool)
}

// HeldSamples is a [HeldAudio] for a transport that has the utterance's
// samples at hand.
type HeldSamples []int16

// HeldPCM implements [HeldAudio].
func (s HeldSamples) HeldPCM() ([]int16, bool) { return s, len(s) > 0 }

// VoiceEvent is one event of a call, as a transport delivers it.
type VoiceEvent struct {
	SID        string
	Connection Connection
	// Settings are the connection's voice settings as the transport
	// accepts them (for example without an agent number it cannot dial).
	Settings ConnectionSettings
	// Caller and CalledNumber are the platform's numbers; the caller is
	// only ever logged masked.
	Caller       string
	CalledNumber string
	// Key identifies this delivery. A delivery with the key of the call's
	// last event is answered with the stored answer and has no effect.
	Key string
	// Event is what happened. A [Recorded] event carries Speech; the
	// service fills in its outcome. A [CallerHungUp] may carry Speech too
	// (words recorded as the caller hung up): it is stored, not answered.
	Event  CallEvent
	Speech *Utterance
	// Audio opens a recording the call held earlier (see [Busy]), when the
	// platform's follow-up request delivers it again.
	Audio AudioSource
	// KnownOnly answers the event only for a call that exists (a request
	// the transport refused as malformed): an unknown sid is hung up.
	KnownOnly bool
}

// VoiceAnswer is a transport's rendered answer to one event.
type VoiceAnswer struct {
	// Body is the answer (KooKoo XML).
	Body string
	// Empty means the transport answers with nothing (the call ended).
	Empty bool
}

// VoiceRenderer renders the actions of a step in the transport's protocol.
// Render must be deterministic: its output is stored and replayed.
type VoiceRenderer interface {
	Render(call Call, actions []CallAction) VoiceAnswer
}

// VoiceConfig configures a [VoiceService].
type VoiceConfig struct {
	// Store keeps calls and turns. Required.
	Store VoiceStore
	// Engine answers the caller's transcribed questions. Required.
	Engine VoiceEngine
	// STT transcribes recordings. Required.
	STT stt.Transcriber
	// Vocabulary gives the phrases recognition is restricted to (the FAQ
	// bot implements it); nil recognises with an empty phrase list.
	Vocabulary bot.Vocabulary
	// Channel is the channel calls' messages are stored under ("" =
	// ChannelKooKoo).
	Channel Channel
	// MinConfidence is the transcript confidence under which the caller is
	// asked again (0 = stt.DefaultMinConfidence).
	MinConfidence float64
	// AnswerConfidence and ConfirmConfidence are the repair bands of
	// connections that leave theirs at zero (0 = DefaultAnswerConfidence,
	// DefaultConfirmConfidence).
	AnswerConfidence  float64
	ConfirmConfidence float64
	// NodeID names this process in call locks; nodes sharing a database
	// need distinct ids. Required.
	NodeID string
	// MaxWork bounds the recordings fetched and transcribed at once (0 =
	// DefaultMaxWork); QueueWait is how long a recording waits for a slot
	// before the caller is put on hold (0 = DefaultQueueWait, negative =
	// not at all). Transcripts a transport made itself need no slot.
	MaxWork   int
	QueueWait time.Duration
	// IdleLimit is how long a live call may go without an event before
	// the sweeper abandons it (0 = DefaultIdleLimit).
	IdleLimit time.Duration
	// LockTTL, LockWait, TurnTimeout: 0 = the defaults.
	LockTTL     time.Duration
	LockWait    time.Duration
	TurnTimeout time.Duration
	// Logger receives one line per failure, call start and end (nil =
	// discard). Caller numbers are masked.
	Logger *slog.Logger
	// MaskCaller masks a caller number for the log (nil = every digit
	// hidden).
	MaskCaller func(string) string
	// Registerer receives the service's metrics (nil = not exported).
	Registerer prometheus.Registerer
	// Now returns the current time (nil = time.Now).
	Now func() time.Time
	// Handoff, when set, gives transfers the team's number and records
	// them on the conversation (*Handoffs).
	Handoff VoiceHandoff
	// TracerProvider, when set, gets a span per recorded turn
	// (SpanVoiceTurn, with SpanFetch, SpanDecode, SpanSTT and the engine's
	// spans); nil traces nothing.
	TracerProvider trace.TracerProvider
}

// VoiceHandoff is what a voice transfer needs of the handoff service.
type VoiceHandoff interface {
	TransferNumber(ctx context.Context, businessID int64, fallback string) string
	Transferred(ctx context.Context, call Call, ch Channel) error
}

// NewVoiceService returns a service. Store, Engine, STT and NodeID are
// required.
func NewVoiceService(cfg VoiceConfig) (*VoiceService, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("ivr: voice service needs a store")
	case cfg.Engine == nil:
		return nil, errors.New("ivr: voice service needs an engine")
	case cfg.STT == nil:
		return nil, errors.New("ivr: voice service needs a transcriber")
	case cfg.NodeID == "":
		return nil, errors.New("ivr: voice service needs a node id")
	}
	v := &VoiceService{
		store:         cfg.Store,
		engine:        cfg.Engine,
		stt:           cfg.STT,
		vocab:         cfg.Vocabulary,
		channel:       cfg.Channel,
		minConfidence: cfg.MinConfidence,
		answerConf:    cfg.AnswerConfidence,
		confirmConf:   cfg.ConfirmConfidence,
		node:          cfg.NodeID,
		idleLimit:     orDuration(cfg.IdleLimit, DefaultIdleLimit),
		queueWait:     cfg.QueueWait,
		lockTTL:       orDuration(cfg.LockTTL, DefaultLockTTL),
		lockWait:      orDuration(cfg.LockWait, DefaultLockWait),
		turnTimeout:   orDuration(cfg.TurnTimeout, DefaultTurnTimeout),
		log:           cfg.Logger,
		mask:          cfg.MaskCaller,
		handoff:       cfg.Handoff,
		tracer:        tracerFrom(cfg.TracerProvider),
		now:           cfg.Now,
		locks:         map[string]*sidLock{},
	}
	if v.channel == "" {
		v.channel = ChannelKooKoo
	}
	if cfg.MaxWork <= 0 {
		cfg.MaxWork = DefaultMaxWork
	}
	v.work = make(chan struct{}, cfg.MaxWork)
	if v.queueWait == 0 {
		v.queueWait = DefaultQueueWait
	}
	if v.minConfidence <= 0 {
		v.minConfidence = stt.DefaultMinConfidence
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.mask == nil {
		v.mask = maskedDefault
	}
	reg := cfg.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newVoiceMetrics(reg)
	if err != nil {
		return nil, err
	}
	v.m = m
	return v, nil
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// ActiveCalls returns the calls this process started (or took over) that
// have not ended as far as it knows.
func (v *VoiceService) ActiveCalls() int { return int(v.active.Load()) }

// CountBreak counts a break message the transport spoke on its own (koel
// failed before the service could answer): reason is a Fail* constant.
func (v *VoiceService) CountBreak(reason string) { v.m.breaks.WithLabelValues(reason).Inc() }

// CountDuplicate counts a repeated delivery the transport answered itself.
func (v *VoiceService) CountDuplicate() { v.m.duplicates.Inc() }

func (v *VoiceService) callStarted() {
	v.active.Add(1)
	v.m.active.Inc()
}

func (v *VoiceService) callEnded(outcome string) {
	v.active.Add(-1)
	v.m.active.Dec()
	v.m.calls.WithLabelValues(outcome).Inc()
}

// Handle runs one event of a call and returns the transport's answer. It
// finishes its work even if ctx is cancelled (the stored call must match
// the answer a retry gets), within the service's turn timeout. An error
// means nothing was stored; the transport answers it on its own.
func (v *VoiceService) Handle(ctx context.Context, ev VoiceEvent, r VoiceRenderer) (VoiceAnswer, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.turnTimeout)
	defer cancel()
	if ev.Settings.AnswerConfidence <= 0 {
		ev.Settings.AnswerConfidence = v.answerConf
	}
	if ev.Settings.ConfirmConfidence <= 0 {
		ev.Settings.ConfirmConfidence = v.confirmConf
	}
	log := v.log.With(slog.String("sid", ev.SID))
	unlock, err := v.lockLocal(ctx, ev.SID, v.lockWait)
	if err != nil {
		return VoiceAnswer{}, err
	}
	defer unlock()
	if _, ok := ev.Event.(CallStarted); ok && !ev.KnownOnly {
		a, done, err := v.newCall(ctx, ev, r, log)
		if done || err != nil {
			return a, err
		}
		// The sid exists already: a repeated NewCall, handled below.
	}
	if err := v.acquire(ctx, ev.SID); err != nil {
		return VoiceAnswer{}, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := v.store.ReleaseCallLock(rctx, ev.SID, v.node); err != nil {
			log.LogAttrs(rctx, slog.LevelWarn, "release call lock failed", slog.String("error", err.Error()))
		}
	}()
	return v.event(ctx, ev, r, log)
}

// sidLock is the in-process lock of one sid, shared by its waiters.
type sidLock struct {
	ch   chan struct{}
	refs int
}

// lockLocal takes the in-process lock of sid, waiting up to wait (not at
// all when wait is zero).
func (v *VoiceService) lockLocal(ctx context.Context, sid string, wait time.Duration) (func(), error) {
	v.mu.Lock()
	l := v.locks[sid]
	if l == nil {
		l = &sidLock{ch: make(chan struct{}, 1)}
		v.locks[sid] = l
	}
	l.refs++
	v.mu.Unlock()
	release := func() {
		v.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(v.locks, sid)
		}
		v.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
	default:
		if wait <= 0 {
			release()
			return nil, fmt.Errorf("ivr: call %.64q: %w", sid, ErrLocked)
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		select {
		case l.ch <- struct{}{}:
		case <-wctx.Done():
			release()
			return nil, fmt.Errorf("ivr: wait for call %.64q: %w: %w", sid, ErrLocked, wctx.Err())
		}
	}
	return func() {
		<-l.ch
		release()
	}, nil
}

// acquire takes the store's call lock, retrying with a short, growing
// pause while another node holds it.
func (v *VoiceService) acquire(ctx context.Context, sid string) error {
	ctx, cancel := context.WithTimeout(ctx, v.lockWait)
	defer cancel()
	pause := 2 * time.Millisecond
	for {
		err := v.store.AcquireCallLock(ctx, sid, v.node, v.lockTTL)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrLocked) {
			return fmt.Errorf("ivr: acquire call lock: %w", err)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("ivr: acquire call lock: %w: %w", err, ctx.Err())
		case <-t.C:
		}
		pause = min(pause*2, 50*time.Millisecond)
	}
}

func (v *VoiceService) freshCall(ev VoiceEvent) Call {
	return Call{
		SID:          ev.SID,
		ConnectionID: ev.Connection.ID,
		BusinessID:   ev.Connection.BusinessID,
		Caller:       ev.Caller,
		CalledNumber: ev.CalledNumber,
		StartedAt:    v.now(),
	}
}

// newCall creates the call of a CallStarted without the store lock: the
// insert itself is atomic per sid. done is false when the sid exists.
func (v *VoiceService) newCall(ctx context.Context, ev VoiceEvent, r VoiceRenderer, log *slog.Logger) (VoiceAnswer, bool, error) {
	call := v.freshCall(ev)
	next, actions := call.Step(CallStarted{}, ev.Settings)
	a := r.Render(next, actions)
	next.LastEventKey, next.LastResponse = ev.Key, a.Body
	if err := v.store.CreateCall(ctx, &next); err != nil {
		if errors.Is(err, ErrConflict) {
			return VoiceAnswer{}, false, nil
		}
		return VoiceAnswer{}, true, fmt.Errorf("ivr: create call: %w", err)
	}
	v.callStarted()
	log.LogAttrs(ctx, slog.LevelInfo, "call started", slog.String("caller", v.mask(ev.Caller)))
	return a, true, nil
}

// event handles one event under both call locks.
func (v *VoiceService) event(ctx context.Context, ev VoiceEvent, r VoiceRenderer, log *slog.Logger) (VoiceAnswer, error) {
	_, ending := ev.Event.(CallerHungUp)
	if _, ok := ev.Event.(Disconnected); ok {
		ending = true
	}
	call, err := v.store.GetCall(ctx, ev.SID)
	create := false
	switch {
	case errors.Is(err, ErrNotFound):
		if ending {
			// The end of a call koel never saw: nothing to close.
			return VoiceAnswer{Empty: true}, nil
		}
		if ev.KnownOnly {
			return r.Render(Call{SID: ev.SID, State: CallStateEnded}, []CallAction{HangUp{}}), nil
		}
		// A call whose start never reached this database: take it over.
		call, create = v.freshCall(ev), true
		log.LogAttrs(ctx, slog.LevelWarn, "event for an unknown call; taking it over", slog.String("caller", v.mask(ev.Caller)))
	case err != nil:
		return VoiceAnswer{}, fmt.Errorf("ivr: get call: %w", err)
	}
	if !create && call.LastEventKey == ev.Key {
		v.m.duplicates.Inc()
		return storedAnswer(call), nil
	}
	if !call.Live() {
		if ending {
			return VoiceAnswer{Empty: true}, nil
		}
		return r.Render(call, []CallAction{HangUp{}}), nil
	}
	if call.Caller == "" && ev.Caller != "" {
		call.Caller = ev.Caller
	}
	log = log.With(slog.String("caller", v.mask(call.Caller)))

	step := ev.Event
	var turn *Turn
	heldBy := int64(0) // the user message this event stored, whose spoken answer is stored after the step
	switch e := ev.Event.(type) {
	case Recorded:
		if ev.Speech != nil {
			// A recording that arrives while no recording runs (a
			// transfer, a hang-up) is not transcribed.
			step = Recorded{}
			switch call.State {
			case CallStateUnknown, CallStateListening, CallStateMenu, CallStateConfirming, CallStateTopics, CallStateCollecting:
				step, turn = v.recorded(ctx, &call, ev, log)
			}
		}
	case DTMF:
		if h := call.Repair.Held; h != nil && e.Digits == "" && ev.Audio != nil {
			// The follow-up of a hold: the held recording, again.
			ev.Speech = &Utterance{RecordingURL: h.URL, RecordStatus: h.Status, Audio: ev.Audio}
			step, turn = v.recorded(ctx, &call, ev, log)
			break
		}
		step, turn = v.keys(ctx, &call, ev, e, log)
	case CallerHungUp:
		if ev.Speech != nil {
			turn = v.lastWords(ctx, &call, ev, log)
		}
		step = e
	}
	if _, busy := step.(Busy); busy {
		turn = nil // no turn yet: it runs when the recording comes back
	}
	if turn != nil {
		heldBy = turn.MessageID
	}
	next, actions, a, err := v.step(ctx, call, create, step, ev, r, log)
	if err != nil {
		return VoiceAnswer{}, err
	}
	if heldBy != 0 && next.ConversationID != 0 {
		v.said(ctx, next, step, call.Repair.Pending, actions, log)
	}
	if turn != nil {
		if turn.Understanding == "" {
			turn.Understanding = next.Repair.Band
		}
		if err := v.store.AddTurn(ctx, turn); err != nil {
			// The answer and the call are stored; only the turn's record
			// is lost.
			log.LogAttrs(ctx, slog.LevelError, "store turn failed", slog.Int("turn", turn.Seq), slog.String("error", err.Error()))
		}
	}
	return a, nil
}

// step applies ev, renders the answer and stores the call with it.
func (v *VoiceService) step(ctx context.Context, call Call, create bool, ev CallEvent, vev VoiceEvent, r VoiceRenderer, log *slog.Logger) (Call, []CallAction, VoiceAnswer, error) {
	wasLive := call.Live()
	prevState := call.State
	if v.handoff != nil && call.BusinessID != 0 {
		vev.Settings.AgentNumber = v.handoff.TransferNumber(ctx, call.BusinessID, vev.Settings.AgentNumber)
	}
	next, actions := call.Step(ev, vev.Settings)
	a := r.Render(next, actions)
	next.LastEventKey, next.LastResponse = vev.Key, a.Body
	if a.Empty {
		next.LastResponse = ""
	}
	if wasLive && !next.Live() {
		next.EndedAt = v.now()
	}
	var err error
	if create {
		err = v.store.CreateCall(ctx, &next)
	} else {
		err = v.store.UpdateCall(ctx, &next)
	}
	if err != nil {
		return Call{}, nil, VoiceAnswer{}, fmt.Errorf("ivr: save call: %w", err)
	}
	if create {
		v.callStarted()
	}
	v.account(ctx, prevState, next, ev, actions, log)
	if wasLive && !next.Live() {
		v.ended(ctx, next, log)
	}
	if next.Repair.Band != "" {
		v.m.understanding.WithLabelValues(next.Repair.Band).Inc()
	}
	return next, actions, a, nil
}

// ended does what follows the end of a call: metrics, the conversation
// closed, one log line.
func (v *VoiceService) ended(ctx context.Context, c Call, log *slog.Logger) {
	v.callEnded(c.Outcome)
	if !c.StartedAt.IsZero() && !c.EndedAt.Before(c.StartedAt) {
		v.m.duration.Observe(c.EndedAt.Sub(c.StartedAt).Seconds())
	}
	v.m.turnsPerCall.Observe(float64(c.Turn))
	if c.ConversationID != 0 {
		if err := v.store.CloseConversation(ctx, c.ConversationID); err != nil {
			log.LogAttrs(ctx, slog.LevelError, "close conversation failed", slog.Int64("conversation_id", c.ConversationID), slog.String("error", err.Error()))
		}
	}
	log.LogAttrs(ctx, slog.LevelInfo, "call ended", slog.String("outcome", c.Outcome), slog.Int("turns", c.Turn),
		slog.Int64("conversation_id", c.ConversationID))
}

// account records the metrics of a step.
func (v *VoiceService) account(ctx context.Context, prev CallState, next Call, ev CallEvent, actions []CallAction, log *slog.Logger) {
	switch ev := ev.(type) {
	case Recorded:
		switch {
		case ev.FailReason != "":
			v.m.turns.WithLabelValues(turnFailed).Inc()
			v.m.breaks.WithLabelValues(ev.FailReason).Inc()
			log.LogAttrs(ctx, slog.LevelWarn, "turn failed; break message", slog.String("reason", ev.FailReason), slog.Int("failures", next.Failures))
		case ev.NoSpeech:
			v.m.turns.WithLabelValues(turnNoSpeech).Inc()
		case ev.NotUnderstood:
			v.m.turns.WithLabelValues(turnNotUnderstood).Inc()
		case prev != CallStateHangingUp && prev != CallStateEnded && prev != CallStateTransferring:
			v.m.turns.WithLabelValues(turnAnswered).Inc()
		}
	case Collected:
		if ev.FailReason != "" {
			v.m.turns.WithLabelValues(turnFailed).Inc()
			v.m.breaks.WithLabelValues(ev.FailReason).Inc()
			log.LogAttrs(ctx, slog.LevelWarn, "keyed value failed; break message", slog.String("reason", ev.FailReason), slog.Int("failures", next.Failures))
		} else if prev == CallStateCollecting {
			v.m.turns.WithLabelValues(turnAnswered).Inc()
		}
	case DialEnded:
		if prev == CallStateTransferring {
			if ev.Answered {
				v.m.transfers.WithLabelValues(transferAnswered).Inc()
			} else {
				v.m.transfers.WithLabelValues(transferNotAnswered).Inc()
			}
		}
	}
	for _, act := range actions {
		if _, ok := act.(Transfer); ok {
			v.m.transfers.WithLabelValues(transferStarted).Inc()
			log.LogAttrs(ctx, slog.LevelInfo, "transferring to an agent")
			if v.handoff != nil {
				if err := v.handoff.Transferred(ctx, next, v.channel); err != nil {
					log.LogAttrs(ctx, slog.LevelError, "record transfer failed", slog.String("error", err.Error()))
				}
			}
		}
	}
}

// storedAnswer answers a repeated delivery from the stored response.
func storedAnswer(call Call) VoiceAnswer {
	if call.LastResponse == "" {
		return VoiceAnswer{Empty: true}
	}
	return VoiceAnswer{Body: call.LastResponse}
}

// callerKey is the user id of the caller: the number, or the sid when the
// platform did not send one.
func callerKey(call Call) string {
	if call.Caller != "" {
		return call.Caller
	}
	return "sid:" + call.SID
}

// messageID is the external id of the message a turn stores, so a repeated
// turn is not stored twice.
func (v *VoiceService) messageID(call Call) string {
	return string(v.channel) + ":" + call.SID + ":" + strconv.Itoa(call.Turn)
}

// maskedDefault masks a caller number completely; transports pass their
// own mask in [VoiceConfig].MaskCaller.
func maskedDefault(string) string { return "****" }
