package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/store"
)

// StatsSource counts the queue for the depth gauges, read at scrape time;
// the store implements it.
type StatsSource interface {
	OutboxStats(ctx context.Context) ([]store.OutboxStat, error)
}

// statsTimeout bounds the store query of one scrape.
const statsTimeout = 2 * time.Second

// metrics are the dispatcher's Prometheus collectors. Labels come from
// closed sets: channel names, result and class constants.
type metrics struct {
	attempts     *prometheus.CounterVec   // channel, result
	failures     *prometheus.CounterVec   // channel, class
	duration     *prometheus.HistogramVec // channel
	latency      *prometheus.HistogramVec // channel
	breakerOpens prometheus.Counter
	expired      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, stats StatsSource, inFlight func() int, now func() time.Time) (*metrics, error) {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_outbox_attempts_total",
			Help: "Outbox delivery attempts, by channel and result (delivered, retry, dead).",
		}, []string{"channel", "result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_outbox_failures_total",
			Help: "Failed outbox delivery attempts, by channel and class (timeout, network, rate_limited, server, client, redirect, config, other).",
		}, []string{"channel", "class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "koel_outbox_attempt_duration_seconds",
			Help:    "Time of one outbox delivery attempt, by channel.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"channel"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "koel_outbox_delivery_latency_seconds",
			Help:    "Time from storing an outbox item to its successful delivery, by channel.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 86400},
		}, []string{"channel"}),
		breakerOpens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_outbox_breaker_opens_total",
			Help: "Times a connection's circuit breaker opened (or reopened after a failed probe).",
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_outbox_expired_total",
			Help: "Outbox items dead-lettered by the sweep after their retry horizon, without a final attempt.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	collectors := []prometheus.Collector{m.attempts, m.failures, m.duration, m.latency, m.breakerOpens, m.expired,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "koel_outbox_in_flight",
			Help: "Outbox deliveries running on this node.",
		}, func() float64 { return float64(inFlight()) }),
	}
	if stats != nil {
		collectors = append(collectors, &depthCollector{stats: stats, now: now})
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("outbox: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) attempt(it ivr.OutboxItem, took time.Duration) {
	m.duration.WithLabelValues(string(channelOf(it))).Observe(took.Seconds())
}

func (m *metrics) delivered(it ivr.OutboxItem, at time.Time) {
	ch := string(channelOf(it))
	m.attempts.WithLabelValues(ch, "delivered").Inc()
	if !it.CreatedAt.IsZero() {
		m.latency.WithLabelValues(ch).Observe(max(at.Sub(it.CreatedAt), 0).Seconds())
	}
}

func (m *metrics) failed(it ivr.OutboxItem, class string, dead bool) {
	ch := string(channelOf(it))
	result := "retry"
	if dead {
		result = "dead"
	}
	m.attempts.WithLabelValues(ch, result).Inc()
	m.failures.WithLabelValues(ch, class).Inc()
}

// depthCollector reads the queue's depth and age from the store at scrape
// time: one grouped query per scrape.
type depthCollector struct {
	stats StatsSource
	now   func() time.Time
}

var (
	depthDesc = prometheus.NewDesc("koel_outbox_items",
		"Outbox items waiting (pending) or dead-lettered (dead), by channel.", []string{"channel", "status"}, nil)
	ageDesc = prometheus.NewDesc("koel_outbox_oldest_pending_age_seconds",
		"Age of the oldest pending outbox item, by channel.", []string{"channel"}, nil)
	scrapeErrDesc = prometheus.NewDesc("koel_outbox_stats_errors",
		"1 when the last read of the outbox depth failed.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- depthDesc
	ch <- ageDesc
	ch <- scrapeErrDesc
}

// Collect implements prometheus.Collector.
func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
	defer cancel()
	stats, err := c.stats.OutboxStats(ctx)
	failed := 0.0
	if err != nil {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.GaugeValue, failed)
	now := c.now()
	for _, st := range stats {
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(st.Count), string(st.Channel), string(st.Status))
		if st.Status == ivr.OutboxPending && !st.Oldest.IsZero() {
			ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, max(now.Sub(st.Oldest), 0).Seconds(), string(st.Channel))
		}
	}
}
