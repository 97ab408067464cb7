package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/kookoo"
)

// TestLiveEndpointShowsCallsAndQueues plays two KooKoo calls against a real
// koel serve and reads GET /admin/v1/live the way koel top does: both calls
// with masked callers, the answered one with its transcript, confidence and
// latency, and the outbox's dead letter; a hung-up call leaves the view.
func TestLiveEndpointShowsCallsAndQueues(t *testing.T) {
	recs := newRecordings(t)
	cfg := voiceConfig(t, "")
	cfg.AdminToken = "the-admin-token"
	srv := startServer(t, cfg)
	if srv.voice.sttState != "ok" {
		t.Skipf("pocketsphinx unavailable (%s); make test installs it", srv.voice.sttState)
	}
	base := srv.URL()
	for _, st := range []struct{ sid, event string }{{"6101", "NewCall"}, {"6102", "NewCall"}} {
		if code, body := kookooGet(t, base, ev(st.sid, st.event, "cid", "0987654"+st.sid, "called_number", "918065740671")); code != http.StatusOK {
			t.Fatalf("%s: %d %s", st.sid, code, body)
		}
	}
	if code, body := kookooGet(t, base, ev("6101", "Record", "data", recs.say(t, "q", "how much is delivery"), "status", "silence")); code != http.StatusOK {
		t.Fatalf("record: %d %s", code, body)
	}
	dead := &ivr.OutboxItem{ConnectionID: 1, Recipient: "top-dead", IdempotencyKey: "top-dead", URL: "http://127.0.0.1:9/hook", Body: []byte(`{}`)}
	ctx := context.Background()
	if err := srv.store.AppendMessages(ctx, nil, []*ivr.OutboxItem{dead}); err != nil {
		t.Fatal(err)
	}
	if err := srv.store.MarkAttemptFailed(ctx, dead.ID, "receiver answered 502", time.Now(), true); err != nil {
		t.Fatal(err)
	}

	// The admin token guards the view.
	for _, tok := range []string{"", "wrong"} {
		c := &liveClient{base: base, token: tok, http: http.DefaultClient}
		if _, err := c.fetch(ctx); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("token %q: %v, want 401", tok, err)
		}
	}
	c := &liveClient{base: base, token: "the-admin-token", http: http.DefaultClient}
	snap, err := c.fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Calls) != 2 {
		t.Fatalf("calls %+v, want 2", snap.Calls)
	}
	answered := snap.Calls[0]
	if answered.SID != "6101" {
		answered = snap.Calls[1]
	}
	if answered.SID != "6101" || answered.Caller != kookoo.MaskNumber("09876546101") || strings.Contains(answered.Caller, "0987654610") ||
		answered.LastTranscript != "how much is delivery" || answered.Confidence <= 0 || answered.Confidence > 1 ||
		answered.LatencyMS <= 0 || answered.Turn < 1 || answered.State == "" || answered.Understanding == "" {
		t.Fatalf("answered call %+v", answered)
	}
	raw, _ := json.Marshal(snap)
	if strings.Contains(string(raw), "09876546101") || strings.Contains(string(raw), "09876546102") {
		t.Fatalf("the live view carries a caller number: %s", raw)
	}
	var deadQueue *LiveQueue
	for i, q := range snap.Queues {
		if q.Status == string(ivr.OutboxDead) {
			deadQueue = &snap.Queues[i]
		}
	}
	if deadQueue == nil || deadQueue.Items != 1 || deadQueue.Channel == "" {
		t.Fatalf("queues %+v, want one dead letter", snap.Queues)
	}

	// koel top's model renders the fetched snapshot.
	m := topModel{fetch: c.fetch, interval: time.Second}
	next, cmd := m.Update(m.load()())
	if cmd == nil {
		t.Fatal("no refresh scheduled after a snapshot")
	}
	view := next.View()
	for _, want := range []string{"2 calls in progress", "6101", answered.Caller, `"how much is delivery"`, "dead"} {
		if !strings.Contains(view, want) {
			t.Errorf("screen lacks %q:\n%s", want, view)
		}
	}

	if code, body := kookooGet(t, base, ev("6102", "Hangup", "process", "record", "total_call_duration", "5")); code != http.StatusOK {
		t.Fatalf("hangup: %d %s", code, body)
	}
	snap, err = c.fetch(ctx)
	if err != nil || len(snap.Calls) != 1 || snap.Calls[0].SID != "6101" {
		t.Fatalf("after a hang-up: %+v %v", snap.Calls, err)
	}
}

// TestTopScreenGolden renders koel top's screen for a fixed snapshot and
// compares it with testdata/top.golden (KOEL_UPDATE_GOLDEN=1 rewrites it).
func TestTopScreenGolden(t *testing.T) {
	at := time.Date(2026, 12, 2, 14, 30, 0, 0, time.UTC)
	snap := LiveSnapshot{At: at,
		Calls: []LiveCall{
			{SID: "7001", Caller: kookoo.MaskNumber("09876543210"), State: "recording", Turn: 3, StartedAt: at.Add(-95 * time.Second),
				LastTranscript: "how much is delivery", Confidence: 0.82, Understanding: "answered", LatencyMS: 840},
			{SID: "7002", Caller: kookoo.MaskNumber("+918065740671"), State: "dialing", Turn: 1, StartedAt: at.Add(-12 * time.Second)},
		},
		Queues: []LiveQueue{{Channel: "fb", Status: "pending", Items: 4, OldestAgeSeconds: 42}, {Channel: "webhook", Status: "dead", Items: 1, OldestAgeSeconds: 3600}},
	}
	m := topModel{fetch: func(context.Context) (LiveSnapshot, error) { return snap, nil }, interval: time.Second}
	next, _ := m.Update(m.load()())
	got := next.View()
	// A failed refresh keeps the last snapshot and shows the error.
	failing, _ := next.(topModel).Update(snapshotMsg{err: errors.New("live view: 503 Service Unavailable")})
	got += "---\n" + failing.View()
	golden := filepath.Join("testdata", "top.golden")
	if os.Getenv("KOEL_UPDATE_GOLDEN") != "" {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (KOEL_UPDATE_GOLDEN=1 writes it)", err)
	}
	if got != string(want) {
		t.Errorf("screen differs from %s:\n%s\nwant:\n%s", golden, got, want)
	}
	if strings.Contains(got, "09876543210") || strings.Contains(got, "8065740671") {
		t.Error("the screen shows a caller number unmasked")
	}
	// q quits.
	if _, cmd := next.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")}); cmd == nil || cmd() != tea.Quit() {
		t.Error("q does not quit")
	}
}

func TestTopCommandNeedsAToken(t *testing.T) {
	if err := topCommand(nil, nil, nil, env(nil)); !errors.Is(err, errUsage) {
		t.Fatalf("no token: %v, want usage", err)
	}
}
