package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/ivr/api"
)

const openAPIAdminToken = "test-admin-token-0123456789"

// loadOpenAPI parses and validates the embedded document.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPIDocument())
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// routeKeys lists "METHOD path" for every route the router serves, with
// mux templates spelled as OpenAPI paths: a PathPrefix route becomes
// "<prefix>{path}", and a route without a method matcher counts as GET
// and POST (the KooKoo-at-/fb/ route, whose handler takes GET, HEAD and POST).
func routeKeys(t *testing.T, r *mux.Router) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	err := r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		if route.GetHandler() == nil { // a subrouter's mount point
			return nil
		}
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		re, _ := route.GetPathRegexp()
		if !strings.HasSuffix(re, "$") {
			tpl += "{path}"
		}
		methods, err := route.GetMethods()
		if err != nil {
			methods = []string{http.MethodGet, http.MethodPost}
		}
		for _, m := range methods {
			keys[m+" "+tpl] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func docKeys(doc *openapi3.T) map[string]bool {
	keys := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			keys[m+" "+path] = true
		}
	}
	return keys
}

func diffKeys(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// TestOpenAPICoversEveryRoute walks the router koel serve builds (softphone
// and admin API on) and fails on any route+method the document lacks, and on
// any documented operation the router does not serve.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	cfg := testConfig(t, t.TempDir(), "", "")
	cfg.Sim.Disabled = false
	cfg.AdminToken = openAPIAdminToken
	srv, err := NewServer(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	served, documented := routeKeys(t, srv.router), docKeys(doc)
	if len(served) < 40 {
		t.Fatalf("only %d routes found walking the router: %v", len(served), served)
	}
	if missing := diffKeys(served, documented); len(missing) > 0 {
		t.Errorf("routes served but not in ivr/api/openapi.yaml:\n  %s", strings.Join(missing, "\n  "))
	}
	if extra := diffKeys(documented, served); len(extra) > 0 {
		t.Errorf("operations in ivr/api/openapi.yaml that the router does not serve:\n  %s", strings.Join(extra, "\n  "))
	}
}

// TestRouteKeysSeeAMissingRoute shows the coverage check can fail: a route
// added to a router shows up as undocumented.
func TestRouteKeysSeeAMissingRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	r := mux.NewRouter()
	r.HandleFunc("/healthz", func(http.ResponseWriter, *http.Request) {}).Methods(http.MethodGet)
	r.HandleFunc("/not/documented/{id}", func(http.ResponseWriter, *http.Request) {}).Methods(http.MethodDelete)
	r.PathPrefix("/sim/static/").HandlerFunc(func(http.ResponseWriter, *http.Request) {}).Methods(http.MethodGet)
	missing := diffKeys(routeKeys(t, r), docKeys(doc))
	if strings.Join(missing, ",") != "DELETE /not/documented/{id}" {
		t.Fatalf("missing = %v, want only DELETE /not/documented/{id}", missing)
	}
}

var registerDecodersOnce sync.Once

// registerTestDecoders lets the validator read the non-JSON bodies koel
// sends (KooKoo XML, the softphone page, OpenAPI YAML, metrics) as strings.
func registerTestDecoders() {
	registerDecodersOnce.Do(func() {
		asString := func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
			b, err := io.ReadAll(body)
			return string(b), err
		}
		for _, ct := range []string{"text/xml", "application/xml", "application/yaml", "text/html", "application/openmetrics-text", "audio/wav"} {
			openapi3filter.RegisterBodyDecoder(ct, asString)
		}
	})
}

// validateResponse checks status, content type and body of a real response
// against the documented operation for method+path.
func validateResponse(doc *openapi3.T, method, path string, req *http.Request, status int, header http.Header, body []byte) error {
	item := doc.Paths.Find(path)
	if item == nil {
		return &openapi3filter.RequestError{Reason: "path " + path + " not documented"}
	}
	op := item.GetOperation(method)
	if op == nil {
		return &openapi3filter.RequestError{Reason: method + " " + path + " not documented"}
	}
	in := &openapi3filter.RequestValidationInput{
		Request: req,
		Route:   &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op},
		Options: &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                in.Options,
	})
}

type openAPICase struct {
	name        string
	method      string
	doc         string // the documented path template
	url         string // the concrete path and query
	header      map[string]string
	contentType string
	body        string
	wantStatus  int
}

