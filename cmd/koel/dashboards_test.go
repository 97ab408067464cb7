package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/channels/channeltest"
	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/channels/webhook"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/sim"
	"github.com/koelvoice/koel/sim/loadgen"
)

// grafanaDir is the repository's grafana/ directory, seen from cmd/koel.
const grafanaDir = "../../grafana"

// needTool finds a binary the dashboard test needs. Outside `make test` a
// missing binary skips the test; under `make test` (which sets
// KOEL_TEST_DATABASE_URL and installs the Debian package) it fails.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("KOEL_TEST_DATABASE_URL") != "" {
		t.Fatalf("%s not found under make test: install Debian's %s (make deps-test)", name, pkg)
	}
	t.Skipf("%s not found: apt-get install %s, or run make test, which installs it", name, pkg)
	return ""
}

// TestPromtoolAcceptsConfigAndRules checks the shipped Prometheus
// configuration and alert rules with promtool.
func TestPromtoolAcceptsConfigAndRules(t *testing.T) {
	promtool := needTool(t, "promtool", "prometheus")
	for _, args := range [][]string{
		{"check", "config", filepath.Join(grafanaDir, "prometheus.yml")},
		{"check", "rules", filepath.Join(grafanaDir, "alerts.yml")},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("SUCCESS")) {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// promtool is strict: a broken rule fails (so the check above can fail).
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("groups:\n- name: x\n  rules:\n  - alert: X\n    expr: sum(rate(koel_calls_total[5m]) >\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", bad).CombinedOutput(); err == nil {
		t.Errorf("promtool accepted a broken rule:\n%s", out)
	}
}

// promServer is a Debian prometheus started for one test on loopback.
type promServer struct {
	base string
}

func startPrometheus(t *testing.T, target string) *promServer {
	t.Helper()
	bin := needTool(t, "prometheus", "prometheus")
	dir := t.TempDir()
	rules, err := filepath.Abs(filepath.Join(grafanaDir, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: koel
    metrics_path: /metrics
    static_configs:
      - targets: [%q]
`, rules, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})
	p := &promServer{base: "http://" + addr}
	p.waitFor(t, "prometheus ready", 30*time.Second, func() (bool, string) {
		resp, err := http.Get(p.base + "/-/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return p
}

// waitFor polls cond until it holds or the deadline passes.
func (p *promServer) waitFor(t *testing.T, what string, within time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (last: %s)", what, within, last)
		}
		<-tick.C
	}
}

// promResult is one series of an instant query.
type promResult struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// waitScrapeAfter waits for a scrape of koel that started after at.
func (p *promServer) waitScrapeAfter(t *testing.T, at time.Time) {
	t.Helper()
	p.waitFor(t, "a scrape after the first round", 30*time.Second, func() (bool, string) {
		rs, err := p.query(`timestamp(up{job="koel"})`)
		if err != nil || len(rs) != 1 {
			return false, fmt.Sprint(rs, err)
		}
		s, _ := rs[0].Value[1].(string)
		ts, err := strconv.ParseFloat(s, 64)
		return err == nil && ts > float64(at.UnixNano())/1e9, s
	})
}

// query runs an instant PromQL query; it returns the series and any
// error Prometheus reported.
func (p *promServer) query(expr string) ([]promResult, error) {
	resp, err := http.Get(p.base + "/api/v1/query?" + url.Values{"query": {expr}}.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     []promResult `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", body, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("prometheus: %s", r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("result type %q", r.Data.ResultType)
	}
	return r.Data.Result, nil
}

// finite reports whether any series holds a number (not NaN or Inf): a
// quantile or ratio over counters that never moved is NaN, which a panel
// shows as no data.
func finite(rs []promResult) bool {
	for _, r := range rs {
		s, _ := r.Value[1].(string)
		if v, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
			return true
		}
	}
	return false
}

// dashboardQuery is one panel query read from a dashboard file.
type dashboardQuery struct {
	dashboard, panel, expr string
}

// dashboardQueries parses every committed dashboard the way Grafana reads
// it and returns every panel query.
func dashboardQueries(t *testing.T) []dashboardQuery {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(grafanaDir, "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards under grafana/dashboards (%v)", err)
	}
	var qs []dashboardQuery
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Title  string `json:"title"`
			Panels []struct {
				Type    string `json:"type"`
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, p := range d.Panels {
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", d.Title, p.Title)
			}
			for _, tg := range p.Targets {
				qs = append(qs, dashboardQuery{d.Title, p.Title, tg.Expr})
			}
		}
	}
	return qs
}

