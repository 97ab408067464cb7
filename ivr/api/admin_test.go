package api_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/mux"
	"go.yaml.in/yaml/v3"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
	"github.com/koelvoice/koel/ivr/outbox"
	"github.com/koelvoice/koel/ivr/provision"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

const adminTestToken = "admin-test-token-0123456789abcdef"

// syncBuffer is a log sink shared by the handlers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// adminFixture is the admin API on a real store behind the admin token,
// logging at debug level into logs.
type adminFixture struct {
	st   store.Store
	srv  *httptest.Server
	logs *syncBuffer
}

func newAdminFixture(t testing.TB, st store.Store) *adminFixture {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := mux.NewRouter().SkipClean(true)
	sub := r.PathPrefix("/admin/v1").Subrouter()
	sub.Use(outbox.RequireAdminToken(adminTestToken))
	(&api.Admin{Provision: &provision.Service{Store: st, Logger: logger}, Logger: logger}).Routes(sub)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &adminFixture{st: st, srv: srv, logs: logs}
}

func (f *adminFixture) do(t testing.TB, method, path, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminTestToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// dumpRecords prints every record the admin API writes, credentials
// included (revealed), ids replaced by names, so two stores can be
// compared and a refused request shown to have changed nothing.
func dumpRecords(t testing.TB, st store.Store) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	bizs, err := st.ListBusinesses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, biz := range bizs {
		fmt.Fprintf(&b, "business %d name=%q client=%q fallback=%q active=%v bot=%q url=%q token=%s\n", biz.ID, biz.Name,
			biz.ClientID, biz.FallbackMessage, biz.Active, biz.Bot, biz.BotURL.Reveal(), hex.EncodeToString(biz.TokenHash))
		conns, err := st.ListConnections(ctx, biz.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range conns {
			enc, err := ivr.EncodeSettings(c.Settings)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "  connection %s/%s active=%v settings=%s\n", c.Channel, c.Identifier, c.Active, enc)
		}
		teams, err := st.ListTeams(ctx, biz.ID)
		if err != nil {
			t.Fatal(err)
		}
		names := map[int64]string{}
		for _, tm := range teams {
			names[tm.ID] = tm.Name
			fmt.Fprintf(&b, "  team %q number=%q active=%v\n", tm.Name, tm.Number, tm.Active)
		}
		agents, err := st.ListAgents(ctx, biz.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range agents {
			fmt.Fprintf(&b, "  agent %q team=%q active=%v\n", a.Name, names[a.TeamID], a.Active)
		}
		steps, err := st.ListAPISteps(ctx, biz.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range steps {
			fmt.Fprintf(&b, "  api_step %q %s\n", s.Node, s.Spec)
		}
	}
	return b.String()
}

var adminBackends = []struct {
	name string
	open func(testing.TB, ...store.Option) store.Store
}{{"sqlite", storetest.NewSQLite}, {"postgres", storetest.NewPostgres}}

// Credentials the tests send; none may come back in a response or a log
// line.
var adminSecrets = []string{
	"biz-token-7f3a9c", "biz-token-rotated-1d2e", "rasa-url-secret-q8",
	"fb-page-token-51c", "fb-app-secret-9aa", "fb-verify-77b", "fb-app-secret-rotated-0c",
	"hook-secret-key-3e1", "tw-auth-token-42f",
}

type adminStep struct {
	name         string
	method, path string
	body         string
	status       int
	want         string // a substring of the response body
}

// TestAdminAPI drives every admin resource through create, read, update
// and deactivate, and every refusal, on real SQLite and PostgreSQL: each
// status and message is checked, a refused request changes no record,
// and no credential appears in any response or log line.
func TestAdminAPI(t *testing.T) {
	for _, be := range adminBackends {
		t.Run(be.name, func(t *testing.T) {
			f := newAdminFixture(t, be.open(t))
			steps := []adminStep{
				// businesses
				{"list empty", "GET", "/admin/v1/businesses", "", 200, `{"businesses":[]}`},
				{"create", "POST", "/admin/v1/businesses", `{"id":7,"name":"Acme","client_id":"acme","token":"biz-token-7f3a9c","fallback_message":"Sorry?"}`, 201, `"id":7,"name":"Acme","client_id":"acme","fallback_message":"Sorry?","active":true`},
				{"create remote bot, id chosen", "POST", "/admin/v1/businesses", `{"id":8,"name":"Shop","client_id":"shop","token":"biz-token-7f3a9c","bot":{"kind":"remote","remote_url":"https://rasa.example/hook?k=rasa-url-secret-q8"}}`, 201, `"bot":{"kind":"remote","remote_url_set":true}`},
				{"create existing id", "POST", "/admin/v1/businesses", `{"id":7,"name":"Again","client_id":"a","token":"biz-token-7f3a9c"}`, 409, `business 7 already exists`},
				{"create without token", "POST", "/admin/v1/businesses", `{"id":9,"name":"N","client_id":"n"}`, 400, `token missing in the request`},
				{"create without name", "POST", "/admin/v1/businesses", `{"id":9,"client_id":"n","token":"t"}`, 400, `name missing in the request`},
				{"create without client_id", "POST", "/admin/v1/businesses", `{"id":9,"name":"N","token":"t"}`, 400, `client_id missing in the request`},
				{"create NUL name", "POST", "/admin/v1/businesses", `{"id":9,"name":"N\u0000","client_id":"n","token":"t"}`, 400, `name contains a NUL byte`},
				{"create invalid UTF-8", "POST", "/admin/v1/businesses", "{\"id\":9,\"name\":\"\xff\",\"client_id\":\"n\",\"token\":\"t\"}", 400, `not valid UTF-8`},
				{"create lone surrogate", "POST", "/admin/v1/businesses", `{"id":9,"name":"\ud800","client_id":"n","token":"t"}`, 400, `surrogate`},
				{"create unknown field", "POST", "/admin/v1/businesses", `{"id":9,"name":"N","client_id":"n","token":"t","colour":"red"}`, 400, `unknown field "colour"`},
				{"create bad id", "POST", "/admin/v1/businesses", `{"id":-3,"name":"N","client_id":"n","token":"t"}`, 400, `id must be a positive number`},
				{"create mistyped", "POST", "/admin/v1/businesses", `{"id":"nine","name":"N","client_id":"n","token":"t"}`, 400, `field id must be int64`},
				{"create remote without url", "POST", "/admin/v1/businesses", `{"id":9,"name":"N","client_id":"n","token":"t","bot":{"kind":"remote"}}`, 400, `bot kind remote needs bot.remote_url`},
				{"create bad bot kind", "POST", "/admin/v1/businesses", `{"id":9,"name":"N","client_id":"n","token":"t","bot":{"kind":"gpt"}}`, 400, `bot kind "gpt"`},
				{"create oversized body", "POST", "/admin/v1/businesses", `{"id":9,"name":"` + strings.Repeat("a", api.MaxAdminBody) + `","client_id":"n","token":"t"}`, 413, `larger than 65536 bytes`},
				{"create long name", "POST", "/admin/v1/businesses", `{"id":9,"name":"` + strings.Repeat("a", 300) + `","client_id":"n","token":"t"}`, 400, `name is longer than 256 bytes`},
				{"create malformed", "POST", "/admin/v1/businesses", `{"id":9,`, 400, `malformed JSON`},
				{"create two objects", "POST", "/admin/v1/businesses", `{"id":9}{"id":10}`, 400, `single JSON object`},
				{"get", "GET", "/admin/v1/businesses/7", "", 200, `"name":"Acme"`},
				{"get unknown", "GET", "/admin/v1/businesses/99", "", 404, `business 99 not found`},
				{"get bad id", "GET", "/admin/v1/businesses/x", "", 400, `business id must be a positive number`},
				{"patch rename and rotate token", "PATCH", "/admin/v1/businesses/7", `{"name":"Acme Ltd","token":"biz-token-rotated-1d2e"}`, 200, `"name":"Acme Ltd"`},
				{"patch id", "PATCH", "/admin/v1/businesses/7", `{"id":8}`, 400, `id cannot change`},
				{"patch empty name", "PATCH", "/admin/v1/businesses/7", `{"name":"  "}`, 400, `name missing in the request`},
				{"patch unknown", "PATCH", "/admin/v1/businesses/99", `{"name":"X"}`, 404, `business 99 not found`},
				{"patch restate remote keeps url", "PATCH", "/admin/v1/businesses/8", `{"bot":{"kind":"remote"}}`, 200, `"remote_url_set":true`},
				{"list", "GET", "/admin/v1/businesses", "", 200, `"name":"Shop"`},
				{"delete deactivates", "DELETE", "/admin/v1/businesses/8", "", 200, `"active":false`},
				{"delete unknown", "DELETE", "/admin/v1/businesses/99", "", 404, `business 99 not found`},

				// connections
				{"connection kookoo", "POST", "/admin/v1/connections", `{"business_id":7,"channel":"kookoo","identifier":"acme","settings":{"welcome_message":"Welcome to Acme","break_message":"Sorry, again please.","silence_period":2,"max_record_time":8}}`, 201, `"welcome_message":"Welcome to Acme","break_message":"Sorry, again please.","silence_period":2,"max_record_time":8`},
				{"connection fb with credentials", "POST", "/admin/v1/connections", `{"business_id":7,"channel":"fb","identifier":"acme","settings":{"messenger":{"page_id":"1001","page_access_token":"fb-page-token-51c","app_secret":"fb-app-secret-9aa","verify_token":"fb-verify-77b"}}}`, 201, `"secrets_set":["messenger.page_access_token","messenger.app_secret","messenger.verify_token"]`},
				{"connection webhook", "POST", "/admin/v1/connections", `{"business_id":7,"channel":"webhook","identifier":"acme","active":false,"settings":{"webhook_url":"https://acme.example/hook","secret_key":"hook-secret-key-3e1"}}`, 201, `"active":false`},
				{"connection taken", "POST", "/admin/v1/connections", `{"business_id":8,"channel":"kookoo","identifier":"acme"}`, 409, `connection kookoo/acme already exists (id 1)`},
				{"connection unknown business", "POST", "/admin/v1/connections", `{"business_id":99,"channel":"kookoo","identifier":"x"}`, 404, `business 99 not found`},
				{"connection no business", "POST", "/admin/v1/connections", `{"channel":"kookoo","identifier":"x"}`, 400, `business_id missing in the request`},
				{"connection no channel", "POST", "/admin/v1/connections", `{"business_id":7,"identifier":"x"}`, 400, `channel missing in the request`},
				{"connection unknown channel", "POST", "/admin/v1/connections", `{"business_id":7,"channel":"fax","identifier":"x"}`, 400, `unknown channel "fax"`},
				{"connection bad identifier", "POST", "/admin/v1/connections", `{"business_id":7,"channel":"kookoo","identifier":"a/b"}`, 400, `identifier "a/b" must be 1-64 letters`},
				{"connection silence out of range", "POST", "/admin/v1/connections", `{"business_id":7,"channel":"kookoo","identifier":"x","settings":{"silence_period":600}}`, 400, `silence_period must be 0-60 seconds, got 600`},
				{"connection record time negative", "POST", "/admin/v1/connections", `{"business_id":7,"channel":"kookoo","identifier":"x","settings":{"max_record_time":-1}}`, 400, `max_record_time must be 0-3600 seconds, got -1`},
				{"connection other channel's credentials", "POST", "/admin/v1/connections", `{"business_id":7,"channel":"kookoo","identifier":"x","settings":{"twilio":{"auth_token":"tw-auth-token-42f"}}}`, 400, `settings.twilio do not apply to a kookoo connection`},
				{"connection webhook secret on fb", "POST", "/admin/v1/connections", `{"business_id":7,"channel":"fb","identifier":"x","settings":{"secret_key":"hook-secret-key-3e1"}}`, 400, `secret_key and access_token are webhook credentials`},
				{"connection unknown setting", "POST", "/admin/v1/connections", `{"business_id":7,"channel":"kookoo","identifier":"x","settings":{"volume":11}}`, 400, `settings: unknown field "volume"`},
				{"connection mistyped setting", "POST", "/admin/v1/connections", `{"business_id":7,"channel":"kookoo","identifier":"x","settings":{"silence_period":"3"}}`, 400, `settings.silence_period must be int`},
				{"connection NUL in a setting", "POST", "/admin/v1/connections", `{"business_id":7,"channel":"webhook","identifier":"x","settings":{"webhook_url":"https://a.example/\u0000"}}`, 400, `settings.webhook_url contains a NUL byte`},
				{"connection list", "GET", "/admin/v1/connections?business_id=7", "", 200, `"identifier":"acme"`},
				{"connection list unknown business", "GET", "/admin/v1/connections?business_id=99", "", 404, `business 99 not found`},
				{"connection get", "GET", "/admin/v1/connections/2", "", 200, `"page_id":"1001"`},
				{"connection get unknown", "GET", "/admin/v1/connections/99", "", 404, `connection 99 not found`},
				{"connection patch settings keeps credentials", "PATCH", "/admin/v1/connections/2", `{"settings":{"messenger":{"page_id":"2002"}}}`, 200, `"secrets_set":["messenger.page_access_token","messenger.app_secret","messenger.verify_token"]`},
				{"connection patch rotates one credential", "PATCH", "/admin/v1/connections/2", `{"settings":{"messenger":{"app_secret":"fb-app-secret-rotated-0c"}}}`, 200, `"page_id":"2002"`},
				{"connection patch removes one credential", "PATCH", "/admin/v1/connections/2", `{"settings":{"messenger":{"verify_token":null}}}`, 200, `"secrets_set":["messenger.page_access_token","messenger.app_secret"]`},
				{"connection patch voice", "PATCH", "/admin/v1/connections/1", `{"settings":{"silence_period":3,"welcome_message":"Hello"}}`, 200, `"welcome_message":"Hello","break_message":"Sorry, again please.","silence_period":3,"max_record_time":8`},
				{"connection patch identifier", "PATCH", "/admin/v1/connections/1", `{"identifier":"other"}`, 400, `identifier cannot change`},
				{"connection patch nothing", "PATCH", "/admin/v1/connections/1", `{}`, 400, `active or settings missing in the request`},
				{"connection patch bad range", "PATCH", "/admin/v1/connections/1", `{"settings":{"max_record_time":7200}}`, 400, `max_record_time must be 0-3600 seconds`},
				{"connection patch not an object", "PATCH", "/admin/v1/connections/1", `{"settings":[1]}`, 400, `settings must be a JSON object`},
				{"connection patch unknown", "PATCH", "/admin/v1/connections/99", `{"active":true}`, 404, `connection 99 not found`},
				{"connection switch on", "PATCH", "/admin/v1/connections/3", `{"active":true}`, 200, `"active":true`},
				{"connection delete deactivates", "DELETE", "/admin/v1/connections/3", "", 200, `"active":false`},

				// teams and agents
				{"team create", "POST", "/admin/v1/businesses/7/teams", `{"name":"support","number":"+919800000001"}`, 201, `"name":"support","number":"+919800000001","active":true`},
				{"team create second", "POST", "/admin/v1/businesses/7/teams", `{"name":"sales"}`, 201, `"name":"sales"`},
				{"team taken", "POST", "/admin/v1/businesses/7/teams", `{"name":"support"}`, 409, `team "support" already exists (id 1)`},
				{"team bad number", "POST", "/admin/v1/businesses/7/teams", `{"name":"x","number":"call me"}`, 400, `team number "call me" must be 3-20 digits`},
				{"team no name", "POST", "/admin/v1/businesses/7/teams", `{"number":"123"}`, 400, `name missing in the request`},
				{"team unknown business", "POST", "/admin/v1/businesses/99/teams", `{"name":"x"}`, 404, `business 99 not found`},
				{"team list", "GET", "/admin/v1/businesses/7/teams", "", 200, `"name":"sales"`},
				{"team get", "GET", "/admin/v1/businesses/7/teams/1", "", 200, `"name":"support"`},
				{"team get unknown", "GET", "/admin/v1/businesses/7/teams/99", "", 404, `team 99 of business 7 not found`},
				{"team get other business", "GET", "/admin/v1/businesses/8/teams/1", "", 404, `team 1 of business 8 not found`},
				{"team patch number", "PATCH", "/admin/v1/businesses/7/teams/1", `{"number":"+919800000002"}`, 200, `"number":"+919800000002"`},
				{"team patch name", "PATCH", "/admin/v1/businesses/7/teams/1", `{"name":"help"}`, 400, `name cannot change`},
				{"team delete deactivates", "DELETE", "/admin/v1/businesses/7/teams/2", "", 200, `"name":"sales","number":"","active":false`},
				{"agent create", "POST", "/admin/v1/businesses/7/agents", `{"name":"Asha","team_id":1}`, 201, `"team_id":1,"name":"Asha","active":true`},
				{"agent taken", "POST", "/admin/v1/businesses/7/agents", `{"name":"Asha","team_id":1}`, 409, `agent "Asha" already exists (id 1)`},
				{"agent no team", "POST", "/admin/v1/businesses/7/agents", `{"name":"Ravi"}`, 400, `team_id missing in the request`},
				{"agent other business's team", "POST", "/admin/v1/businesses/8/agents", `{"name":"Ravi","team_id":1}`, 400, `team_id 1 is not a team of business 8`},
				{"agent bad name", "POST", "/admin/v1/businesses/7/agents", `{"name":"Ravi (lead)","team_id":1}`, 400, `agent name may not hold parentheses`},
				{"agent list", "GET", "/admin/v1/businesses/7/agents", "", 200, `"name":"Asha"`},
				{"agent get", "GET", "/admin/v1/businesses/7/agents/1", "", 200, `"name":"Asha"`},
				{"agent get other business", "GET", "/admin/v1/businesses/8/agents/1", "", 404, `agent 1 of business 8 not found`},
				{"agent move", "PATCH", "/admin/v1/businesses/7/agents/1", `{"team_id":2}`, 200, `"team_id":2`},
				{"agent move to unknown team", "PATCH", "/admin/v1/businesses/7/agents/1", `{"team_id":99}`, 400, `team_id 99 is not a team of business 7`},
				{"agent delete deactivates", "DELETE", "/admin/v1/businesses/7/agents/1", "", 200, `"active":false`},

				// API steps
				{"api step create", "PUT", "/admin/v1/businesses/7/api_steps/order_status", `{"method":"get","url":"https://orders.acme.example/orders/{{.value}}","headers":{"Authorization":"Bearer ${ACME_ORDERS_TOKEN}"},"reply":"Order {{.value}} is {{.status}}.","timeout_ms":1500}`, 201, `"node":"order_status","method":"GET","url":"https://orders.acme.example/orders/{{.value}}","headers":{"Authorization":"Bearer ${ACME_ORDERS_TOKEN}"}`},
				{"api step replace", "PUT", "/admin/v1/businesses/7/api_steps/order_status", `{"method":"GET","url":"https://orders.acme.example/v2/{{.value}}","reply":"Order {{.value}}: {{.status}}","not_found":"No such order"}`, 200, `"not_found":"No such order","timeout_ms":0`},
				{"api step literal credential", "PUT", "/admin/v1/businesses/7/api_steps/x", `{"method":"GET","url":"https://a.example/{{.value}}","headers":{"X-Api-Key":"tw-auth-token-42f"},"reply":"ok"}`, 400, `header X-Api-Key carries a credential`},
				{"api step bad method", "PUT", "/admin/v1/businesses/7/api_steps/x", `{"method":"TRACE","url":"https://a.example/","reply":"ok"}`, 400, `method "TRACE"`},
				{"api step relative url", "PUT", "/admin/v1/businesses/7/api_steps/x", `{"method":"GET","url":"/orders","reply":"ok"}`, 400, `url must be an absolute http(s) URL`},
				{"api step secret in url", "PUT", "/admin/v1/businesses/7/api_steps/x", `{"method":"GET","url":"https://a.example/?k=${KEY}","reply":"ok"}`, 400, `secrets belong in headers`},
				{"api step bad template", "PUT", "/admin/v1/businesses/7/api_steps/x", `{"method":"GET","url":"https://a.example/","reply":"{{.status"}`, 400, `reply template`},
				{"api step no reply", "PUT", "/admin/v1/businesses/7/api_steps/x", `{"method":"GET","url":"https://a.example/"}`, 400, `reply template is empty`},
				{"api step bad header", "PUT", "/admin/v1/businesses/7/api_steps/x", `{"method":"GET","url":"https://a.example/","headers":{"Bad Header":"v"},"reply":"ok"}`, 400, `not a valid HTTP header name`},
				{"api step timeout", "PUT", "/admin/v1/businesses/7/api_steps/x", `{"method":"GET","url":"https://a.example/","reply":"ok","timeout_ms":600000}`, 400, `timeout_ms must be 0-60000`},
				{"api step unknown business", "PUT", "/admin/v1/businesses/99/api_steps/x", `{"method":"GET","url":"https://a.example/","reply":"ok"}`, 404, `business 99 not found`},
				{"api step list", "GET", "/admin/v1/businesses/7/api_steps", "", 200, `"node":"order_status"`},
				{"api step get", "GET", "/admin/v1/businesses/7/api_steps/order_status", "", 200, `"url":"https://orders.acme.example/v2/{{.value}}"`},
				{"api step get unknown", "GET", "/admin/v1/businesses/7/api_steps/nope", "", 404, `api step "nope" of business 7 not found`},
				{"api step put second", "PUT", "/admin/v1/businesses/7/api_steps/refund%20status", `{"method":"POST","url":"https://a.example/refunds","body":"{\"id\":{{json .value}}}","reply":"ok"}`, 201, `"node":"refund status"`},
				{"api step delete", "DELETE", "/admin/v1/businesses/7/api_steps/refund%20status", "", 204, ``},
				{"api step delete again", "DELETE", "/admin/v1/businesses/7/api_steps/refund%20status", "", 404, `not found`},

				// the token
				{"no admin token", "GET", "/admin/v1/businesses", "", 401, `invalid admin token`},
			}
			var responses strings.Builder
			for _, s := range steps {
				before := dumpRecords(t, f.st)
				var status int
				var body string
				if s.name == "no admin token" {
					resp, err := http.Get(f.srv.URL + s.path)
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					status, body = resp.StatusCode, string(b)
				} else {
					status, body = f.do(t, s.method, s.path, s.body)
				}
				responses.WriteString(body)
				msg := body
				var eb api.ErrorBody
				if json.Unmarshal([]byte(body), &eb) == nil && eb.ErrorMessage != "" {
					msg = eb.ErrorMessage
				}
				if status != s.status || !strings.Contains(msg, s.want) {
					t.Errorf("%s: %s %s = %d %s\nwant %d containing %s", s.name, s.method, s.path, status, body, s.status, s.want)
				}
				if status >= 400 {
					if after := dumpRecords(t, f.st); after != before {
						t.Errorf("%s: refused with %d but the records changed:\nbefore:\n%s\nafter:\n%s", s.name, status, before, after)
					}
				}
			}

			// What was written is what was asked.
			ctx := context.Background()
			b7, err := f.st.GetBusiness(ctx, 7)
			if err != nil {
				t.Fatal(err)
			}
			if !ivr.TokenMatches(b7.TokenHash, "biz-token-rotated-1d2e") || ivr.TokenMatches(b7.TokenHash, "biz-token-7f3a9c") {
				t.Error("the token was not rotated")
			}
			if b8, _ := f.st.GetBusiness(ctx, 8); b8.BotURL.Reveal() != "https://rasa.example/hook?k=rasa-url-secret-q8" || b8.Active {
				t.Errorf("business 8: bot url kept %v, active %v", b8.BotURL.Reveal() == "https://rasa.example/hook?k=rasa-url-secret-q8", b8.Active)
			}
			fb, err := f.st.GetConnection(ctx, ivr.ChannelFacebook, "acme")
			if err != nil {
				t.Fatal(err)
			}
			m := fb.Settings.Messenger
			if m.PageID != "2002" || m.PageAccessToken.Reveal() != "fb-page-token-51c" || m.AppSecret.Reveal() != "fb-app-secret-rotated-0c" || m.VerifyToken != "" {
				t.Errorf("messenger settings after the patches: page %q, token kept %v, secret rotated %v, verify removed %v", m.PageID,
					m.PageAccessToken.Reveal() == "fb-page-token-51c", m.AppSecret.Reveal() == "fb-app-secret-rotated-0c", m.VerifyToken == "")
			}
			if hook, _ := f.st.GetConnection(ctx, ivr.ChannelWebhook, "acme"); hook.Settings.SecretKey.Reveal() != "hook-secret-key-3e1" {
				t.Error("the webhook secret key was not stored")
			}

			// No credential in any response or log line.
			logs := f.logs.String()
			if !strings.Contains(logs, `"msg":"connection saved"`) {
				t.Fatalf("the writes were not logged; logs:\n%s", logs)
			}
			for _, sec := range adminSecrets {
				if strings.Contains(responses.String(), sec) {
					t.Errorf("credential %q appeared in a response", sec)
				}
				if strings.Contains(logs, sec) {
					t.Errorf("credential %q appeared in the log", sec)
				}
			}
		})
	}
}

// acmeYAML declares, in koel's YAML, what TestAdminAndYAMLWriteIdenticalRecords
// also writes through the admin API.
const acmeYAML = `
id: 7
name: Acme
token_env: ACME_TOKEN
client_id: acme
fallback_message: Sorry?
connections:
  - channel: kookoo
    identifier: acme
    settings:
      welcome_message: Welcome to Acme
      break_message: Sorry, again please.
      silence_period: 2
      max_record_time: 8
  - channel: fb
    identifier: acme
    disabled: true
    settings:
      messenger:
        page_id: "1001"
    secrets_env:
      messenger.app_secret: ACME_FB_SECRET
      messenger.page_access_token: ACME_FB_TOKEN
teams:
  - name: support
    number: "+919800000001"
    agents: [Asha, Ravi]
  - name: sales
    disabled: true
api_steps:
  order_status:
    method: GET
    url: https://orders.acme.example/orders/{{.value}}
    headers:
      Authorization: Bearer ${ACME_ORDERS_TOKEN}
    reply: Order {{.value}} is {{.status}}.
    timeout: 1500ms
`

// TestAdminAndYAMLWriteIdenticalRecords: one declaration written by YAML
// provisioning into one store, and by admin API calls into another, gives
// the same records, credentials and token hash included.
func TestAdminAndYAMLWriteIdenticalRecords(t *testing.T) {
	for _, be := range adminBackends {
		t.Run(be.name, func(t *testing.T) {
			var decl provision.Business
			if err := yaml.Unmarshal([]byte(acmeYAML), &decl); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{"ACME_TOKEN": "biz-token-7f3a9c", "ACME_FB_SECRET": "fb-app-secret-9aa", "ACME_FB_TOKEN": "fb-page-token-51c"}
			fromYAML := be.open(t)
			if _, err := provision.Apply(context.Background(), fromYAML, decl, provision.Options{Getenv: func(k string) string { return env[k] }}); err != nil {
				t.Fatal(err)
			}

			f := newAdminFixture(t, be.open(t))
			for _, s := range []adminStep{
				{"business", "POST", "/admin/v1/businesses", `{"id":7,"name":"Acme","client_id":"acme","token":"biz-token-7f3a9c","fallback_message":"Sorry?"}`, 201, ``},
				{"kookoo", "POST", "/admin/v1/connections", `{"business_id":7,"channel":"kookoo","identifier":"acme","settings":{"welcome_message":"Welcome to Acme","break_message":"Sorry, again please.","silence_period":2,"max_record_time":8}}`, 201, ``},
				{"fb", "POST", "/admin/v1/connections", `{"business_id":7,"channel":"fb","identifier":"acme","active":false,"settings":{"messenger":{"page_id":"1001","app_secret":"fb-app-secret-9aa","page_access_token":"fb-page-token-51c"}}}`, 201, ``},
				{"support", "POST", "/admin/v1/businesses/7/teams", `{"name":"support","number":"+919800000001"}`, 201, ``},
				{"asha", "POST", "/admin/v1/businesses/7/agents", `{"name":"Asha","team_id":1}`, 201, ``},
				{"ravi", "POST", "/admin/v1/businesses/7/agents", `{"name":"Ravi","team_id":1}`, 201, ``},
				{"sales", "POST", "/admin/v1/businesses/7/teams", `{"name":"sales","active":false}`, 201, ``},
				{"order_status", "PUT", "/admin/v1/businesses/7/api_steps/order_status", `{"method":"GET","url":"https://orders.acme.example/orders/{{.value}}","headers":{"Authorization":"Bearer ${ACME_ORDERS_TOKEN}"},"reply":"Order {{.value}} is {{.status}}.","timeout_ms":1500}`, 201, ``},
			} {
				if status, body := f.do(t, s.method, s.path, s.body); status != s.status {
					t.Fatalf("%s: %d %s", s.name, status, body)
				}
			}
			y, a := dumpRecords(t, fromYAML), dumpRecords(t, f.st)
			if y != a {
				t.Fatalf("YAML and admin API records differ:\nYAML:\n%s\nadmin API:\n%s", y, a)
			}
			for _, want := range []string{"fb-app-secret-9aa", `agent "Ravi" team="support"`, `team "sales" number="" active=false`, `"timeout":1500000000`} {
				if !strings.Contains(y, want) {
					t.Fatalf("records lack %q:\n%s", want, y)
				}
			}
		})
	}
}

var adminFuzzPaths = []string{
	"/admin/v1/businesses", "/admin/v1/businesses/7", "/admin/v1/businesses/8",
	"/admin/v1/connections", "/admin/v1/connections/1", "/admin/v1/connections/2",
	"/admin/v1/businesses/7/teams", "/admin/v1/businesses/7/teams/1",
	"/admin/v1/businesses/7/agents", "/admin/v1/businesses/7/agents/1",
	"/admin/v1/businesses/7/api_steps/order_status", "/admin/v1/businesses/7/api_steps/x",
}

var adminFuzzMethods = []string{"POST", "PATCH", "PUT", "DELETE", "GET"}

// FuzzAdminRequests sends any body to any admin route of the real router
// on a real SQLite store: never a 5xx or a panic; a refused request
// changes no record; no stored credential is ever answered.
func FuzzAdminRequests(f *testing.F) {
	st := storetest.NewSQLite(f)
	fx := newAdminFixture(f, st)
	for _, s := range []adminStep{
		{"", "POST", "/admin/v1/businesses", `{"id":7,"name":"Acme","client_id":"acme","token":"biz-token-7f3a9c"}`, 201, ""},
		{"", "POST", "/admin/v1/connections", `{"business_id":7,"channel":"fb","identifier":"acme","settings":{"messenger":{"app_secret":"fb-app-secret-9aa"}}}`, 201, ""},
		{"", "POST", "/admin/v1/businesses/7/teams", `{"name":"support"}`, 201, ""},
	} {
		if status, body := fx.do(f, s.method, s.path, s.body); status != s.status {
			f.Fatalf("seed %s %s: %d %s", s.method, s.path, status, body)
		}
	}
	for _, seed := range []struct {
		m, p uint8
		body string
	}{
		{0, 0, `{"id":9,"name":"N","client_id":"n","token":"t"}`},
		{1, 1, `{"name":"B","bot":{"kind":"remote","remote_url":"https://r.example/"}}`},
		{0, 3, `{"business_id":7,"channel":"kookoo","identifier":"k","settings":{"silence_period":3}}`},
		{1, 4, `{"settings":{"messenger":{"app_secret":null,"page_id":"1"}}}`},
		{1, 4, `{"settings":{"twilio":{"auth_token":"x"}}}`},
		{0, 6, `{"name":"sales","number":"+91"}`},
		{0, 8, `{"name":"Asha","team_id":1}`},
		{2, 10, `{"method":"GET","url":"https://a.example/{{.value}}","headers":{"Authorization":"Bearer ${T}"},"reply":"{{.status}}"}`},
		{3, 2, ``}, {1, 4, `{"settings":{"":{"":null}}}`}, {0, 0, "{\"name\":\"\xff\"}"}, {0, 0, `{"id":1e400}`}, {1, 1, `null`},
	} {
		f.Add(seed.m, seed.p, seed.body)
	}
	mask := regexp.MustCompile(`"(created_at|updated_at)":"[^"]*"`)
	f.Fuzz(func(t *testing.T, m, p uint8, body string) {
		method, path := adminFuzzMethods[int(m)%len(adminFuzzMethods)], adminFuzzPaths[int(p)%len(adminFuzzPaths)]
		before := dumpRecords(t, st)
		status, resp := fx.do(t, method, path, body)
		if status >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, status, resp)
		}
		if status >= 400 {
			if after := dumpRecords(t, st); after != before {
				t.Fatalf("%s %s %q refused with %d but changed the records:\n%s\n%s", method, path, body, status, before, after)
			}
		}
		resp = mask.ReplaceAllString(resp, "")
		for _, sec := range []string{"biz-token-7f3a9c", "fb-app-secret-9aa"} {
			if strings.Contains(resp, sec) && !strings.Contains(body, sec) {
				t.Fatalf("%s %s answered a stored credential: %s", method, path, resp)
			}
		}
	})
}