// TestOpenAPIResponsesMatchSchemas drives real requests through a real koel
// (SQLite store, demo business) and validates every response against the
// document's schemas, success and main error cases.
func TestOpenAPIResponsesMatchSchemas(t *testing.T) {
	registerTestDecoders()
	doc := loadOpenAPI(t)
	cfg := testConfig(t, t.TempDir(), "", "")
	cfg.AdminToken = openAPIAdminToken
	srv := startServer(t, cfg)
	base := srv.URL()

	bearer := map[string]string{"Authorization": "Bearer " + testToken}
	cred := map[string]string{"Authorization": "Bearer " + testToken, "client-id": "demo"}
	admin := map[string]string{"Authorization": "Bearer " + openAPIAdminToken}
	wrong := map[string]string{"Authorization": "Bearer wrong", "client-id": "demo"}
	const js = "application/json"
	cases := []openAPICase{
		{"healthz", "GET", "/healthz", "/healthz", nil, "", "", 200},
		{"readyz", "GET", "/readyz", "/readyz", nil, "", "", 200},
		{"metrics", "GET", "/metrics", "/metrics", nil, "", "", 200},
		{"openapi", "GET", "/openapi.yaml", "/openapi.yaml", nil, "", "", 200},
		{"converse", "POST", "/api/bots/{business_id}/converse", "/api/bots/1/converse", bearer, js, `{"user_id":"oa-1","text":"when are you open on sunday"}`, 200},
		{"converse no token", "POST", "/api/bots/{business_id}/converse", "/api/bots/1/converse", nil, js, `{"user_id":"oa-1","text":"hi"}`, 401},
		{"converse no text", "POST", "/api/bots/{business_id}/converse", "/api/bots/1/converse", bearer, js, `{"user_id":"oa-1"}`, 400},
		{"converse unknown business", "POST", "/api/bots/{business_id}/converse", "/api/bots/99/converse", bearer, js, `{"user_id":"oa-1","text":"hi"}`, 404},
		{"converse malformed", "POST", "/api/bots/{business_id}/converse", "/api/bots/1/converse", bearer, js, `{"user_id":`, 400},
		{"register user", "POST", "/v1.0/register_user/", "/v1.0/register_user/", cred, js, `{"user":{"auth_id":"oa-web"},"business_id":1}`, 200},
		{"log message", "POST", "/v1.0/log_message_from_user/", "/v1.0/log_message_from_user/", cred, js, `{"user":{"auth_id":"oa-web"},"message_body":"how much is delivery","message_type":0,"business_id":1}`, 200},
		{"log message bad token", "POST", "/v1.0/log_message_from_user/", "/v1.0/log_message_from_user/", wrong, js, `{"user":{"auth_id":"oa-web"},"message_body":"hi","message_type":0,"business_id":1}`, 401},
		{"send chat no client", "POST", "/integration/external/v1.0/send_chat_to_agent/", "/integration/external/v1.0/send_chat_to_agent/", bearer, js, `{"team_name":"support","user_name":"oa-web","business_id":1}`, 401},
		{"send chat no user", "POST", "/integration/external/v1.0/send_chat_to_agent/", "/integration/external/v1.0/send_chat_to_agent/", cred, js, `{"team_name":"support","business_id":1}`, 400},
		{"send chat unknown team", "POST", "/integration/external/v1.0/send_chat_to_agent/", "/integration/external/v1.0/send_chat_to_agent/", cred, js, `{"team_name":"nobody","user_name":"oa-web","business_id":1}`, 404},
		{"history v1", "GET", "/integration/external/v1.0/get_chat_history/", "/integration/external/v1.0/get_chat_history/?user_name=oa-1&business_id=1&conversation_no=1", cred, "", "", 200},
		{"history v1 text", "GET", "/integration/external/v1.0/get_chat_history/", "/integration/external/v1.0/get_chat_history/?user_name=oa-1&business_id=1&conversation_no=1&response_type=text", cred, "", "", 200},
		{"history v1 missing", "GET", "/integration/external/v1.0/get_chat_history/", "/integration/external/v1.0/get_chat_history/?business_id=1&conversation_no=1", cred, "", "", 400},
		{"history v1 bad token", "GET", "/integration/external/v1.0/get_chat_history/", "/integration/external/v1.0/get_chat_history/?user_name=oa-1&business_id=1&conversation_no=1", wrong, "", "", 401},
		{"history v2", "GET", "/integration/external/v2.0/get_chat_history/", "/integration/external/v2.0/get_chat_history/?user_name=oa-1&business_id=1&conversation_no=1", cred, "", "", 200},
		{"history v2 no group", "GET", "/integration/external/v2.0/get_chat_history/", "/integration/external/v2.0/get_chat_history/?limit=3", cred, "", "", 400},
		{"faq create no token", "POST", "/mogambo_api/nodes/faq/create/", "/mogambo_api/nodes/faq/create/", nil, "multipart/form-data; boundary=x", "--x--\r\n", 401},
		{"faq status unknown", "GET", "/mogambo_api/nodes/faq/create/status/{task_id}/", "/mogambo_api/nodes/faq/create/status/nope/", cred, "", "", 404},
		{"agent queue", "GET", "/agent/v1/{business_id}/queue", "/agent/v1/1/queue", admin, "", "", 200},
		{"agent queue no token", "GET", "/agent/v1/{business_id}/queue", "/agent/v1/1/queue", nil, "", "", 401},
		{"agent take unknown chat", "POST", "/agent/v1/{business_id}/chats/{chat_id}/take", "/agent/v1/1/chats/999/take", admin, js, `{"agent_name":"Asha"}`, 404},
		{"agent message no name", "POST", "/agent/v1/{business_id}/chats/{chat_id}/messages", "/agent/v1/1/chats/1/messages", admin, js, `{"text":"hi"}`, 400},
		{"admin connections", "GET", "/admin/v1/connections", "/admin/v1/connections?business_id=1", admin, "", "", 200},
		{"admin connections no token", "GET", "/admin/v1/connections", "/admin/v1/connections?business_id=1", nil, "", "", 401},
		{"admin connection", "GET", "/admin/v1/connections/{id}", "/admin/v1/connections/1", admin, "", "", 200},
		{"admin connection unknown", "GET", "/admin/v1/connections/{id}", "/admin/v1/connections/999", admin, "", "", 404},
		{"admin dead letters", "GET", "/admin/v1/outbox/dead", "/admin/v1/outbox/dead", admin, "", "", 200},
		{"admin redeliver empty", "POST", "/admin/v1/outbox/dead/redeliver", "/admin/v1/outbox/dead/redeliver", admin, js, `{}`, 400},
		{"admin purge", "POST", "/admin/v1/outbox/dead/purge", "/admin/v1/outbox/dead/purge", admin, js, `{"ids":[12345]}`, 200},
		{"admin live", "GET", "/admin/v1/live", "/admin/v1/live", admin, "", "", 200},
		{"admin businesses", "GET", "/admin/v1/businesses", "/admin/v1/businesses", admin, "", "", 200},
		{"admin create business", "POST", "/admin/v1/businesses", "/admin/v1/businesses", admin, js, `{"id":20,"name":"Acme","client_id":"acme","token":"oa-business-token"}`, 201},
		{"admin create business taken", "POST", "/admin/v1/businesses", "/admin/v1/businesses", admin, js, `{"id":20,"name":"Acme","client_id":"acme","token":"oa-business-token"}`, 409},
		{"admin create business no token", "POST", "/admin/v1/businesses", "/admin/v1/businesses", admin, js, `{"name":"Acme","client_id":"acme"}`, 400},
		{"admin business", "GET", "/admin/v1/businesses/{business_id}", "/admin/v1/businesses/20", admin, "", "", 200},
		{"admin business unknown", "GET", "/admin/v1/businesses/{business_id}", "/admin/v1/businesses/999", admin, "", "", 404},
		{"admin patch business", "PATCH", "/admin/v1/businesses/{business_id}", "/admin/v1/businesses/20", admin, js, `{"name":"Acme Ltd","bot":{"kind":"remote","remote_url":"https://rasa.acme.example/webhooks/rest/webhook"}}`, 200},
		{"admin patch business bad", "PATCH", "/admin/v1/businesses/{business_id}", "/admin/v1/businesses/20", admin, js, `{"bot":{"kind":"gpt"}}`, 400},
		{"admin create connection", "POST", "/admin/v1/connections", "/admin/v1/connections", admin, js, `{"business_id":20,"channel":"fb","identifier":"oa-acme","settings":{"messenger":{"page_id":"1001","app_secret":"oa-app-secret","verify_token":"oa-verify"}}}`, 201},
		{"admin create connection taken", "POST", "/admin/v1/connections", "/admin/v1/connections", admin, js, `{"business_id":20,"channel":"kookoo","identifier":"demo"}`, 409},
		{"admin create connection bad", "POST", "/admin/v1/connections", "/admin/v1/connections", admin, js, `{"business_id":20,"channel":"kookoo","identifier":"x","settings":{"silence_period":99}}`, 400},
		{"admin patch connection settings", "PATCH", "/admin/v1/connections/{id}", "/admin/v1/connections/4", admin, js, `{"settings":{"messenger":{"page_id":"2002"}}}`, 200},
		{"admin delete connection", "DELETE", "/admin/v1/connections/{id}", "/admin/v1/connections/4", admin, "", "", 200},
		{"admin delete connection unknown", "DELETE", "/admin/v1/connections/{id}", "/admin/v1/connections/999", admin, "", "", 404},
		{"admin create team", "POST", "/admin/v1/businesses/{business_id}/teams", "/admin/v1/businesses/20/teams", admin, js, `{"name":"support","number":"+919800000001"}`, 201},
		{"admin create team taken", "POST", "/admin/v1/businesses/{business_id}/teams", "/admin/v1/businesses/20/teams", admin, js, `{"name":"support"}`, 409},
		{"admin teams", "GET", "/admin/v1/businesses/{business_id}/teams", "/admin/v1/businesses/20/teams", admin, "", "", 200},
		{"admin team", "GET", "/admin/v1/businesses/{business_id}/teams/{team_id}", "/admin/v1/businesses/20/teams/1", admin, "", "", 200},
		{"admin patch team", "PATCH", "/admin/v1/businesses/{business_id}/teams/{team_id}", "/admin/v1/businesses/20/teams/1", admin, js, `{"number":"+919800000002"}`, 200},
		{"admin create agent", "POST", "/admin/v1/businesses/{business_id}/agents", "/admin/v1/businesses/20/agents", admin, js, `{"name":"Asha","team_id":1}`, 201},
		{"admin create agent bad team", "POST", "/admin/v1/businesses/{business_id}/agents", "/admin/v1/businesses/20/agents", admin, js, `{"name":"Ravi","team_id":99}`, 400},
		{"admin agents", "GET", "/admin/v1/businesses/{business_id}/agents", "/admin/v1/businesses/20/agents", admin, "", "", 200},
		{"admin agent", "GET", "/admin/v1/businesses/{business_id}/agents/{agent_id}", "/admin/v1/businesses/20/agents/1", admin, "", "", 200},
		{"admin patch agent", "PATCH", "/admin/v1/businesses/{business_id}/agents/{agent_id}", "/admin/v1/businesses/20/agents/1", admin, js, `{"active":false}`, 200},
		{"admin delete agent", "DELETE", "/admin/v1/businesses/{business_id}/agents/{agent_id}", "/admin/v1/businesses/20/agents/1", admin, "", "", 200},
		{"admin delete team", "DELETE", "/admin/v1/businesses/{business_id}/teams/{team_id}", "/admin/v1/businesses/20/teams/1", admin, "", "", 200},
		{"admin put api step", "PUT", "/admin/v1/businesses/{business_id}/api_steps/{node}", "/admin/v1/businesses/20/api_steps/order_status", admin, js, `{"method":"GET","url":"https://orders.acme.example/orders/{{.value}}","headers":{"Authorization":"Bearer ${ACME_ORDERS_TOKEN}"},"reply":"Order {{.value}} is {{.status}}.","timeout_ms":2000}`, 201},
		{"admin replace api step", "PUT", "/admin/v1/businesses/{business_id}/api_steps/{node}", "/admin/v1/businesses/20/api_steps/order_status", admin, js, `{"method":"GET","url":"https://orders.acme.example/v2/{{.value}}","reply":"Order {{.value}} is {{.status}}."}`, 200},
		{"admin put api step literal secret", "PUT", "/admin/v1/businesses/{business_id}/api_steps/{node}", "/admin/v1/businesses/20/api_steps/x", admin, js, `{"method":"GET","url":"https://a.example/","headers":{"Authorization":"Bearer literal"},"reply":"ok"}`, 400},
		{"admin api steps", "GET", "/admin/v1/businesses/{business_id}/api_steps", "/admin/v1/businesses/20/api_steps", admin, "", "", 200},
		{"admin api step", "GET", "/admin/v1/businesses/{business_id}/api_steps/{node}", "/admin/v1/businesses/20/api_steps/order_status", admin, "", "", 200},
		{"admin delete api step", "DELETE", "/admin/v1/businesses/{business_id}/api_steps/{node}", "/admin/v1/businesses/20/api_steps/order_status", admin, "", "", 204},
		{"admin api step unknown", "GET", "/admin/v1/businesses/{business_id}/api_steps/{node}", "/admin/v1/businesses/20/api_steps/order_status", admin, "", "", 404},
		{"admin delete business", "DELETE", "/admin/v1/businesses/{business_id}", "/admin/v1/businesses/20", admin, "", "", 200},
		{"kookoo unknown", "GET", "/kookoo/{identifier}", "/kookoo/nope?sid=1&event=NewCall", nil, "", "", 404},
		{"kookoo new call", "GET", "/kookoo/{identifier}", "/kookoo/demo?sid=oa1&event=NewCall&cid=9900000001", nil, "", "", 200},
		{"messenger verify unknown", "GET", "/fb/{identifier}", "/fb/nope?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1", nil, "", "", 404},
		{"jio unknown", "POST", "/jio/{identifier}", "/jio/nope", nil, js, `{}`, 404},
		{"webchat bad domain", "POST", "/api/webchat_apps/{id}/user", "/api/webchat_apps/nope/user", nil, js, `{"domain":"https://x.example"}`, 404},
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, base+tc.url, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.wantStatus, body)
			}
			if err := validateResponse(doc, tc.method, tc.doc, req, resp.StatusCode, resp.Header, body); err != nil {
				t.Fatalf("response does not match the document: %v\nbody: %s", err, body)
			}
		})
	}

	t.Run("served document is the embedded one", func(t *testing.T) {
		resp, err := http.Get(base + "/openapi.yaml")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); ct != api.OpenAPIContentType || !bytes.Equal(b, api.OpenAPIDocument()) {
			t.Fatalf("content type %q, %d bytes; want %q and the embedded document", ct, len(b), api.OpenAPIContentType)
		}
	})
}

