package stt

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of an utterance, the values of the "outcome" label.
const (
	outcomeText          = "text"
	outcomeEmpty         = "empty"
	outcomeLowConfidence = "low_confidence"
)

// metrics are the recogniser's Prometheus collectors. With a nil
// Registerer they are created but not exported.
type metrics struct {
	decoders   prometheus.Gauge
	active     prometheus.Gauge
	switches   prometheus.Counter
	utterances *prometheus.CounterVec
	audio      prometheus.Counter
	processing prometheus.Counter
	cpu        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		decoders: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "koel_stt_decoders", Help: "Pocketsphinx decoders alive (idle or in use).",
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "koel_stt_streams_active", Help: "Speech-to-text streams open now.",
		}),
		switches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_stt_vocabulary_switches_total", Help: "Warm decoders reloaded with another vocabulary.",
		}),
		utterances: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_stt_utterances_total", Help: "Utterances transcribed, by outcome (text, empty, low_confidence).",
		}, []string{"outcome"}),
		audio: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_stt_audio_seconds_total", Help: "Seconds of caller audio transcribed.",
		}),
		processing: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_stt_stream_seconds_total", Help: "Wall-clock seconds streams were open (start to close).",
		}),
		cpu: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_stt_cpu_seconds_total", Help: "CPU seconds the recogniser's streams spent in their own threads (upsampling, decoding, results).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.decoders, m.active, m.switches, m.utterances, m.audio, m.processing, m.cpu} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("stt: register metrics: %w", err)
		}
	}
	return m, nil
}

// observe records one finished utterance.
func (m *metrics) observe(r Result, audioSeconds, streamSeconds float64) {
	outcome := outcomeText
	switch {
	case r.Text == "":
		outcome = outcomeEmpty
	case r.Confidence < DefaultMinConfidence:
		outcome = outcomeLowConfidence
	}
	m.utterances.WithLabelValues(outcome).Inc()
	m.audio.Add(audioSeconds)
	m.processing.Add(streamSeconds)
}
