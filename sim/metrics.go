package sim

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Call results (label values of koel_sim_calls_total).
const (
	resultCompleted    = "completed"     // the app hung up
	resultCallerHangup = "caller_hangup" // the caller hung up
	resultFailed       = "failed"        // app, media or internal failure
	resultRejected     = "rejected"      // refused before media (cap, bad offer)
)

// metrics are the sim's collectors, registered on the injected Registerer.
type metrics struct {
	callsActive   prometheus.Gauge
	calls         *prometheus.CounterVec
	framesSent    prometheus.Counter
	framesLate    prometheus.Counter
	dtmfDigits    prometheus.Counter
	replyLatency  prometheus.Histogram
	appRequest    *prometheus.HistogramVec
	appErrors     prometheus.Counter
	endpointDelay prometheus.Histogram
	rtpIn         prometheus.Counter
	rtpOut        prometheus.Counter
	framesLost    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		callsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "koel_sim_calls_active", Help: "Softphone calls in progress.",
		}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_sim_calls_total", Help: "Softphone calls ended, by result.",
		}, []string{"result"}),
		framesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_sim_frames_sent_total", Help: "20 ms audio frames sent to softphone callers.",
		}),
		framesLate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_sim_frames_late_total", Help: "Frames sent more than 40 ms after their schedule.",
		}),
		dtmfDigits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_sim_dtmf_digits_total", Help: "DTMF digits received from softphone callers.",
		}),
		replyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "koel_sim_reply_latency_seconds",
			Help:    "Time from the end-pointer firing to the first frame of the reply's audio.",
			Buckets: []float64{.01, .02, .04, .06, .08, .1, .15, .2, .3, .5, 1, 2, 5},
		}),
		appRequest: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "koel_sim_app_request_duration_seconds",
			Help:    "Duration of requests from the emulator to KooKoo apps, by event.",
			Buckets: prometheus.DefBuckets,
		}, []string{"event"}),
		appErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_sim_app_errors_total", Help: "Failed requests to KooKoo apps (transport, status, timeout, invalid XML).",
		}),
		endpointDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "koel_sim_record_end_seconds",
			Help:    "Recorded audio length per <record>.",
			Buckets: []float64{.5, 1, 2, 3, 5, 8, 13, 20, 30, 60},
		}),
	}
	rtp := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "koel_sim_rtp_packets_total",
		Help: "RTP packets on softphone calls, by direction (in: read from callers, audio and DTMF; out: audio sent to callers).",
	}, []string{"direction"})
	m.rtpIn, m.rtpOut = rtp.WithLabelValues("in"), rtp.WithLabelValues("out")
	m.framesLost = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "koel_sim_frames_lost_total",
		Help: "RTP packets from softphone callers missing by sequence number when a later one arrived (gaps under 1000).",
	})
	for _, c := range []prometheus.Collector{m.callsActive, m.calls, m.framesSent, m.framesLate, m.dtmfDigits, m.replyLatency, m.appRequest, m.appErrors, m.endpointDelay, rtp, m.framesLost} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("sim: register metrics (a second Sim needs its own Registerer): %w", err)
			}
			return nil, fmt.Errorf("sim: register metrics: %w", err)
		}
	}
	for _, r := range []string{resultCompleted, resultCallerHangup, resultFailed, resultRejected} {
		m.calls.WithLabelValues(r)
	}
	return m, nil
}

// packetIn counts an RTP packet read from a caller and the packets lost
// before it.
func (m *metrics) packetIn(lost int) {
	m.rtpIn.Inc()
	if lost > 0 {
		m.framesLost.Add(float64(lost))
	}
}
