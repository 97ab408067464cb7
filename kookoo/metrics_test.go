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
		"event=Record&data=" + url.QueryEscape(h.recs.URL+"/q-hours.wav"),
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
		c    prometheus.Collector
		want float64
	}{
		{h.app.m.calls.WithLabelValues("caller_hangup"), 1},
		{h.app.m.calls.WithLabelValues("failed"), 0},
		{h.app.m.turns.WithLabelValues(turnAnswered), 2},
		{h.app.m.turns.WithLabelValues(turnNoSpeech), 1},
		{h.app.m.turns.WithLabelValues(turnFailed), 2},
		{h.app.m.breaks.WithLabelValues("fetch"), 1},
		{h.app.m.breaks.WithLabelValues("invalid"), 1},
		{h.app.m.transfers.WithLabelValues(transferStarted), 1},
		{h.app.m.transfers.WithLabelValues(transferNotAnswered), 1},
		{h.app.m.invalid, 1},
		{h.app.m.active, 0},
	}
	for i, c := range counters {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("counter %d = %v, want %v", i, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(h.app.m.requests); n < 6 {
		t.Errorf("request histogram has %d event series, want one per event seen", n)
	}
	if got := testutil.CollectAndCount(h.app.m.fetch); got != 1 {
		t.Errorf("fetch histogram series = %d", got)
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

func TestNewAppRejectsSecondRegistration(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	_, err := NewApp(AppConfig{Store: h.store, Engine: h.app.engine, STT: unavailableSTT{}, Registerer: h.reg})
	if err == nil {
		t.Fatal("a second app on the same registry was accepted")
	}
	for _, cfg := range []AppConfig{{}, {Store: h.store}, {Store: h.store, Engine: h.app.engine}} {
		if _, err := NewApp(cfg); err == nil {
			t.Errorf("NewApp(%+v) accepted a config missing a dependency", cfg)
		}
	}
	if _, err := NewApp(AppConfig{Store: h.store, Engine: h.app.engine, STT: unavailableSTT{}, RecordFormat: "ogg"}); err == nil {
		t.Error("record format ogg accepted")
	}
}
