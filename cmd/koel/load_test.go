package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/sim/loadgen"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestLoadTextScenarios runs koel load's bot and webhook scenarios against
// an in-process koel serve: every turn answered (the webhook replies
// received by the generator, signatures checked), no errors, latencies
// for every turn.
func TestLoadTextScenarios(t *testing.T) {
	texts, err := loadgen.Texts()
	if err != nil {
		t.Fatal(err)
	}
	if len(texts) < 30 {
		t.Fatalf("%d corpus texts, want a varied set of at least 30", len(texts))
	}
	hook := freeAddr(t)
	srv := startServer(t, testConfig(t, t.TempDir(), "", "http://"+hook+"/hook"))
	ctx := context.Background()
	for _, tc := range []struct {
		scenario string
		kinds    []string
	}{
		{loadgen.ScenarioBot, []string{"message"}},
		{loadgen.ScenarioWebhook, []string{"message", "delivered"}},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			cfg := loadgen.Config{Scenario: tc.scenario, Target: srv.URL(), Token: testToken, Sessions: 6, Concurrency: 3, Turns: 3,
				Texts: texts, Duration: time.Minute, Timeout: 10 * time.Second}
			if tc.scenario == loadgen.ScenarioWebhook {
				cfg.WebhookListen, cfg.WebhookSecret = hook, testSecret
			}
			rep, err := loadgen.Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Errors != 0 || rep.Sessions != 6 || rep.SessionsOK != 6 || rep.Turns != 18 || rep.Answered != 18 {
				t.Fatalf("report %+v", rep)
			}
			for _, k := range tc.kinds {
				if l := rep.Latency[k]; l.Count != 18 || l.P50 <= 0 || l.P99 < l.P50 || l.Max < l.P99 {
					t.Errorf("%s latency %+v", k, l)
				}
			}
			if rep.TurnsPS <= 0 {
				t.Errorf("turns/s %v", rep.TurnsPS)
			}
		})
	}
	t.Run("wrong token", func(t *testing.T) {
		rep, err := loadgen.Run(ctx, loadgen.Config{Scenario: loadgen.ScenarioBot, Target: srv.URL(), Token: "nope", Sessions: 2, Texts: texts})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Errors != 2 || rep.SessionsOK != 0 || len(rep.ErrorSamples) != 1 || !strings.Contains(rep.ErrorSamples[0], "401") {
			t.Fatalf("report %+v", rep)
		}
	})
}

