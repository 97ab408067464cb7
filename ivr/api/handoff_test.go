package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// fakeClock is an injected clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// handoffFixture is the demo business with a support team (agent Asha), a
// closed team, an inactive second business, and webhook user "u1" who
// wrote once; "silent" is known but never wrote.
type handoffFixture struct {
	st       store.Store
	router   *mux.Router
	handoffs *ivr.Handoffs
	engine   *ivr.Engine
	clock    *fakeClock
	webhook  ivr.Connection
	// reg holds the handoff service's koel_handoffs_total.
	reg *prometheus.Registry
}

func newHandoffFixture(t testing.TB, open func(testing.TB, ...store.Option) store.Store) *handoffFixture {
	t.Helper()
	st := open(t)
	ctx := context.Background()
	if _, err := demo.Bootstrap(ctx, st, demo.Options{Token: "tok", WebhookURL: "http://127.0.0.1:1/hook", LoadFAQ: func(ctx context.Context, id int64, csv []byte) error {
		_, err := faq.Import(ctx, st, id, bytes.NewReader(csv), faq.ImportOptions{})
		return err
	}}); err != nil {
		t.Fatal(err)
	}
	off := &ivr.Business{ID: 2, Name: "off", TokenHash: ivr.HashToken("tok2"), ClientID: "c2", Active: false}
	if err := st.CreateBusiness(ctx, off); err != nil {
		t.Fatal(err)
	}
	support := &ivr.Team{BusinessID: 1, Name: "support", Number: "+919800000001", Active: true}
	closed := &ivr.Team{BusinessID: 1, Name: "night shift", Number: "+919800000002", Active: false}
	for _, tm := range []*ivr.Team{support, closed} {
		if err := st.PutTeam(ctx, tm); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.PutAgent(ctx, &ivr.Agent{BusinessID: 1, TeamID: support.ID, Name: "Asha", Active: true}); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Date(2026, 6, 22, 7, 24, 25, 0, time.UTC)}
	conn, err := st.GetConnection(ctx, ivr.ChannelWebhook, demo.Identifier)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	h, err := ivr.NewHandoffs(ivr.HandoffsConfig{Store: st, Now: clock.Now, Registerer: reg,
		Deliver: func(c ivr.Connection, u ivr.User, m *ivr.Message, now time.Time) ([]*ivr.OutboxItem, error) {
			return []*ivr.OutboxItem{{ConnectionID: c.ID, Channel: c.Channel, Recipient: u.ExternalID,
				IdempotencyKey: "agent-" + time.Now().String(), URL: c.Settings.WebhookURL, Body: []byte(m.Text),
				ContentType: "text/plain", Status: ivr.OutboxPending, NextAttemptAt: now}}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := ivr.NewEngine(ivr.EngineConfig{Store: st, Bot: faq.New(st, faq.Options{}), Handoff: h})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Handle(ctx, ivr.Inbound{BusinessID: 1, Connection: conn, Channel: ivr.ChannelWebhook, UserExternalID: "u1", Text: "what are your opening hours"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EnsureUser(ctx, 1, ivr.ChannelWebhook, "silent", true); err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	(&api.Handoff{Store: st, Handoffs: h, AdminToken: "admin-secret"}).Routes(r)
	(&api.History{Store: st}).Routes(r)
	return &handoffFixture{st: st, router: r, handoffs: h, engine: eng, clock: clock, webhook: conn, reg: reg}
}

func (f *handoffFixture) do(t *testing.T, method, path, body string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		if v == "-" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.router.ServeHTTP(w, req)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: body %q: %v", method, path, w.Body, err)
	}
	return w.Code, out
}

var backends = []struct {
	name string
	open func(testing.TB, ...store.Option) store.Store
}{{"sqlite", storetest.NewSQLite}, {"postgres", storetest.NewPostgres}}

// TestSendChatToAgentErrors has one row per error message of the seed's
// send_chat_to_agent table (and the countdown range).
func TestSendChatToAgentErrors(t *testing.T) {
	good := map[string]string{"Authorization": "Bearer tok", "client-id": demo.ClientID}
	with := func(k, v string) map[string]string {
		h := map[string]string{}
		for a, b := range good {
			h[a] = b
		}
		h[k] = v
		return h
	}
	const body = `{"team_name":"support","user_name":"u1","business_id":1,"countdown":5}`
	cases := []struct {
		name   string
		hdr    map[string]string
		body   string
		status int
		msg    string
	}{
		{"client_id missing", with("client-id", "-"), body, 401, "client_id missing in headers"},
		{"client_id wrong", with("client-id", "nope"), body, 401, "invalid client_id in headers"},
		{"authorization not bearer", with("Authorization", "Basic dG9rOg=="), body, 401, "invalid authorization in headers"},
		{"token missing", with("Authorization", "-"), body, 401, "token missing in headers"},
		{"token empty bearer", with("Authorization", "Bearer "), body, 401, "token missing in headers"},
		{"token wrong", with("Authorization", "Bearer nope"), body, 401, "invalid token provided"},
		{"user_name missing", good, `{"team_name":"support","business_id":1}`, 400, "user_name missing in the request"},
		{"business_id missing", good, `{"team_name":"support","user_name":"u1"}`, 400, "business_id missing in the request"},
		{"team_name missing", good, `{"user_name":"u1","business_id":1}`, 400, "team_name missing in the request"},
		{"user_name unknown", good, `{"team_name":"support","user_name":"nobody","business_id":1}`, 404, "invalid user_name"},
		{"business_id unknown", good, `{"team_name":"support","user_name":"u1","business_id":99}`, 404, "invalid business_id provided"},
		{"business_id not a number", good, `{"team_name":"support","user_name":"u1","business_id":"one"}`, 400, "invalid business_id provided"},
		{"business inactive", map[string]string{"Authorization": "Bearer tok2", "client-id": "c2"}, `{"team_name":"support","user_name":"u1","business_id":2}`, 403, `business "2" is inactive`},
		{"team unknown", good, `{"team_name":"sales","user_name":"u1","business_id":1}`, 404, "invalid team_name provided"},
		{"team inactive", good, `{"team_name":"night shift","user_name":"u1","business_id":1}`, 403, `team "night shift" is inactive`},
		{"user never wrote", good, `{"team_name":"support","user_name":"silent","business_id":1}`, 409, "user has not sent a message"},
		{"countdown too short", good, `{"team_name":"support","user_name":"u1","business_id":1,"countdown":4}`, 400, "countdown must be"},
		{"countdown too long", good, `{"team_name":"support","user_name":"u1","business_id":"1","countdown":"11"}`, 400, "countdown must be"},
		{"unknown field", good, `{"team_name":"support","user_name":"u1","business_id":1,"extra":1}`, 400, "unknown field"},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			f := newHandoffFixture(t, be.open)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					code, out := f.do(t, http.MethodPost, api.SendChatPath, tc.body, tc.hdr)
					if code != tc.status || !strings.Contains(out["error_message"].(string), tc.msg) {
						t.Fatalf("got %d %v, want %d %q", code, out, tc.status, tc.msg)
					}
				})
			}
			// Nothing was queued by any refusal.
			if hs, err := f.st.ListHandoffs(context.Background(), 1, []ivr.HandoffStatus{ivr.HandoffWaiting, ivr.HandoffQueued}); err != nil || len(hs) != 0 {
				t.Fatalf("refusals left handoffs %v (%v)", hs, err)
			}
		})
	}
}