// grafanaVars stands in for the variables Grafana substitutes before it
// sends a query: the rate window spans the whole test.
var grafanaVars = strings.NewReplacer("$__rate_interval", "10m", "$__interval", "10s", "$__range", "10m")

// TestDashboardsShowDataFromRealTraffic starts koel with pocketsphinx and
// Debian's prometheus scraping it every second, drives voice calls
// (KooKoo events, a transfer, a broken recording, a softphone call) and
// text messages (webhook API with one failed delivery, bot API,
// Messenger with one refused send), then runs every panel query of every
// dashboard against Prometheus' HTTP API: each must return a number.
// The alert rules must evaluate without error.
func TestDashboardsShowDataFromRealTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("starts koel and prometheus")
	}
	needTool(t, "prometheus", "prometheus")
	utts, err := loadgen.RenderUtterances(context.Background(), 4, t.TempDir())
	if err != nil {
		t.Skipf("espeak-ng unavailable: %v (make test installs it)", err)
	}

	rc, hook := newReceiver(t, 1) // the integrator's first delivery fails with 503
	graph := channeltest.NewGraph(t, e2ePageToken, e2ePhoneID)
	graph.FailNext(channeltest.Failure{Status: 500, Body: `{"error":{"message":"An unexpected error has occurred.","type":"OAuthException","code":1}}`})
	cfg := testConfig(t, t.TempDir(), "", hook.URL)
	srv := startVoiceServer(t, cfg)
	fb := ivr.Connection{BusinessID: demo.BusinessID, Channel: ivr.ChannelFacebook, Identifier: "bluebird", Active: true,
		Settings: ivr.ConnectionSettings{Messenger: ivr.MessengerSettings{
			PageAccessToken: e2ePageToken, AppSecret: e2eAppSecret, VerifyToken: "v", GraphURL: graph.URL()}}}
	if err := srv.store.CreateConnection(context.Background(), &fb); err != nil {
		t.Fatal(err)
	}
	base := srv.URL()

	prom := startPrometheus(t, strings.TrimPrefix(base, "http://"))
	// Traffic starts after the first scrape, so every counter's increase
	// falls inside Prometheus' samples.
	prom.waitFor(t, "the first scrape of koel", 30*time.Second, func() (bool, string) {
		rs, err := prom.query(`up{job="koel"} == 1`)
		if err != nil {
			return false, err.Error()
		}
		return len(rs) == 1, fmt.Sprintf("%d series", len(rs))
	})

	ctx := context.Background()
	// Two rounds of traffic with a scrape between them: Prometheus counts
	// no increase for a series' first sample, so a series born in round 1
	// moves in round 2.
	for round := range 2 {
		trafficRound(t, ctx, base, round, utts, rc, graph)
		if round == 0 {
			prom.waitScrapeAfter(t, time.Now())
		}
	}

	// The outbox queue: one item whose endpoint keeps answering 503
	// (pending, retried) and one dead letter.
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(refusing.Close)
	stuck := []*ivr.OutboxItem{
		{ConnectionID: 1, Recipient: "dash-pending", IdempotencyKey: "dash-pending", URL: refusing.URL + "/hook", Body: []byte(`{}`)},
		{ConnectionID: 1, Recipient: "dash-dead", IdempotencyKey: "dash-dead", URL: refusing.URL + "/hook", Body: []byte(`{}`)},
	}
	if err := srv.store.AppendMessages(ctx, nil, stuck); err != nil {
		t.Fatal(err)
	}
	if err := srv.store.MarkAttemptFailed(ctx, stuck[1].ID, "receiver answered 503", time.Now(), true); err != nil {
		t.Fatal(err)
	}

	// After real traffic on every path, the registry passes the audit: no
	// label carries a caller number, sid or user id used above.
	auditMetrics(t, srv.registry, "09876543210", "918065740671", "PSID77", "dash-", "9301", "9302", "mid.dash")

	queries := dashboardQueries(t)
	if len(queries) < 30 {
		t.Fatalf("%d panel queries; the four dashboards hold more", len(queries))
	}
	for _, q := range queries {
		expr := grafanaVars.Replace(q.expr)
		prom.waitFor(t, fmt.Sprintf("%s / %s: %s returns data", q.dashboard, q.panel, expr), 45*time.Second, func() (bool, string) {
			rs, err := prom.query(expr)
			if err != nil {
				return false, err.Error()
			}
			return finite(rs), fmt.Sprintf("%d series, none finite: %v", len(rs), rs)
		})
	}

	// Every alert rule evaluates without error on real data.
	prom.waitFor(t, "alert rules evaluated", 30*time.Second, func() (bool, string) {
		resp, err := http.Get(prom.base + "/api/v1/rules")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name, Health, LastError string
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return false, err.Error()
		}
		n := 0
		for _, g := range r.Data.Groups {
			for _, rule := range g.Rules {
				if rule.Health != "ok" {
					return false, fmt.Sprintf("%s: %s %s", rule.Name, rule.Health, rule.LastError)
				}
				n++
			}
		}
		return n >= 4, fmt.Sprintf("%d rules", n)
	})
}

