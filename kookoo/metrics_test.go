package kookoo

import (
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestAppMetrics(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	setupRecordings(t, h)
	const sid = "5000000000000001"
	for _, q := range []string{
		"event=NewCall&" + caller,
		"event=Record&status=silence&data=" + url.QueryEscape(h.recs.URL+"/q-hours.wav"),
		"event=Record&data=" + url.QueryEscape(h.recs.URL+"/missing.wav"),
		"event=Record&data=" + url.QueryEscape(h.recs.URL+"/empty.wav"),
		"event=GotDTMF&data=0",
		"event=Dial&status=not_answered&data=-1",
		"event=Record&data=" + url.QueryEscape(h.recs.URL+"/q-location.wav"),
		"event=Record&data=hello",
		"event=Hangup&process=record",
	} {
		h.get("demo", "sid="+sid+"&"+q)
	}
	h.get("demo", "event=NewCall") // probe

	problems, err := testutil.GatherAndLint(h.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	counters := []struct {
		name, label, value string
		want               float64
	}{
		{"koel_calls_total", "outcome", "caller_hangup", 1},
		{"koel_calls_total", "outcome", "failed", 0},
		{"koel_call_turns_total", "result", "answered", 2},
		{"koel_call_turns_total", "result", "no_speech", 1},
		{"koel_call_turns_total", "result", "failed", 2},
		{"koel_break_messages_total", "reason", "fetch", 1},
		{"koel_break_messages_total", "reason", "invalid", 1},
		{"koel_transfers_total", "result", "started", 1},
		{"koel_transfers_total", "result", "not_answered", 1},
		{"koel_kookoo_invalid_requests_total", "", "", 1},
		{"koel_calls_active", "", "", 0},
		{"koel_record_ends_total", "reason", "silence", 1},
		{"koel_record_ends_total", "reason", "other", 3},
		{"koel_record_ends_total", "reason", "max_duration", 0},
	}
	for _, c := range counters {
		if got := gatheredValue(t, h.reg, c.name, c.label, c.value); got != c.want {
			t.Errorf("%s{%s=%q} = %v, want %v", c.name, c.label, c.value, got, c.want)
		}
	}
	// One call ended after six recordings were asked for (Call.Turn): its
	// length and its turn count. (The harness's transcripts carry no audio
	// length; koel_utterance_seconds is asserted by the dashboard test on
	// real recordings.)
	histograms := []struct {
		name      string
		wantCount uint64
		wantSum   float64 // < 0: only > 0 is checked
	}{
		{"koel_call_duration_seconds", 1, -1},
		{"koel_call_turns", 1, 6},
	}
	for _, hc := range histograms {
		count, sum := gatheredHistogram(t, h.reg, hc.name)
		if count != hc.wantCount {
			t.Errorf("%s count = %d, want %d", hc.name, count, hc.wantCount)
		}
		if (hc.wantSum < 0 && sum < 0) || (hc.wantSum >= 0 && sum != hc.wantSum) {
			t.Errorf("%s sum = %v, want %v", hc.name, sum, hc.wantSum)
		}
	}
	if n := testutil.CollectAndCount(h.app.m.requests); n < 6 {
		t.Errorf("request histogram has %d event series, want one per event seen", n)
	}
	if got, err := testutil.GatherAndCount(h.reg, "koel_recording_fetch_seconds"); err != nil || got != 1 {
		t.Errorf("fetch histogram series = %d (%v)", got, err)
	}
	// No label value may carry a sid, a number or a URL.
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				v := lp.GetValue()
				if strings.Contains(v, sid) || strings.Contains(v, "9704665032") || strings.Contains(v, "http") {
					t.Errorf("%s has label %s=%q", mf.GetName(), lp.GetName(), v)
				}
			}
		}
	}
}

// gatheredValue returns the value of the counter or gauge name (with the
// label pair, when label is set) gathered from reg.
// gatheredHistogram returns the sample count and sum of the unlabelled
// histogram name (0, -1 when it is missing).
func gatheredHistogram(t *testing.T, reg prometheus.Gatherer, name string) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			hist := mf.GetMetric()[0].GetHistogram()
			return hist.GetSampleCount(), hist.GetSampleSum()
		}
	}
	return 0, -1
}

func gatheredValue(t *testing.T, reg prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					match = true
				}
			}
			if !match {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s{%s=%q} not gathered", name, label, value)
	return 0
}

func TestNewAppRejectsSecondRegistration(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	_, err := NewApp(AppConfig{Store: h.store, Engine: h.engine, STT: unavailableSTT{}, Registerer: h.reg})
	if err == nil {
		t.Fatal("a second app on the same registry was accepted")
	}
	for _, cfg := range []AppConfig{{}, {Store: h.store}, {Store: h.store, Engine: h.engine}} {
		if _, err := NewApp(cfg); err == nil {
			t.Errorf("NewApp(%+v) accepted a config missing a dependency", cfg)
		}
	}
	if _, err := NewApp(AppConfig{Store: h.store, Engine: h.engine, STT: unavailableSTT{}, RecordFormat: "ogg"}); err == nil {
		t.Error("record format ogg accepted")
	}
}