// TestHandoffLifecycle: countdown (injected clock), queue, silence, take,
// agent message through the outbox, hand back, the bot again; the
// transcripts show it in order in both versions and both response types.
func TestHandoffLifecycle(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			f := newHandoffFixture(t, be.open)
			ctx := context.Background()
			auth := map[string]string{"Authorization": "Bearer tok", "client-id": demo.ClientID}
			code, out := f.do(t, http.MethodPost, api.SendChatPath, `{"team_name":"support","user_name":"u1","business_id":"1","countdown":"5"}`, auth)
			if code != 200 || out["success"] != true {
				t.Fatalf("send_chat_to_agent: %d %v", code, out)
			}
			ask := func(text string) ivr.Reply {
				t.Helper()
				r, err := f.engine.Handle(ctx, ivr.Inbound{BusinessID: 1, Connection: f.webhook, Channel: ivr.ChannelWebhook, UserExternalID: "u1", Text: text})
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			// During the countdown the bot still answers and nothing is queued.
			f.clock.Add(4 * time.Second)
			if n, err := f.handoffs.MoveDue(ctx); err != nil || n != 0 {
				t.Fatalf("moved %d before the countdown ended (%v)", n, err)
			}
			if r := ask("where are you located"); r.Suppressed || len(r.Stored) == 0 {
				t.Fatalf("bot silent during the countdown: %+v", r)
			}
			f.clock.Add(time.Second)
			// A fresh service (a restart) finds the due handoff in the store.
			restarted, err := ivr.NewHandoffs(ivr.HandoffsConfig{Store: f.st, Now: f.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			if n, err := restarted.MoveDue(ctx); err != nil || n != 1 {
				t.Fatalf("moved %d at the due time (%v)", n, err)
			}
			if r := ask("hello? anyone there"); !r.Suppressed || len(r.Stored) != 0 {
				t.Fatalf("bot answered a queued chat: %+v", r)
			}
			code, out = f.do(t, http.MethodGet, "/agent/v1/1/queue", "", map[string]string{"Authorization": "Bearer admin-secret"})
			chats, _ := out["chats"].([]any)
			if code != 200 || len(chats) != 1 {
				t.Fatalf("queue: %d %v", code, out)
			}
			chat := chats[0].(map[string]any)
			if chat["status"] != "queued" || chat["team"] != "support" || chat["user_name"] != "u1" {
				t.Fatalf("queue entry %v", chat)
			}
			id := jsonInt(chat["chat_id"])
			base := "/agent/v1/1/chats/" + id
			// A message before taking the chat is refused.
			if code, out = f.do(t, http.MethodPost, base+"/messages", `{"agent_name":"Asha","text":"hi"}`, auth); code != 409 {
				t.Fatalf("message before take: %d %v", code, out)
			}
			if code, out = f.do(t, http.MethodPost, base+"/take", `{"agent_name":"Nobody"}`, auth); code != 404 {
				t.Fatalf("unknown agent: %d %v", code, out)
			}
			if code, out = f.do(t, http.MethodPost, base+"/take", `{"agent_name":"Asha"}`, auth); code != 200 || out["status"] != "taken" {
				t.Fatalf("take: %d %v", code, out)
			}
			if code, out = f.do(t, http.MethodPost, base+"/messages", `{"agent_name":"Asha","text":"Hi, I am Asha. How can I help?"}`, auth); code != 200 || out["sender"] != "agent(Asha)" {
				t.Fatalf("agent message: %d %v", code, out)
			}
			pending, err := f.st.ListOutbox(ctx, ivr.OutboxPending, 0)
			if err != nil {
				t.Fatal(err)
			}
			var agentItems int
			for _, it := range pending {
				if string(it.Body) == "Hi, I am Asha. How can I help?" && it.Recipient == "u1" && it.URL == "http://127.0.0.1:1/hook" {
					agentItems++
				}
			}
			if agentItems != 1 {
				t.Fatalf("agent message outbox items: %d of %d pending", agentItems, len(pending))
			}
			if code, out = f.do(t, http.MethodPost, base+"/hand_back", `{"agent_name":"Asha"}`, auth); code != 200 || out["status"] != "closed" {
				t.Fatalf("hand back: %d %v", code, out)
			}
			if r := ask("what are your opening hours"); r.Suppressed || len(r.Stored) == 0 {
				t.Fatalf("bot silent after the hand back: %+v", r)
			}

			code, out = f.do(t, http.MethodGet, api.HistoryV1Path+"?user_name=u1&business_id=1&conversation_no=1&response_type=text", "", auth)
			text, _ := out["chat_text"].(string)
			lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
			var senders []string
			for _, l := range lines {
				s, _, _ := strings.Cut(l, ": ")
				senders = append(senders, s)
			}
			want := "user bot user bot bot user agent(Asha) user bot" // the location answer has two messages
			if code != 200 || strings.Join(senders, " ") != want {
				t.Fatalf("text transcript %d:\n%s\nsenders %v, want %s", code, text, senders, want)
			}
			code, out = f.do(t, http.MethodGet, api.HistoryV2Path+"?user_name=u1&business_id=1&conversation_no=1", "", auth)
			items, _ := out["chat_json"].([]any)
			if code != 200 || len(items) != len(lines) {
				t.Fatalf("v2 json: %d %v", code, out)
			}
			first := items[0].(map[string]any)
			if first["sender"] != "user" || !historyStamp.MatchString(first["timestamp"].(string)) {
				t.Fatalf("first line %v", first)
			}
			if got := items[6].(map[string]any)["sender"]; got != "Asha" {
				t.Fatalf("v2 agent sender %v, want the agent's name", got)
			}
			// limit keeps the newest messages.
			_, out = f.do(t, http.MethodGet, api.HistoryV1Path+"?user_name=u1&business_id=1&conversation_no=1&limit=2", "", auth)
			if items, _ := out["chat_json"].([]any); len(items) != 2 || items[1].(map[string]any)["sender"] != "bot" {
				t.Fatalf("limit 2: %v", out)
			}
			// Each move was counted once by the service that made it (the
			// restarted service, without a registry, queued the chat).
			wantMetrics := strings.NewReader(`
# HELP koel_handoffs_total Conversations moved between the bot and agents, by kind (requested, bot_node, phone, queued, taken, handed_back).
# TYPE koel_handoffs_total counter
koel_handoffs_total{kind="bot_node"} 0
koel_handoffs_total{kind="handed_back"} 1
koel_handoffs_total{kind="phone"} 0
koel_handoffs_total{kind="queued"} 0
koel_handoffs_total{kind="requested"} 1
koel_handoffs_total{kind="taken"} 1
`)
			if err := testutil.GatherAndCompare(f.reg, wantMetrics, "koel_handoffs_total"); err != nil {
				t.Error(err)
			}
		})
	}
}

