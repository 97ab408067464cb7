package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/koelvoice/koel/ivr/bot/faq"
)

// lockedBuffer collects a server's log lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAdminAPIProvisionsAServingBusiness: on a real koel, a business, a
// Messenger connection and an API step made through the admin API serve
// at once; the connection switched off answers 404 on its channel
// endpoint and on again serves; the API step answers through the bot
// API. No credential appears in a response or in the debug log.
func TestAdminAPIProvisionsAServingBusiness(t *testing.T) {
	const adminToken = "admin-e2e-token-0123456789"
	orders := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer orders-e2e-secret" || r.URL.Path != "/orders/1042" {
			http.Error(w, `{"error":"no"}`, http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte(`{"status":"shipped"}`))
	}))
	t.Cleanup(orders.Close)

	logs := &lockedBuffer{}
	cfg := testConfig(t, t.TempDir(), "", "")
	cfg.AdminToken = adminToken
	getenv := env(map[string]string{"SHOP_ORDERS_TOKEN": "orders-e2e-secret"})
	srv, err := newServer(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), getenv)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })

	var responses strings.Builder
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+adminToken)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		responses.Write(b)
		return resp.StatusCode, string(b)
	}
	must := func(want int, method, path, body string) string {
		t.Helper()
		status, resp := call(method, path, body)
		if status != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, status, resp, want)
		}
		return resp
	}

	must(201, "POST", "/admin/v1/businesses", `{"id":30,"name":"Shop","client_id":"shop","token":"shop-e2e-token"}`)
	var conn struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal([]byte(must(201, "POST", "/admin/v1/connections",
		`{"business_id":30,"channel":"fb","identifier":"shop30","settings":{"messenger":{"page_id":"3030","app_secret":"fb-e2e-app-secret","verify_token":"fb-e2e-verify","page_access_token":"fb-e2e-page-token"}}}`)), &conn); err != nil {
		t.Fatal(err)
	}
	verify := func() (int, string) {
		resp, err := http.Get(srv.URL() + "/fb/shop30?hub.mode=subscribe&hub.verify_token=fb-e2e-verify&hub.challenge=4242")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := verify(); status != 200 || body != "4242" {
		t.Fatalf("active connection: verify = %d %q", status, body)
	}
	must(200, "DELETE", fmt.Sprintf("/admin/v1/connections/%d", conn.ID), "")
	if status, body := verify(); status != http.StatusNotFound {
		t.Fatalf("inactive connection: verify = %d %q, want 404", status, body)
	}
	must(200, "PATCH", fmt.Sprintf("/admin/v1/connections/%d", conn.ID), `{"active":true}`)
	if status, body := verify(); status != 200 || body != "4242" {
		t.Fatalf("switched on again: verify = %d %q", status, body)
	}

	// An API step put through the admin API is in force for the bot.
	csv := "node_name,user_says,bot_says\norder_status,where is my order|track my order,\"Sure, what is your order number?\"\n"
	if _, err := faq.Import(context.Background(), srv.store, 30, strings.NewReader(csv), faq.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	must(201, "PUT", "/admin/v1/businesses/30/api_steps/order_status",
		`{"method":"GET","url":"`+orders.URL+`/orders/{{.value}}","headers":{"Authorization":"Bearer ${SHOP_ORDERS_TOKEN}"},"reply":"Your order {{.value}} is {{.status}}."}`)
	for _, turn := range []struct{ say, want string }{
		{"where is my order", "Sure, what is your order number?"},
		{"1042", "Your order 1042 is shipped."},
	} {
		status, body := postJSON(t, srv.URL()+"/api/bots/30/converse", map[string]string{"Authorization": "Bearer shop-e2e-token"},
			fmt.Sprintf(`{"user_id":"buyer","text":%q}`, turn.say))
		if status != 200 || !strings.Contains(string(body), turn.want) {
			t.Fatalf("%q: %d %s, want %q", turn.say, status, body, turn.want)
		}
	}

	all := logs.String()
	if !strings.Contains(all, `"msg":"connection saved"`) {
		t.Fatal("the admin writes were not logged")
	}
	for _, secret := range []string{"shop-e2e-token", "fb-e2e-app-secret", "fb-e2e-verify", "fb-e2e-page-token", "orders-e2e-secret", adminToken} {
		if strings.Contains(responses.String(), secret) {
			t.Errorf("%q appeared in an admin API response", secret)
		}
		if strings.Contains(all, secret) {
			t.Errorf("%q appeared in the log", secret)
		}
	}
}
