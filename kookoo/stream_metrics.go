package kookoo

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// streamMetrics are the stream transport's collectors. Labels take values
// from closed sets only.
type streamMetrics struct {
	active       prometheus.Gauge
	framesIn     prometheus.Counter
	framesOut    prometheus.Counter
	late         *prometheus.CounterVec
	bargeIns     prometheus.Counter
	replyLatency prometheus.Histogram
	fallbacks    prometheus.Counter
	refused      *prometheus.CounterVec
	closed       *prometheus.CounterVec
	bad          prometheus.Counter
}

// replyBuckets are end of speech -> first reply packet buckets, in seconds.
var replyBuckets = []float64{.01, .025, .05, .075, .1, .15, .2, .3, .5, .75, 1, 2, 5}

func newStreamMetrics(reg prometheus.Registerer) (*streamMetrics, error) {
	m := &streamMetrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "koel_kookoo_streams_active", Help: "KooKoo <stream> WebSockets this process is serving."}),
		framesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_kookoo_stream_frames_in_total", Help: "10 ms caller audio frames received on KooKoo streams."}),
		framesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_kookoo_stream_frames_out_total", Help: "10 ms reply audio packets sent on KooKoo streams."}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_kookoo_stream_frames_late_total",
			Help: "Stream frames off their 10 ms slot: in = arrived over 60 ms late, out = sent over 30 ms late."}, []string{"direction"}),
		bargeIns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_kookoo_stream_barge_ins_total", Help: "Replies cut because the caller spoke over them."}),
		replyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "koel_kookoo_stream_reply_latency_seconds",
			Help:    "From the end-pointer's end of the caller's turn to the first reply packet written on the stream.",
			Buckets: replyBuckets}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_kookoo_stream_fallbacks_total", Help: "Streams that ended without an exit; the call went on in record mode."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_kookoo_stream_refused_total", Help: "Stream WebSockets refused before the upgrade, by reason."}, []string{"reason"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_kookoo_streams_closed_total", Help: "Streams closed: exit (koel left the stream), ended, error."}, []string{"how"}),
		bad: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_kookoo_stream_bad_messages_total", Help: "Streams closed for a message koel refuses (not JSON, too large, wrong frame size or rate)."}),
	}
	for _, c := range []prometheus.Collector{m.active, m.framesIn, m.framesOut, m.late, m.bargeIns, m.replyLatency, m.fallbacks, m.refused, m.closed, m.bad} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("kookoo: stream metrics already registered on this registerer (one StreamServer per registry)")
			}
			return nil, err
		}
	}
	for _, l := range []string{"in", "out"} {
		m.late.WithLabelValues(l)
	}
	for _, l := range []string{"exit", "ended", "error"} {
		m.closed.WithLabelValues(l)
	}
	return m, nil
}
