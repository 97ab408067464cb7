package ivr

import (
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the engine's Prometheus collectors. A nil *Metrics is valid and
// records nothing, so tests and tools may leave it out.
type Metrics struct {
	messages    *prometheus.CounterVec
	duplicates  *prometheus.CounterVec
	fallbacks   *prometheus.CounterVec
	botFailures *prometheus.CounterVec
	botSeconds  prometheus.Histogram
	turnSeconds *prometheus.HistogramVec
}

// latencyBuckets are histogram buckets for request-scale latencies in seconds
// (1 ms to 10 s).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewMetrics creates the engine's collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_messages_total",
			Help: "Messages stored, by channel and sender (user or bot).",
		}, []string{"channel", "sender"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_messages_duplicate_total",
			Help: "Inbound messages dropped because the platform delivered the same message id again.",
		}, []string{"channel"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_bot_fallbacks_total",
			Help: "Bot replies that fell back because nothing matched.",
		}, []string{"channel"}),
		botFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_bot_failures_total",
			Help: "Bot replies that failed and were answered with the break message, by reason.",
		}, []string{"reason"}),
		botSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "koel_bot_latency_seconds",
			Help:    "Time the bot took to reply.",
			Buckets: latencyBuckets,
		}),
		turnSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "koel_engine_turn_seconds",
			Help:    "Time of one engine turn (store, bot, store), by channel.",
			Buckets: latencyBuckets,
		}, []string{"channel"}),
	}
	for _, c := range []prometheus.Collector{m.messages, m.duplicates, m.fallbacks, m.botFailures, m.botSeconds, m.turnSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) message(ch Channel, sender string) {
	if m != nil {
		m.messages.WithLabelValues(string(ch), sender).Inc()
	}
}

func (m *Metrics) duplicate(ch Channel) {
	if m != nil {
		m.duplicates.WithLabelValues(string(ch)).Inc()
	}
}

func (m *Metrics) fallback(ch Channel) {
	if m != nil {
		m.fallbacks.WithLabelValues(string(ch)).Inc()
	}
}

func (m *Metrics) botFailure(reason string) {
	if m != nil {
		m.botFailures.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) botLatency(d time.Duration) {
	if m != nil {
		m.botSeconds.Observe(d.Seconds())
	}
}

func (m *Metrics) turn(ch Channel, d time.Duration) {
	if m != nil {
		m.turnSeconds.WithLabelValues(string(ch)).Observe(d.Seconds())
	}
}

// Label values of the voice service's metrics: closed sets, never a sid, a
// caller number or a URL.
const (
	turnAnswered = "answered"
	turnNoSpeech = "no_speech"
	// turnNotUnderstood is speech heard but not understood.
	turnNotUnderstood = "not_understood"
	turnFailed        = "failed"
	turnHangup        = "hangup" // a recording delivered with the hang-up

	transferStarted     = "started"
	transferAnswered    = "answered"
	transferNotAnswered = "not_answered"
)

// voiceMetrics are the voice service's collectors.
type voiceMetrics struct {
	active     prometheus.Gauge
	calls      *prometheus.CounterVec
	turns      *prometheus.CounterVec
	fetch      prometheus.Histogram
	decode     prometheus.Histogram
	stt        prometheus.Histogram
	bot        prometheus.Histogram
	turnTotal  prometheus.Histogram
	breaks     *prometheus.CounterVec
	transfers  *prometheus.CounterVec
	duplicates prometheus.Counter
	// understanding counts steps by repair band.
	understanding *prometheus.CounterVec
	holds         prometheus.Counter
	// duration and turnsPerCall are observed when a call ends; utterance
	// for every caller utterance that carried audio.
	duration     prometheus.Histogram
	turnsPerCall prometheus.Histogram
	utterance    prometheus.Histogram
	recordEnds   *prometheus.CounterVec
}

// Record end reasons of koel_record_ends_total: how a caller's recording
// ended, as the transport reported it (KooKoo's record status, the
// end-pointer's reason in stream mode and on the softphone).
var recordEndReasons = []string{"silence", "max_duration", "dtmf", "hangup", "no_input", "barge_in", "other"}

// recordEndReason folds a transport's record status into the closed set.
func recordEndReason(status string) string {
	s := strings.ToLower(strings.TrimSpace(status))
	switch {
	case strings.HasPrefix(s, "barge_in"):
		return "barge_in"
	case s == "silence" || s == "dtmf" || s == "hangup" || s == "no_input":
		return s
	case strings.Contains(s, "max"):
		return "max_duration"
	}
	return "other"
}

// callDurationBuckets are call lengths in seconds (5 s to 1 h).
var callDurationBuckets = []float64{5, 10, 20, 30, 60, 120, 180, 300, 600, 1200, 3600}

// turnsPerCallBuckets count caller turns in one call.
var turnsPerCallBuckets = []float64{0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30}

// utteranceBuckets are utterance lengths in seconds (0.25 s to 60 s).
var utteranceBuckets = []float64{.25, .5, 1, 1.5, 2, 3, 4, 6, 8, 10, 15, 20, 30, 60}

// stepBuckets are latency buckets for the steps of a voice turn, in
// seconds (1 ms to 10 s).
var stepBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .15, .25, .5, 1, 2.5, 5, 10}