// trafficRound drives one round of the dashboard test's calls and messages.
func trafficRound(t *testing.T, ctx context.Context, base string, round int, utts []loadgen.Utterance, rc *receiver, graph *channeltest.Platform) {
	t.Helper()
	// Voice: KooKoo calls answered from the FAQ through pocketsphinx.
	rep, err := loadgen.Run(ctx, loadgen.Config{Scenario: loadgen.ScenarioKooKoo, Target: base, Sessions: 2, Concurrency: 2, Turns: 2,
		Utterances: utts, Duration: 2 * time.Minute, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || rep.SessionsOK != 2 {
		t.Fatalf("kookoo load: %+v", rep)
	}
	// A call that asks for an agent who does not answer, and whose next
	// recording cannot be fetched (the break message).
	sid := fmt.Sprint(9301 + round)
	for _, st := range []url.Values{
		ev(sid, "NewCall", "cid", "09876543210", "called_number", "918065740671"),
		ev(sid, "GotDTMF", "data", "0"),
		ev(sid, "Dial", "status", "not_answered", "data", "-1"),
		ev(sid, "Record", "data", base+"/no-such-recording.wav", "status", "silence"),
		ev(sid, "Hangup", "process", "record", "total_call_duration", "20"),
	} {
		if code, body := kookooGet(t, base, st); code != http.StatusOK {
			t.Fatalf("%s: %d %s", st.Get("event"), code, body)
		}
	}
	// The softphone: one WebRTC call through the emulator.
	callCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := sim.RunCLI(callCtx, []string{"--server", base, "--connection", "demo", "--say", "how much is delivery", "--timeout", "60s"}, &stdout, &stderr); err != nil {
		t.Fatalf("koel call: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}

	// Text: the webhook API (its first delivery refused, then retried),
	// the bot API (one question it cannot answer), Messenger (its first
	// send refused by Graph).
	for i, q := range []string{"what are your opening hours", "do you accept upi"} {
		if code, body := postJSON(t, base+webhook.PathLogMessage, webhookHeaders, logMessage(fmt.Sprintf("dash-%d-%d", round, i), q)); code != http.StatusOK {
			t.Fatalf("webhook API: %d %s", code, body)
		}
		waitFor(t, rc.got, "the webhook delivery")
	}
	auth := map[string]string{"Authorization": "Bearer " + testToken}
	for _, q := range []string{"can i pay using upi", "what is the capital of peru"} {
		if code, body := postJSON(t, base+"/api/bots/1/converse", auth, fmt.Sprintf(`{"user_id":"dash","text":%q}`, q)); code != http.StatusOK {
			t.Fatalf("bot API: %d %s", code, body)
		}
	}
	body := fmt.Sprintf(`{"object":"page","entry":[{"id":"PAGE","time":1,"messaging":[{"sender":{"id":"PSID77"},"recipient":{"id":"PAGE"},"timestamp":1,"message":{"mid":"mid.dash.%d","text":"where is my refund"}}]}]}`, round)
	h := http.Header{"Content-Type": {"application/json"}, "X-Hub-Signature-256": {platform.SignMeta(e2eAppSecret, []byte(body))}}
	if code, resp := post(t, base+"/fb/bluebird", h, body); code != http.StatusOK {
		t.Fatalf("messenger: %d %s", code, resp)
	}
	graph.WaitAccepted(t, round+1, 30*time.Second)
}
