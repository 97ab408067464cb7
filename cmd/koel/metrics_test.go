package main

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// TestServerMetricsFollowTheNamingRules gathers every collector koel serve
// registers (engine, HTTP, outbox, KooKoo app, softphone, Go runtime), drives
// a little traffic so labelled series exist, and audits them: Prometheus's
// linter plus koel's own rules (auditMetrics).
func TestServerMetricsFollowTheNamingRules(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "", "")
	cfg.Sim.Disabled = false
	srv := startServer(t, cfg)
	base := srv.URL()
	auth := map[string]string{"Authorization": "Bearer " + testToken}
	for _, q := range []string{"can i pay using upi", "what is the capital of peru"} {
		if code, body := postJSON(t, base+"/api/bots/1/converse", auth, fmt.Sprintf(`{"user_id":"audit-user-4417","text":%q}`, q)); code != http.StatusOK {
			t.Fatalf("bot API: %d %s", code, body)
		}
	}
	for _, st := range []map[string]string{
		{"event": "NewCall", "cid": "09876543210", "called_number": "918065740671"},
		{"event": "GotDTMF", "data": "0"},
		{"event": "Hangup", "process": "dial", "total_call_duration": "9"},
	} {
		p := ev("5550123", st["event"])
		for k, v := range st {
			p.Set(k, v)
		}
		if code, body := kookooGet(t, base, p); code != http.StatusOK {
			t.Fatalf("%s: %d %s", st["event"], code, body)
		}
	}
	auditMetrics(t, srv.registry, "audit-user-4417", "5550123", "09876543210", "918065740671")

	mfs, err := srv.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{"koel_calls_active", "koel_sim_calls_active", "go_goroutines", "koel_calls_total", "koel_bot_fallbacks_total"} {
		if !names[want] {
			t.Errorf("%s is not exported", want)
		}
	}
}

// TestMetricsAuditCatchesBadMetrics: the audit is not vacuous — each rule
// fires on a metric that breaks it.
func TestMetricsAuditCatchesBadMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	byCaller := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "koel_calls_by_caller_total", Help: "Calls by caller number."}, []string{"caller"})
	byCaller.WithLabelValues("+919876543210").Inc()
	reg.MustRegister(byCaller,
		prometheus.NewCounter(prometheus.CounterOpts{Name: "koel_retries", Help: "Retries made by the outbox."}),
		prometheus.NewGauge(prometheus.GaugeOpts{Name: "calls_active", Help: "Calls in progress now."}),
		prometheus.NewHistogram(prometheus.HistogramOpts{Name: "koel_reply_ms", Help: "Reply time of the bot."}),
		prometheus.NewGauge(prometheus.GaugeOpts{Name: "koel_queue_depth", Help: ""}),
	)
	problems := metricProblems(reg, "nobody")
	for _, want := range []string{
		"koel_calls_by_caller_total: label caller value",
		"koel_retries: a counter's name must end in _total",
		"calls_active: koel's metrics start with koel_",
		"koel_reply_ms: a histogram's name ends in a base unit",
		"koel_reply_ms: name uses a non-base unit",
		"koel_queue_depth: help text",
	} {
		found := false
		for _, p := range problems {
			if strings.HasPrefix(p, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("audit missed %q; it said %q", want, problems)
		}
	}
}

// auditMetrics fails the test for every problem metricProblems finds.
func auditMetrics(t *testing.T, reg *prometheus.Registry, identifiers ...string) {
	t.Helper()
	lint, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range lint {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	for _, p := range metricProblems(reg, identifiers...) {
		t.Error(p)
	}
}

var (
	// nonBaseUnit matches names measured in other than seconds and bytes.
	nonBaseUnit = regexp.MustCompile(`_(ms|milliseconds|microseconds|us|ns|nanoseconds|minutes|hours|days|kb|kilobytes|mb|megabytes|bits)(_|$)`)
	// longDigits looks like a phone number, a KooKoo sid or a numeric user id.
	longDigits = regexp.MustCompile(`\d{5,}`)
	// idLike looks like a platform user id or a UUID.
	idLike = regexp.MustCompile(`(?i)^(psid|wamid|mid\.)|[0-9a-f]{8}-[0-9a-f]{4}-`)
)

// maxLabelValues caps how many values one label may take: labels are small
// fixed sets (channels, outcomes, reasons), never per caller or per call.
const maxLabelValues = 40

// countHistograms are the histograms whose unit is a count of things named
// by the metric (no base unit applies): turns in one call.
var countHistograms = map[string]bool{"koel_call_turns": true}

// metricProblems audits every metric family reg gathers: the koel_ prefix
// (Go and process collectors aside), counters ending in _total, time and
// size in base units, help texts present, and label values that are never
// one of identifiers nor look like a number, sid or user id.
func metricProblems(reg prometheus.Gatherer, identifiers ...string) []string {
	mfs, err := reg.Gather()
	if err != nil {
		return []string{"gather: " + err.Error()}
	}
	var out []string
	bad := func(name, format string, args ...any) {
		out = append(out, name+": "+fmt.Sprintf(format, args...))
	}
	for _, mf := range mfs {
		name := mf.GetName()
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") || strings.HasPrefix(name, "promhttp_") {
			continue
		}
		if !strings.HasPrefix(name, "koel_") {
			bad(name, "koel's metrics start with koel_")
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			if !strings.HasSuffix(name, "_total") {
				bad(name, "a counter's name must end in _total")
			}
		case dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY:
			if !strings.HasSuffix(name, "_seconds") && !strings.HasSuffix(name, "_bytes") && !strings.HasSuffix(name, "_ratio") &&
				!countHistograms[name] {
				bad(name, "a histogram's name ends in a base unit (_seconds, _bytes) or _ratio")
			}
		default:
			if strings.HasSuffix(name, "_total") {
				bad(name, "only counters end in _total")
			}
		}
		if nonBaseUnit.MatchString(name) {
			bad(name, "name uses a non-base unit; use _seconds or _bytes")
		}
		if help := strings.TrimSpace(mf.GetHelp()); len(strings.Fields(help)) < 3 {
			bad(name, "help text %q does not say what is counted", help)
		}
		values := map[string]map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				l, v := lp.GetName(), lp.GetValue()
				if values[l] == nil {
					values[l] = map[string]bool{}
				}
				values[l][v] = true
				for _, id := range identifiers {
					if id != "" && strings.Contains(v, id) {
						bad(name, "label %s value %q carries the identifier %q", l, v, id)
					}
				}
				if longDigits.MatchString(v) || idLike.MatchString(v) {
					bad(name, "label %s value %q looks like a number, sid or user id", l, v)
				}
			}
		}
		for l, vs := range values {
			if len(vs) > maxLabelValues {
				bad(name, "label %s has %d values; labels are small fixed sets", l, len(vs))
			}
		}
	}
	return out
}
