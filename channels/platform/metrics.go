package platform

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koelvoice/koel/ivr"
)

// Directions of koel_channel_messages_total.
const (
	DirectionInbound  = "inbound"
	DirectionOutbound = "outbound"
)

// Reasons of koel_channel_rejected_total.
const (
	RejectSignature = "signature"
	RejectMalformed = "malformed"
	RejectTooLarge  = "too_large"
	RejectNotFound  = "not_found"
)

// Metrics are the channel collectors shared by every adapter and sender. A
// nil *Metrics records nothing.
type Metrics struct {
	messages *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	failures *prometheus.CounterVec
	rejected *prometheus.CounterVec
}

// NewMetrics creates the channel collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_channel_messages_total",
			Help: "Text-channel messages: inbound accepted from the platform, outbound accepted by the platform's send API.",
		}, []string{"channel", "direction"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "koel_channel_delivery_seconds",
			Help:    "Time from a reply being stored to the platform accepting it, retries included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"channel"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_channel_delivery_failures_total",
			Help: "Send attempts that failed, by channel and class (rate_limited, server, client, auth, network).",
		}, []string{"channel", "class"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_channel_rejected_total",
			Help: "Inbound platform requests refused before anything was stored, by reason.",
		}, []string{"channel", "reason"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.messages, m.latency, m.failures, m.rejected} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("platform: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Inbound counts one accepted inbound message.
func (m *Metrics) Inbound(ch ivr.Channel) {
	if m != nil {
		m.messages.WithLabelValues(string(ch), DirectionInbound).Inc()
	}
}

// Delivered counts one reply the platform accepted and observes its latency
// since it was stored.
func (m *Metrics) Delivered(ch ivr.Channel, storedAt, now time.Time) {
	if m == nil {
		return
	}
	m.messages.WithLabelValues(string(ch), DirectionOutbound).Inc()
	if !storedAt.IsZero() {
		m.latency.WithLabelValues(string(ch)).Observe(now.Sub(storedAt).Seconds())
	}
}

// DeliveredSync counts a reply returned in the HTTP response (TwiML, the
// other-channels API): outbound, with no send latency.
func (m *Metrics) DeliveredSync(ch ivr.Channel, n int) {
	if m != nil && n > 0 {
		m.messages.WithLabelValues(string(ch), DirectionOutbound).Add(float64(n))
	}
}

// Failed counts one failed send attempt.
func (m *Metrics) Failed(ch ivr.Channel, class string) {
	if m != nil {
		m.failures.WithLabelValues(string(ch), class).Inc()
	}
}

// Rejected counts one refused inbound request.
func (m *Metrics) Rejected(ch ivr.Channel, reason string) {
	if m != nil {
		m.rejected.WithLabelValues(string(ch), reason).Inc()
	}
}
