package ivr

import (
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