func newVoiceMetrics(reg prometheus.Registerer) (*voiceMetrics, error) {
	m := &voiceMetrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "koel_calls_active",
			Help: "Voice calls started and not yet ended, as counted by this process (sum over nodes for the cluster).",
		}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_calls_total",
			Help: "Voice calls ended, by outcome (caller_hangup, transferred, failed, no_input, abandoned).",
		}, []string{"outcome"}),
		turns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_call_turns_total",
			Help: "Caller utterances handled, by result (answered, no_speech, not_understood, failed, hangup).",
		}, []string{"result"}),
		fetch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "koel_recording_fetch_seconds",
			Help:    "Time to start downloading a call recording (both attempts).",
			Buckets: stepBuckets,
		}),
		decode: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "koel_recording_decode_seconds",
			Help:    "Time spent downloading and decoding a call recording to 8 kHz PCM, after its start.",
			Buckets: stepBuckets,
		}),
		stt: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "koel_stt_seconds",
			Help:    "Time to transcribe a call recording.",
			Buckets: stepBuckets,
		}),
		bot: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "koel_voice_bot_seconds",
			Help:    "Time the engine took to answer a voice turn (store and bot).",
			Buckets: stepBuckets,
		}),
		turnTotal: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "koel_voice_turn_seconds",
			Help:    "Time from a recorded utterance to its answer (fetch, decode, STT, bot).",
			Buckets: stepBuckets,
		}),
		breaks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_break_messages_total",
			Help: "Break messages spoken, by reason (fetch, decode, stt, bot, bot_timeout, invalid, internal).",
		}, []string{"reason"}),
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_transfers_total",
			Help: "Transfers to an agent, by result (started, answered, not_answered).",
		}, []string{"result"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_kookoo_duplicate_events_total",
			Help: "Voice call events delivered again and answered from the stored response.",
		}),
		understanding: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_call_understanding_total",
			Help: "Voice turns by dialogue-repair band (answered, confirm, confirmed, declined, reprompt, no_speech, menu, failed).",
		}, []string{"band"}),
		holds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_call_holds_total",
			Help: "Recordings put on hold because every recording slot was busy.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "koel_call_duration_seconds",
			Help:    "Length of ended voice calls, from the first event to the end (any outcome).",
			Buckets: callDurationBuckets,
		}),
		turnsPerCall: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "koel_call_turns",
			Help:    "Recordings koel asked for in one voice call (its caller turns), observed when the call ends.",
			Buckets: turnsPerCallBuckets,
		}),
		recordEnds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_record_ends_total",
			Help: "Caller recordings received, by how they ended (silence, max_duration, dtmf, hangup, no_input, barge_in, other).",
		}, []string{"reason"}),
		utterance: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "koel_utterance_seconds",
			Help:    "Length of the caller's audio in one utterance (recording or streamed speech), observed when it is heard.",
			Buckets: utteranceBuckets,
		}),
	}
	for _, c := range []prometheus.Collector{m.active, m.calls, m.turns, m.fetch, m.decode, m.stt, m.bot,
		m.turnTotal, m.breaks, m.transfers, m.duplicates, m.understanding, m.holds, m.duration, m.turnsPerCall, m.utterance, m.recordEnds} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("ivr: voice metrics already registered on this registerer (one voice service per registry)")
			}
			return nil, err
		}
	}
	// Pre-create the closed label sets so dashboards see zeros, not gaps.
	for _, o := range []string{OutcomeCallerHangup, OutcomeTransferred, OutcomeFailed, OutcomeNoInput, OutcomeAbandoned} {
		m.calls.WithLabelValues(o)
	}
	for _, r := range []string{turnAnswered, turnNoSpeech, turnNotUnderstood, turnFailed, turnHangup} {
		m.turns.WithLabelValues(r)
	}
	for _, r := range recordEndReasons {
		m.recordEnds.WithLabelValues(r)
	}
	for _, r := range []string{transferStarted, transferAnswered, transferNotAnswered} {
		m.transfers.WithLabelValues(r)
	}
	for _, b := range []string{UnderstandingAnswered, UnderstandingConfirm, UnderstandingConfirmed, UnderstandingDeclined,
		UnderstandingReprompt, UnderstandingNoSpeech, UnderstandingMenu, UnderstandingFailed} {
		m.understanding.WithLabelValues(b)
	}
	return m, nil
}
