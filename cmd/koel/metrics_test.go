package main

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestServerMetricsFollowTheNamingRules gathers every collector koel serve
// registers (engine, HTTP, outbox, KooKoo app, softphone, Go runtime) and
// runs Prometheus's linter over them.
func TestServerMetricsFollowTheNamingRules(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "", "")
	cfg.Sim.Disabled = false
	srv := startServer(t, cfg)
	problems, err := testutil.GatherAndLint(srv.registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	mfs, err := srv.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{"koel_calls_active", "koel_sim_calls_active", "go_goroutines"} {
		if !names[want] {
			t.Errorf("%s is not exported", want)
		}
	}
}
