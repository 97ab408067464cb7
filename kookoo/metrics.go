package kookoo

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values of the app's metrics. Every label takes its values from a
// closed set; never a sid, a caller number or a URL. The voice turn's own
// metrics (calls, turns, fetch, STT, breaks, transfers) are the
// [ivr.VoiceService]'s.
const (
	eventLabelProbe   = "probe"
	eventLabelNone    = "none"
	eventLabelInvalid = "invalid"
	eventLabelOther   = "other"
)

// appMetrics are the KooKoo app's collectors.
type appMetrics struct {
	requests *prometheus.HistogramVec
	invalid  prometheus.Counter
}

// stepBuckets are latency buckets for requests, in seconds (1 ms to 10 s).
var stepBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .15, .25, .5, 1, 2.5, 5, 10}

func newAppMetrics(reg prometheus.Registerer) (*appMetrics, error) {
	m := &appMetrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "koel_kookoo_request_duration_seconds",
			Help:    "Time to answer a KooKoo request, by event.",
			Buckets: stepBuckets,
		}, []string{"event"}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_kookoo_invalid_requests_total",
			Help: "KooKoo requests refused as malformed (bad parameters, sizes, unknown events).",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.invalid} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("kookoo: app metrics already registered on this registerer (one App per registry)")
			}
			return nil, err
		}
	}
	return m, nil
}

func seconds(d time.Duration) float64 { return d.Seconds() }