// historyStamp is the seed's timestamp shape: 06/22/20 07:24:25 AM UTC.
var historyStamp = regexp.MustCompile(`^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (AM|PM) UTC$`)

func jsonInt(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestChatHistoryErrors has one row per error message of the seed's v1 and
// v2 transcript tables.
func TestChatHistoryErrors(t *testing.T) {
	f := newHandoffFixture(t, storetest.NewSQLite)
	good := map[string]string{"Authorization": "Bearer tok", "client-id": demo.ClientID}
	b, err := f.st.GetBusiness(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	pxut := api.PXUT(b, demo.ClientID, "u1")
	otherClient := api.PXUT(b, "someone-else", "u1")
	cases := []struct {
		name, path string
		hdr        map[string]string
		status     int
		msg        string
	}{
		{"v1 invalid client_id", "/integration/external/v1.0/get_chat_history/?user_name=u1&business_id=1&conversation_no=1", map[string]string{"Authorization": "Bearer tok", "client-id": "x"}, 401, "invalid client_id"},
		{"v1 client_id missing", "/integration/external/v1.0/get_chat_history/?user_name=u1&business_id=1&conversation_no=1", map[string]string{"Authorization": "Bearer tok"}, 401, "invalid client_id"},
		{"v1 invalid token", "/integration/external/v1.0/get_chat_history/?user_name=u1&business_id=1&conversation_no=1", map[string]string{"Authorization": "Bearer x", "client-id": demo.ClientID}, 401, "invalid token"},
		{"v1 user_name missing", "/integration/external/v1.0/get_chat_history/?business_id=1&conversation_no=1", good, 400, "user_name missing"},
		{"v1 business_id missing", "/integration/external/v1.0/get_chat_history/?user_name=u1&conversation_no=1", good, 400, "business_id missing"},
		{"v1 conversation_no missing", "/integration/external/v1.0/get_chat_history/?user_name=u1&business_id=1", good, 400, "conversation_no missing"},
		{"v1 invalid user_name", "/integration/external/v1.0/get_chat_history/?user_name=nobody&business_id=1&conversation_no=1", good, 404, "invalid user_name"},
		{"v1 user has not sent a message", "/integration/external/v1.0/get_chat_history/?user_name=silent&business_id=1&conversation_no=1", good, 404, "user has not sent a message"},
		{"v1 no such conversation", "/integration/external/v1.0/get_chat_history/?user_name=u1&business_id=1&conversation_no=7", good, 404, "user has not sent a message"},
		{"v1 bad limit", "/integration/external/v1.0/get_chat_history/?user_name=u1&business_id=1&conversation_no=1&limit=-1", good, 400, "limit must be"},
		{"v1 bad response_type", "/integration/external/v1.0/get_chat_history/?user_name=u1&business_id=1&conversation_no=1&response_type=xml", good, 400, "response_type must be"},
		{"v2 Invalid business_id", "/integration/external/v2.0/get_chat_history/?user_name=u1&business_id=abc&conversation_no=1", good, 400, "Invalid business_id"},
		{"v2 Invalid token", "/integration/external/v2.0/get_chat_history/?user_name=u1&business_id=1&conversation_no=1", map[string]string{"Authorization": "Bearer x", "client-id": demo.ClientID}, 401, "Invalid token"},
		{"v2 not found pair", "/integration/external/v2.0/get_chat_history/?user_name=nobody&business_id=1&conversation_no=1", good, 404, "Either the user has not sent a message yet, or the provided user_name-business_id pair is invalid."},
		{"v2 pxut of another client", "/integration/external/v2.0/get_chat_history/?pxut=" + otherClient + "&conversation_no=1", good, 400, "Unable to decode pxut-client_id pair"},
		{"v2 pxut garbage", "/integration/external/v2.0/get_chat_history/?pxut=tw389ysgd._aksdjknsk-545641964-B&conversation_no=1", good, 400, "Unable to decode pxut-client_id pair"},
		{"v2 no valid group", "/integration/external/v2.0/get_chat_history/?user_name=u1&limit=3", good, 400, "Argument group validation: no valid group."},
		{"v2 invalid group", "/integration/external/v2.0/get_chat_history/?user_name=u1&business_id=1&conversation_no=two", good, 400, "Argument group validation: invalid group found."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := f.do(t, http.MethodGet, tc.path, "", tc.hdr)
			if code != tc.status || out["error_message"] != tc.msg && !strings.Contains(out["error_message"].(string), tc.msg) {
				t.Fatalf("got %d %v, want %d %q", code, out, tc.status, tc.msg)
			}
		})
	}
	t.Run("v2 pxut group", func(t *testing.T) {
		code, out := f.do(t, http.MethodGet, api.HistoryV2Path+"?pxut="+pxut+"&conversation_no=1&response_type=text", "", good)
		if code != 200 || !strings.HasPrefix(out["chat_text"].(string), "user: what are your opening hours\nbot: ") {
			t.Fatalf("pxut transcript: %d %v", code, out)
		}
	})
	t.Run("v2 group details", func(t *testing.T) {
		_, out := f.do(t, http.MethodGet, api.HistoryV2Path+"?user_name=u1", "", good)
		if _, ok := out["details"].(map[string]any)["group_2"]; !ok {
			t.Fatalf("no details per group: %v", out)
		}
	})
}

func qesc(s string) string { return url.QueryEscape(s) }

// FuzzSendChatToAgent sends arbitrary bodies through the real handler:
// never a panic, never a 5xx, and a refusal queues nothing.
func FuzzSendChatToAgent(f *testing.F) {
	f.Add(`{"team_name":"support","user_name":"u1","business_id":1,"countdown":5}`)
	f.Add(`{"team_name":"support","user_name":"u1","business_id":"1e3","countdown":"x"}`)
	f.Add(`{"team_name":null,"user_name":7,"business_id":[1]}`)
	fx := newHandoffFixture(f, storetest.NewSQLite)
	f.Fuzz(func(t *testing.T, body string) {
		code, _ := fx.do(t, http.MethodPost, api.SendChatPath, body, map[string]string{"Authorization": "Bearer tok", "client-id": demo.ClientID})
		if code >= 500 {
			t.Fatalf("%q: %d", body, code)
		}
	})
}

// TestTalkToAgentNodeQueuesTheChat: the bot's own "talk to an agent" node
// queues the chat for the business's first active team at once; the bot
// then stays silent and the agent queue lists the chat.
func TestTalkToAgentNodeQueuesTheChat(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			f := newHandoffFixture(t, be.open)
			ctx := context.Background()
			in := ivr.Inbound{BusinessID: 1, Connection: f.webhook, Channel: ivr.ChannelWebhook, UserExternalID: "wants-a-human", Text: "i want to talk to a person"}
			r, err := f.engine.Handle(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Handoff || len(r.Stored) == 0 {
				t.Fatalf("reply %+v, want the talk_to_agent answer", r)
			}
			conv, err := f.st.GetConversation(ctx, r.Conversation.ID)
			if err != nil || conv.Handoff != ivr.HandoffPending {
				t.Fatalf("conversation %+v (%v), want pending", conv, err)
			}
			in.Text = "hello?"
			if r, err := f.engine.Handle(ctx, in); err != nil || !r.Suppressed {
				t.Fatalf("after the node the bot answered: %+v (%v)", r, err)
			}
			_, out := f.do(t, http.MethodGet, "/agent/v1/1/queue", "", map[string]string{"Authorization": "Bearer tok", "client-id": demo.ClientID})
			chats, _ := out["chats"].([]any)
			if len(chats) != 1 || chats[0].(map[string]any)["user_name"] != "wants-a-human" || chats[0].(map[string]any)["team"] != "support" {
				t.Fatalf("queue %v", out)
			}
		})
	}
}
