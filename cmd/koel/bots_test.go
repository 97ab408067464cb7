package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
)

// TestBusinessesWithBotsOfDifferentKinds: on one server, a business
// declared with the FAQ bot and one declared with a remote (Rasa REST) bot
// each answer with their own bot, next to the demo business on the
// server's default; the remote bot sees only its business's messages, and
// its URL's token is never logged (issue 10 seam 4).
func TestBusinessesWithBotsOfDifferentKinds(t *testing.T) {
	const rasaToken = "RASATOKEN9876"
	var mu sync.Mutex
	var seen []string
	rasa := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("token") != rasaToken {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		var req struct {
			Sender  string `json:"sender"`
			Message string `json:"message"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		seen = append(seen, req.Message)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode([]map[string]string{{"recipient_id": req.Sender, "text": "Rasa here: " + req.Message}})
	}))
	defer rasa.Close()

	dir := t.TempDir()
	faqPath := dir + "/acme.csv"
	if err := os.WriteFile(faqPath, []byte("node_name,user_says,bot_says\nhours,when are you open|opening hours,Acme is open around the clock.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yamlPath := dir + "/koel.yaml"
	yamlText := `businesses:
  - id: 7
    name: Acme
    token: acme-token
    client_id: acme
    faq_file: ` + faqPath + `
    bot:
      kind: faq
    connections:
      - channel: webhook
        identifier: acme
        settings:
          auto_register: true
  - id: 8
    name: Globex
    token: globex-token
    client_id: globex
    bot:
      kind: remote
      remote_url_env: GLOBEX_RASA_URL
    connections:
      - channel: webhook
        identifier: globex
        settings:
          auto_register: true
`
	if err := os.WriteFile(yamlPath, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := env(map[string]string{
		"GLOBEX_RASA_URL": rasa.URL + "/webhooks/rest/webhook?token=" + rasaToken,
		"KOEL_DEMO_TOKEN": testToken, "KOEL_STT_ENGINE": "none", "KOEL_SIM": "0",
	})
	cfg, err := parseServeConfig([]string{"--config", yamlPath, "--addr", "127.0.0.1:0", "--data-dir", dir + "/data", "--log-level", "debug"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	srv, err := newServer(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), getenv)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())

	converse := func(biz, token, text string) string {
		t.Helper()
		status, body := postJSON(t, srv.URL()+"/api/bots/"+biz+"/converse", map[string]string{"Authorization": "Bearer " + token}, `{"user_id":"u1","text":"`+text+`"}`)
		if status != http.StatusOK {
			t.Fatalf("business %s: %d %s", biz, status, body)
		}
		return string(body)
	}
	if got := converse("7", "acme-token", "when are you open"); !strings.Contains(got, "Acme is open around the clock.") {
		t.Fatalf("FAQ business answered %s", got)
	}
	if got := converse("8", "globex-token", "when are you open"); !strings.Contains(got, "Rasa here: when are you open") {
		t.Fatalf("remote business answered %s", got)
	}
	if got := converse("1", testToken, "how do I return a product"); strings.Contains(got, "Rasa here") || !strings.Contains(got, `"node":"`) {
		t.Fatalf("demo business (server default faq) answered %s", got)
	}
	// The webhook API of the remote business goes through the same bot.
	status, body := postJSON(t, srv.URL()+"/v1.0/log_message_from_user/", map[string]string{"Authorization": "Bearer globex-token", "client-id": "globex"},
		`{"user":{"auth_id":"w1"},"message_body":"track my parcel","message_type":0,"business_id":8}`)
	if status != http.StatusOK {
		t.Fatalf("webhook API: %d %s", status, body)
	}
	mu.Lock()
	got := append([]string(nil), seen...)
	mu.Unlock()
	if len(got) != 2 || got[0] != "when are you open" || got[1] != "track my parcel" {
		t.Fatalf("the remote bot saw %q: want only the remote business's two messages", got)
	}
	if strings.Contains(logs.String(), rasaToken) {
		t.Fatalf("the remote bot URL's token was logged:\n%s", logs.String())
	}
	b, err := srv.store.GetBusiness(context.Background(), 8)
	if err != nil || b.Bot != "remote" {
		t.Fatalf("business 8 stored bot %q: %v", b.Bot, err)
	}
}