// TestLoadKooKooScenario plays KooKoo calls with rendered corpus
// recordings against koel serve with pocketsphinx and the demo bot.
func TestLoadKooKooScenario(t *testing.T) {
	ctx := context.Background()
	utts, err := loadgen.RenderUtterances(ctx, 6, t.TempDir())
	if err != nil {
		t.Skipf("espeak-ng unavailable: %v (make test installs it)", err)
	}
	srv := startServer(t, voiceConfig(t, ""))
	if srv.voice.sttState != "ok" {
		t.Skipf("pocketsphinx unavailable (%s); make test installs it", srv.voice.sttState)
	}
	rep, err := loadgen.Run(ctx, loadgen.Config{Scenario: loadgen.ScenarioKooKoo, Target: srv.URL(), Sessions: 4, Concurrency: 2, Turns: 2,
		Utterances: utts, Duration: 2 * time.Minute, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || rep.SessionsOK != 4 || rep.Turns != 8 || rep.Answered != 8 {
		t.Fatalf("report %+v", rep)
	}
	for kind, n := range map[string]int{"newcall": 4, "record": 8, "hangup": 4} {
		if l := rep.Latency[kind]; l.Count != n {
			t.Errorf("%s latency %+v, want %d", kind, l, n)
		}
	}
	// The CLI prints the same report as JSON.
	var out, errOut bytes.Buffer
	code := run([]string{"load", "kookoo", "-target", srv.URL(), "-sessions", "1", "-turns", "1", "-pace=false", "-utterances", "3",
		"-cache", t.TempDir(), "-json", "-quiet"}, &out, &errOut, env(nil))
	if code != 0 {
		t.Fatalf("koel load: exit %d: %s", code, errOut.String())
	}
	var r loadgen.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil || r.SessionsOK != 1 || r.Latency["record"].Count != 1 {
		t.Fatalf("json report %s (%v)", out.String(), err)
	}
}

func TestLoadRefusesRemoteTargetsAndBounds(t *testing.T) {
	ctx := context.Background()
	_, err := loadgen.Run(ctx, loadgen.Config{Scenario: loadgen.ScenarioBot, Target: "http://192.0.2.10:8080", Token: "t", Texts: []string{"hi"}})
	if !errors.Is(err, loadgen.ErrNotLoopback) {
		t.Fatalf("remote target: %v, want ErrNotLoopback", err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"load", "bot", "-target", "http://192.0.2.10:8080", "-token", "t"}, &out, &errOut, env(nil)); code != 2 {
		t.Fatalf("CLI with a remote target: exit %d, want 2: %s", code, errOut.String())
	}
	for _, cfg := range []loadgen.Config{
		{Scenario: loadgen.ScenarioBot, Target: "http://127.0.0.1:1", Token: "t", Texts: []string{"hi"}, Sessions: -1},
		{Scenario: loadgen.ScenarioBot, Target: "http://127.0.0.1:1", Token: "t", Texts: []string{"hi"}, Concurrency: loadgen.MaxConcurrency + 1},
		{Scenario: loadgen.ScenarioBot, Target: "http://127.0.0.1:1", Token: "t", Texts: []string{"hi"}, Duration: 3 * time.Hour},
		{Scenario: "sip", Target: "http://127.0.0.1:1"},
		{Scenario: loadgen.ScenarioBot, Target: "http://127.0.0.1:1", Texts: []string{"hi"}},
		{Scenario: loadgen.ScenarioKooKoo, Target: "http://127.0.0.1:1"},
	} {
		if _, err := loadgen.Run(ctx, cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

// TestLoadStopsAtItsDuration: a run of many paced sessions is cut off at
// its time bound.
func TestLoadStopsAtItsDuration(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir(), "", ""))
	texts, err := loadgen.Texts()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := loadgen.Run(context.Background(), loadgen.Config{Scenario: loadgen.ScenarioBot, Target: srv.URL(), Token: testToken,
		Sessions: loadgen.MaxSessions, Concurrency: 2, Turns: 1, Texts: texts, Duration: 300 * time.Millisecond, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sessions == 0 || rep.Sessions >= loadgen.MaxSessions || rep.Errors != 0 {
		t.Fatalf("report %+v: want some sessions, cut off by the duration", rep)
	}
}

// TestLoadSoftphoneScenario places softphone calls over WebRTC on loopback
// with rendered corpus speech: every clip answered, the reply latency
// (end of speech → first reply audio) for each, late frames read from the
// server's metrics.
func TestLoadSoftphoneScenario(t *testing.T) {
	ctx := context.Background()
	utts, err := loadgen.RenderUtterances(ctx, 4, t.TempDir())
	if err != nil {
		t.Skipf("espeak-ng unavailable: %v (make test installs it)", err)
	}
	cfg := voiceConfig(t, "")
	cfg.Sim.Disabled = false
	srv := startServer(t, cfg)
	if srv.voice.sttState != "ok" {
		t.Skipf("pocketsphinx unavailable (%s); make test installs it", srv.voice.sttState)
	}
	rep, err := loadgen.Run(ctx, loadgen.Config{Scenario: loadgen.ScenarioSoftphone, Target: srv.URL(), Sessions: 2, Concurrency: 2, Turns: 2,
		Utterances: utts, Duration: 2 * time.Minute, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// koel answers every recorded turn with audio, whatever the recogniser
	// heard: an answer, a confirmation, a menu, "didn't catch that" or
	// "did not hear you". A reply spoken as a menu's prompt counts too.
	if rep.Errors != 0 || rep.SessionsOK != 2 || rep.Turns < 4 || rep.Answered != rep.Turns || rep.LateFrames < 0 {
		t.Fatalf("report %+v", rep)
	}
	if l := rep.Latency["reply"]; l.Count != rep.Answered || l.Max <= 0 {
		t.Fatalf("reply latency %+v, want one per answered turn (%d)", l, rep.Answered)
	}
}