// TestAdminConcurrentCreatesOfOneName: simultaneous creates of one team
// name, and of one agent name, give exactly one 201 and 409s for the rest,
// and one record, on real SQLite and PostgreSQL. A check before an upsert
// would let several succeed, each later one overwriting the first.
func TestAdminConcurrentCreatesOfOneName(t *testing.T) {
	const racers = 12
	for _, be := range adminBackends {
		t.Run(be.name, func(t *testing.T) {
			f := newAdminFixture(t, be.open(t))
			if code, body := f.do(t, "POST", "/admin/v1/businesses", `{"id":7,"name":"Acme","client_id":"acme","token":"biz-token-7f3a9c"}`); code != 201 {
				t.Fatalf("business: %d %s", code, body)
			}
			for _, tc := range []struct {
				name, path, body, want409 string
				count                     func() int
			}{
				{"team", "/admin/v1/businesses/7/teams", `{"name":"support","number":"+9198%08d"}`, `team \"support\" already exists (id `, func() int {
					l, err := f.st.ListTeams(context.Background(), 7)
					if err != nil {
						t.Fatal(err)
					}
					return len(l)
				}},
				{"agent", "/admin/v1/businesses/7/agents", `{"name":"Asha","team_id":1}`, `agent \"Asha\" already exists (id `, func() int {
					l, err := f.st.ListAgents(context.Background(), 7)
					if err != nil {
						t.Fatal(err)
					}
					return len(l)
				}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					type result struct {
						code int
						body string
					}
					results := make(chan result, racers)
					start := make(chan struct{})
					var wg sync.WaitGroup
					for i := range racers {
						wg.Add(1)
						go func() {
							defer wg.Done()
							<-start
							body := tc.body
							if strings.Contains(body, "%") {
								body = fmt.Sprintf(body, i)
							}
							code, b := f.do(t, "POST", tc.path, body)
							results <- result{code, b}
						}()
					}
					close(start)
					wg.Wait()
					close(results)
					created, conflicts := 0, 0
					for r := range results {
						switch {
						case r.code == 201:
							created++
						case r.code == 409 && strings.Contains(r.body, tc.want409):
							conflicts++
						default:
							t.Errorf("unexpected answer %d %s", r.code, r.body)
						}
					}
					if created != 1 || conflicts != racers-1 {
						t.Errorf("%d creates and %d conflicts of %d racers; want exactly 1 create", created, conflicts, racers)
					}
					if n := tc.count(); n != 1 {
						t.Errorf("%d %ss stored, want 1", n, tc.name)
					}
				})
			}
		})
	}
}