// TestOpenAPIValidatorRejectsWrongBodies shows the schema check can fail:
// bodies that break the documented shapes are rejected.
func TestOpenAPIValidatorRejectsWrongBodies(t *testing.T) {
	registerTestDecoders()
	doc := loadOpenAPI(t)
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	cases := []struct {
		name, method, path string
		status             int
		header             http.Header
		body               string
	}{
		{"error without error_message", "POST", "/api/bots/{business_id}/converse", 401, jsonHeader, `{"error":"nope"}`},
		{"converse without node", "POST", "/api/bots/{business_id}/converse", 200, jsonHeader, `{"messages":[],"confidence":0.5,"handoff":false}`},
		{"undocumented status", "GET", "/healthz", 418, jsonHeader, `{"status":"ok"}`},
		{"wrong content type", "GET", "/healthz", 200, http.Header{"Content-Type": {"text/plain"}}, `ok`},
		{"history timestamp in ISO format", "GET", "/integration/external/v1.0/get_chat_history/", 200, jsonHeader,
			`{"chat_json":[{"text":"hi","sender":"user","message_id":1,"timestamp":"2020-06-22T07:24:25Z"}]}`},
		{"faq status not in the seed's set", "GET", "/mogambo_api/nodes/faq/create/status/{task_id}/", 200, jsonHeader,
			`{"success":true,"body":{"status":"Done","done":1,"total":1},"error":"","meta":{}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://koel.test"+(&url.URL{Path: tc.path}).EscapedPath(), nil)
			if err := validateResponse(doc, tc.method, tc.path, req, tc.status, tc.header, []byte(tc.body)); err == nil {
				t.Fatalf("a wrong response was accepted: %d %s", tc.status, tc.body)
			}
		})
	}
	// The same validator accepts a right body, so the rejections above are
	// about the bodies.
	req, _ := http.NewRequest("GET", "http://koel.test/healthz", nil)
	if err := validateResponse(doc, "GET", "/healthz", req, 200, jsonHeader, []byte(`{"status":"ok"}`)); err != nil {
		t.Fatalf("a right body was rejected: %v", err)
	}
}
