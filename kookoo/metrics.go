package kookoo

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values of the app's metrics. Every label takes its values from a
// closed set; never a sid, a caller number or a URL.
const (
	eventLabelProbe   = "probe"
	eventLabelNone    = "none"
	eventLabelInvalid = "invalid"
	eventLabelOther   = "other"

	turnAnswered = "answered"
	turnNoSpeech = "no_speech"
	turnFailed   = "failed"
	turnHangup   = "hangup" // a recording delivered with the hang-up

	transferStarted     = "started"
	transferAnswered    = "answered"
	transferNotAnswered = "not_answered"
)

// appMetrics are the KooKoo app's collectors.
type appMetrics struct {
	active     prometheus.Gauge
	calls      *prometheus.CounterVec
	turns      *prometheus.CounterVec
	requests   *prometheus.HistogramVec
	fetch      prometheus.Histogram
	decode     prometheus.Histogram
	stt        prometheus.Histogram
	bot        prometheus.Histogram
	turnTotal  prometheus.Histogram
	breaks     *prometheus.CounterVec
	transfers  *prometheus.CounterVec
	duplicates prometheus.Counter
	invalid    prometheus.Counter
}

// stepBuckets are latency buckets for the steps of a voice turn, in
// seconds (1 ms to 10 s).
var stepBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .15, .25, .5, 1, 2.5, 5, 10}

func newAppMetrics(reg prometheus.Registerer) (*appMetrics, error) {
	m := &appMetrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "koel_calls_active",
			Help: "Voice calls started and not yet ended, as counted by this process (sum over nodes for the cluster).",
		}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_calls_total",
			Help: "Voice calls ended, by outcome (caller_hangup, transferred, failed, no_input).",
		}, []string{"outcome"}),
		turns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_call_turns_total",
			Help: "Caller utterances handled, by result (answered, no_speech, failed, hangup).",
		}, []string{"result"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "koel_kookoo_request_duration_seconds",
			Help:    "Time to answer a KooKoo request, by event.",
			Buckets: stepBuckets,
		}, []string{"event"}),
		fetch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "koel_recording_fetch_seconds",
			Help:    "Time to download a call recording (both attempts).",
			Buckets: stepBuckets,
		}),
		decode: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "koel_recording_decode_seconds",
			Help:    "Time to decode a call recording to 8 kHz PCM.",
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
			Help:    "Time from a Record event to its answer (fetch, decode, STT, bot).",
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
			Help: "KooKoo events delivered again and answered from the stored response.",
		}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_kookoo_invalid_requests_total",
			Help: "KooKoo requests refused as malformed (bad parameters, sizes, unknown events).",
		}),
	}
	for _, c := range []prometheus.Collector{m.active, m.calls, m.turns, m.requests, m.fetch, m.decode, m.stt, m.bot,
		m.turnTotal, m.breaks, m.transfers, m.duplicates, m.invalid} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("kookoo: app metrics already registered on this registerer (one App per registry)")
			}
			return nil, err
		}
	}
	// Pre-create the closed label sets so dashboards see zeros, not gaps.
	for _, o := range []string{"caller_hangup", "transferred", "failed", "no_input"} {
		m.calls.WithLabelValues(o)
	}
	for _, r := range []string{turnAnswered, turnNoSpeech, turnFailed, turnHangup} {
		m.turns.WithLabelValues(r)
	}
	for _, r := range []string{transferStarted, transferAnswered, transferNotAnswered} {
		m.transfers.WithLabelValues(r)
	}
	return m, nil
}

func seconds(d time.Duration) float64 { return d.Seconds() }
