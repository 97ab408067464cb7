package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/channels/webhook"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// TestUncleanPathsGetJSON404: "//", "/./" and "/../" in a path answer the
// JSON 404 of every unknown endpoint, not gorilla/mux's 301 to a cleaned
// path (issue 9 defect 8).
func TestUncleanPathsGetJSON404(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir(), "", ""))
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"//healthz", "/api//bots/1/converse", "//v1.0/log_message_from_user/", "/api/bots/1/../1/converse", "/./healthz"} {
		req, err := http.NewRequest(http.MethodPost, srv.URL()+path, strings.NewReader(`{"user_id":"u","text":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = path // keep the path exactly as written
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			ErrorMessage string `json:"error_message"`
		}
		if resp.StatusCode != http.StatusNotFound || json.Unmarshal(body, &e) != nil || e.ErrorMessage == "" {
			t.Errorf("%s: %d %q (Location %q), want a JSON 404", path, resp.StatusCode, body, resp.Header.Get("Location"))
		}
	}
}

// TestURLQuerySecretsNeverLoggedOrStored: a webhook URL carrying its
// credential in the query (?api_key=…), a receiver that fails and echoes
// its URL back, and a database URL with ?password=: the values reach
// neither the log nor the outbox item's LastError (issue 9 defect 9).
func TestURLQuerySecretsNeverLoggedOrStored(t *testing.T) {
	const hookKey = "HOOKQUERYSECRET42"
	const dbPassword = "DBQUERYSECRET42"
	echoed := make(chan struct{}, 16)
	hook := newEchoingFailure(t, echoed)
	var logs syncBuffer
	cfg := testConfig(t, t.TempDir(), "", hook+"/hook?api_key="+hookKey+"&tenant=acme")
	if os.Getenv(storetest.EnvPostgresURL) != "" {
		cfg.DatabaseURL = storetest.PostgresURL(t) + "&password=" + dbPassword // trust auth: accepted and unused
	}
	srv, err := NewServer(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())

	if status, body := postJSON(t, srv.URL()+webhook.PathLogMessage, webhookHeaders, logMessage("alice", "where is my order")); status != http.StatusOK {
		t.Fatalf("log message: %d %s", status, body)
	}
	waitFor(t, echoed, "a failed delivery")
	var item ivr.OutboxItem
	deadline := time.Now().Add(10 * time.Second)
	for item.LastError == "" {
		items, err := srv.store.ListOutbox(context.Background(), ivr.OutboxPending, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) == 1 {
			item = items[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempt recorded; items %+v", items)
		}
		if item.LastError == "" {
			waitFor(t, echoed, "another failed delivery")
		}
	}
	out := logs.String()
	if !strings.Contains(out, "outbox delivery failed") || !strings.Contains(out, "store ready") {
		t.Fatalf("the failure or the store was not logged at all:\n%s", out)
	}
	for _, secret := range []string{hookKey, dbPassword} {
		if strings.Contains(out, secret) {
			t.Errorf("the log carries %s:\n%s", secret, out)
		}
		if strings.Contains(item.LastError, secret) {
			t.Errorf("LastError carries %s: %s", secret, item.LastError)
		}
	}
	if !strings.Contains(item.LastError, "503") {
		t.Errorf("LastError %q does not say what failed", item.LastError)
	}
}

// newEchoingFailure is a receiver that answers every delivery 503 with its
// full request URI in the body and a header, as careless servers do.
func newEchoingFailure(t *testing.T, attempted chan<- struct{}) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-URI", r.RequestURI)
		http.Error(w, "unavailable: "+r.RequestURI, http.StatusServiceUnavailable)
		select {
		case attempted <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

// TestConnectionsSwitchOffAndOn: an inactive connection answers 404 and
// stores nothing, on the webhook API and on KooKoo; switched on again
// (as the seed's Platform Settings toggle does) it answers. The
// business is declared in YAML with its webhook credential from the
// environment.
func TestConnectionsSwitchOffAndOn(t *testing.T) {
	dir := t.TempDir()
	yamlPath := dir + "/koel.yaml"
	yamlText := `businesses:
  - id: 7
    name: Acme
    token_env: ACME_TOKEN
    client_id: acme
    connections:
      - channel: kookoo
        identifier: acme
        disabled: true
        settings:
          welcome_message: Welcome to Acme.
      - channel: webhook
        identifier: acme
        disabled: true
        settings:
          auto_register: true
        secrets_env:
          secret_key: ACME_WEBHOOK_SECRET
`
	if err := os.WriteFile(yamlPath, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := env(map[string]string{"ACME_TOKEN": "acme-token", "ACME_WEBHOOK_SECRET": "acme-hook-secret", "KOEL_STT_ENGINE": "none", "KOEL_SIM": "0"})
	cfg, err := parseServeConfig([]string{"--config", yamlPath, "--addr", "127.0.0.1:0", "--data-dir", dir + "/data"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer(context.Background(), cfg, testLogger(t), getenv)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	ctx := context.Background()
	hdr := map[string]string{"Authorization": "Bearer acme-token", "client-id": "acme"}
	body := `{"user":{"auth_id":"zoe"},"message_body":"hello","business_id":7}`
	newCall := func(sid string) (int, string) {
		resp, err := http.Get(srv.URL() + "/kookoo/acme?event=NewCall&sid=" + sid + "&cid=09990001111")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}

	wh, err := srv.store.GetConnection(ctx, ivr.ChannelWebhook, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if wh.Settings.SecretKey.Reveal() != "acme-hook-secret" {
		t.Fatal("the webhook secret from the environment was not stored")
	}
	if status, b := postJSON(t, srv.URL()+webhook.PathLogMessage, hdr, body); status != http.StatusNotFound || !strings.Contains(string(b), `"error_message"`) {
		t.Fatalf("inactive webhook connection: %d %s", status, b)
	}
	if status, b := newCall("off-1"); status != http.StatusNotFound {
		t.Fatalf("inactive KooKoo connection: %d %s", status, b)
	}
	if _, err := srv.store.GetUser(ctx, 7, ivr.ChannelWebhook, "zoe"); !errors.Is(err, ivr.ErrNotFound) {
		t.Fatalf("the inactive webhook connection stored a user: %v", err)
	}
	if _, err := srv.store.GetCall(ctx, "off-1"); !errors.Is(err, ivr.ErrNotFound) {
		t.Fatalf("the inactive KooKoo connection stored a call: %v", err)
	}
	if n, err := srv.store.CountActiveCalls(ctx); err != nil || n != 0 {
		t.Fatalf("active calls = %d, %v", n, err)
	}

	// Switch both on: they answer at once, no restart.
	for _, ch := range []ivr.Channel{ivr.ChannelWebhook, ivr.ChannelKooKoo} {
		c, err := srv.store.GetConnection(ctx, ch, "acme")
		if err != nil {
			t.Fatal(err)
		}
		c.Active = true
		if err := srv.store.UpdateConnection(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if status, b := postJSON(t, srv.URL()+webhook.PathLogMessage, hdr, body); status != http.StatusOK {
		t.Fatalf("active webhook connection: %d %s", status, b)
	}
	if status, b := newCall("on-1"); status != http.StatusOK || !strings.Contains(b, "Welcome to Acme.") {
		t.Fatalf("active KooKoo connection: %d %s", status, b)
	}
}

// TestProvisionedCredentialsNeverLogged: typed credentials of several
// channels, provisioned from environment variables, reach the store but
// never the debug log, not even when requests fail their signature and
// token checks against them.
func TestProvisionedCredentialsNeverLogged(t *testing.T) {
	secrets := map[string]string{
		"SHOP_TOKEN":          "shop-api-token-1a2b",
		"SHOP_FB_PAGE_TOKEN":  "EAAFBPAGETOKEN77",
		"SHOP_FB_APP_SECRET":  "fbappsecret77",
		"SHOP_FB_VERIFY":      "fbverify77",
		"SHOP_TWILIO_TOKEN":   "twilioauth77",
		"SHOP_WA_TOKEN":       "metawatoken77",
		"SHOP_WA_APP_SECRET":  "metawaappsecret77",
		"SHOP_INFOBIP_KEY":    "infobipkey77",
		"SHOP_WEBHOOK_SECRET": "webhooksecret77",
	}
	dir := t.TempDir()
	yamlPath := dir + "/koel.yaml"
	yamlText := `businesses:
  - id: 12
    name: Shop
    token_env: SHOP_TOKEN
    client_id: shop
    connections:
      - channel: fb
        identifier: shop
        settings: {messenger: {page_id: "1001"}}
        secrets_env:
          messenger.page_access_token: SHOP_FB_PAGE_TOKEN
          messenger.app_secret: SHOP_FB_APP_SECRET
          messenger.verify_token: SHOP_FB_VERIFY
      - channel: whatsapp
        identifier: shop
        settings: {twilio: {account_sid: AC0001, from: "whatsapp:+14155238886"}}
        secrets_env: {twilio.auth_token: SHOP_TWILIO_TOKEN}
      - channel: wa
        identifier: shop
        settings: {meta_whatsapp: {phone_number_id: "106540352242922"}}
        secrets_env: {meta_whatsapp.access_token: SHOP_WA_TOKEN, meta_whatsapp.app_secret: SHOP_WA_APP_SECRET}
      - channel: infobip
        identifier: shop
        settings: {infobip: {base_url: "https://abcd.api.infobip.com"}}
        secrets_env: {infobip.api_key: SHOP_INFOBIP_KEY}
      - channel: webhook
        identifier: shop
        settings: {auto_register: true}
        secrets_env: {secret_key: SHOP_WEBHOOK_SECRET}
`
	if err := os.WriteFile(yamlPath, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"KOEL_STT_ENGINE": "none", "KOEL_SIM": "0", "KOEL_LOG_LEVEL": "debug"}
	for k, v := range secrets {
		vars[k] = v
	}
	getenv := env(vars)
	cfg, err := parseServeConfig([]string{"--config", yamlPath, "--addr", "127.0.0.1:0", "--data-dir", dir + "/data"}, getenv)
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

	fb, err := srv.store.GetConnection(context.Background(), ivr.ChannelFacebook, "shop")
	if err != nil || fb.Settings.Messenger.AppSecret.Reveal() != secrets["SHOP_FB_APP_SECRET"] {
		t.Fatalf("messenger credentials not stored: %v", err)
	}
	srv.log.Info("connection loaded", "conn", fb, "settings", fb.Settings)
	do := func(method, path, body string, hdr map[string]string) int {
		req, err := http.NewRequest(method, srv.URL()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, r := range []struct {
		method, path, body string
		hdr                map[string]string
	}{
		{"GET", "/fb/shop?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=42", "", nil},
		{"POST", "/fb/shop", `{"object":"page","entry":[]}`, map[string]string{"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=00"}},
		{"POST", "/wa/shop", `{"object":"whatsapp_business_account","entry":[]}`, map[string]string{"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=00"}},
		{"POST", "/whatsapp/shop", "From=whatsapp%3A%2B15550001111&Body=hi&MessageSid=SM1", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "bad"}},
		{"POST", "/v1.0/log_message_from_user/", `{"user":{"auth_id":"a"},"message_body":"hi","business_id":12}`, map[string]string{"Authorization": "Bearer wrong", "client-id": "shop"}},
	} {
		if code := do(r.method, r.path, r.body, r.hdr); code < 400 || code > 499 {
			t.Errorf("%s %s with a wrong credential: %d, want a 4xx", r.method, r.path, code)
		}
	}
	out := logs.String()
	if !strings.Contains(out, "business provisioned") || !strings.Contains(out, "connection loaded") {
		t.Fatalf("nothing logged:\n%s", out)
	}
	for name, v := range secrets {
		if strings.Contains(out, v) {
			t.Errorf("the log carries %s", name)
		}
	}
}

// TestConnectionsAdminAPI: the admin API lists and reads connections
// without their credentials (not even masked), and switching a connection
// off makes its channel answer 404 at once; on again, it answers.
func TestConnectionsAdminAPI(t *testing.T) {
	const adminToken = "admin-token-for-tests"
	cfg := testConfig(t, t.TempDir(), "", "http://127.0.0.1:9/hook?api_key=HOOKKEY55")
	cfg.AdminToken = adminToken
	srv := startServer(t, cfg)
	ctx := context.Background()
	wh, err := srv.store.GetConnection(ctx, ivr.ChannelWebhook, "demo")
	if err != nil {
		t.Fatal(err)
	}
	wh.Settings.AccessToken = "WEBHOOKACCESS55"
	wh.Settings.Messenger.AppSecret = "FBSECRET55"
	if err := srv.store.UpdateConnection(ctx, wh); err != nil {
		t.Fatal(err)
	}
	call := func(method, path, body, token string) (int, string) {
		req, err := http.NewRequest(method, srv.URL()+"/admin/v1"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	code, list := call("GET", "/connections?business_id=1", "", adminToken)
	if code != http.StatusOK || !strings.Contains(list, `"identifier":"demo"`) {
		t.Fatalf("list: %d %s", code, list)
	}
	code, one := call("GET", "/connections/"+strconv.FormatInt(wh.ID, 10), "", adminToken)
	if code != http.StatusOK {
		t.Fatalf("get: %d %s", code, one)
	}
	for _, body := range []string{list, one} {
		if !strings.Contains(body, `"webhook_url":"http://127.0.0.1:9/hook?api_key=***"`) {
			t.Errorf("the webhook URL's query is not masked: %s", body)
		}
		for _, secret := range []string{testSecret, "WEBHOOKACCESS55", "FBSECRET55", "HOOKKEY55", `"***"`} {
			if strings.Contains(body, secret) {
				t.Errorf("the API returns %q: %s", secret, body)
			}
		}
	}
	var view struct {
		Settings struct {
			SecretsSet []string `json:"secrets_set"`
			WebhookURL string   `json:"webhook_url"`
		} `json:"settings"`
	}
	if err := json.Unmarshal([]byte(one), &view); err != nil {
		t.Fatal(err)
	}
	if strings.Join(view.Settings.SecretsSet, ",") != "secret_key,access_token,messenger.app_secret" {
		t.Errorf("secrets_set = %v", view.Settings.SecretsSet)
	}

	for _, c := range []struct {
		method, path, body, token string
		want                      int
	}{
		{"GET", "/connections?business_id=1", "", "", http.StatusUnauthorized},
		{"GET", "/connections?business_id=1", "", "wrong", http.StatusUnauthorized},
		{"GET", "/connections?business_id=x", "", adminToken, http.StatusBadRequest},
		{"GET", "/connections/999999", "", adminToken, http.StatusNotFound},
		{"PATCH", "/connections/" + strconv.FormatInt(wh.ID, 10), `{}`, adminToken, http.StatusBadRequest},
		{"PATCH", "/connections/" + strconv.FormatInt(wh.ID, 10), `{"active":"no"}`, adminToken, http.StatusBadRequest},
	} {
		if code, body := call(c.method, c.path, c.body, c.token); code != c.want {
			t.Errorf("%s %s %s: %d %s, want %d", c.method, c.path, c.body, code, body, c.want)
		}
	}

	path := "/connections/" + strconv.FormatInt(wh.ID, 10)
	if code, body := call("PATCH", path, `{"active":false}`, adminToken); code != http.StatusOK || !strings.Contains(body, `"active":false`) {
		t.Fatalf("switch off: %d %s", code, body)
	}
	if status, body := postJSON(t, srv.URL()+webhook.PathLogMessage, webhookHeaders, logMessage("omar", "hello")); status != http.StatusNotFound {
		t.Fatalf("switched-off connection: %d %s", status, body)
	}
	if _, err := srv.store.GetUser(ctx, 1, ivr.ChannelWebhook, "omar"); !errors.Is(err, ivr.ErrNotFound) {
		t.Fatalf("the switched-off connection stored a user: %v", err)
	}
	if code, body := call("PATCH", path, `{"active":true}`, adminToken); code != http.StatusOK {
		t.Fatalf("switch on: %d %s", code, body)
	}
	if status, body := postJSON(t, srv.URL()+webhook.PathLogMessage, webhookHeaders, logMessage("omar", "hello")); status != http.StatusOK {
		t.Fatalf("switched-on connection: %d %s", status, body)
	}
	if after, _ := srv.store.GetConnection(ctx, ivr.ChannelWebhook, "demo"); after.Settings.Messenger.AppSecret.Reveal() != "FBSECRET55" {
		t.Fatal("switching lost the credentials")
	}
}
