package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/channels/channeltest"
	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/channels/webhook"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// addSupportTeam gives the demo business a support team with agent Asha,
// through the store methods the admin API and provisioning use.
func addSupportTeam(t *testing.T, srv *Server, number string) {
	t.Helper()
	ctx := context.Background()
	team := &ivr.Team{BusinessID: demo.BusinessID, Name: "support", Number: number, Active: true}
	if err := srv.store.PutTeam(ctx, team); err != nil {
		t.Fatal(err)
	}
	if err := srv.store.PutAgent(ctx, &ivr.Agent{BusinessID: demo.BusinessID, TeamID: team.ID, Name: "Asha", Active: true}); err != nil {
		t.Fatal(err)
	}
}

func getJSON(t *testing.T, u string, headers map[string]string, v any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, val := range headers {
		req.Header.Set(k, val)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode
}

// waitQueued polls the agent queue until user's chat is in it (the
// countdown runs on the server's real clock) and returns its chat id.
func waitQueued(t *testing.T, base, user string) int64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var q struct {
			Chats []api.QueueChat `json:"chats"`
		}
		if code := getJSON(t, base+"/agent/v1/1/queue", webhookHeaders, &q); code != 200 {
			t.Fatalf("queue: %d", code)
		}
		for _, c := range q.Chats {
			if c.UserName == user && c.Status == "queued" {
				return c.ChatID
			}
		}
		time.Sleep(50 * time.Millisecond) // polling a condition under a deadline
	}
	t.Fatalf("chat of %s never reached the queue", user)
	return 0
}

func agentPost(t *testing.T, base string, chat int64, step, body string) {
	t.Helper()
	code, b := postJSON(t, fmt.Sprintf("%s/agent/v1/1/chats/%d/%s", base, chat, step), webhookHeaders, body)
	if code != 200 {
		t.Fatalf("agent %s: %d %s", step, code, b)
	}
}

// transcriptSenders reads conversation 1 of user as json and as text and
// checks both list the same senders; it returns them.
func transcriptSenders(t *testing.T, base, user string) []string {
	t.Helper()
	q := "?business_id=1&conversation_no=1&user_name=" + user
	var js struct {
		ChatJSON []api.ChatLine `json:"chat_json"`
	}
	if code := getJSON(t, base+api.HistoryV1Path+q, webhookHeaders, &js); code != 200 {
		t.Fatalf("json transcript: %d", code)
	}
	var tx struct {
		ChatText string `json:"chat_text"`
	}
	if code := getJSON(t, base+api.HistoryV1Path+q+"&response_type=text", webhookHeaders, &tx); code != 200 {
		t.Fatalf("text transcript: %d", code)
	}
	lines := strings.Split(strings.TrimSuffix(tx.ChatText, "\n"), "\n")
	if len(lines) != len(js.ChatJSON) {
		t.Fatalf("text has %d lines, json %d:\n%s", len(lines), len(js.ChatJSON), tx.ChatText)
	}
	var senders []string
	for i, l := range js.ChatJSON {
		if !strings.HasPrefix(lines[i], l.Sender+": "+l.Text) {
			t.Fatalf("line %d: text %q, json %+v", i, lines[i], l)
		}
		if _, err := time.Parse("01/02/06 03:04:05 PM UTC", l.Timestamp); err != nil {
			t.Fatalf("timestamp %q: %v", l.Timestamp, err)
		}
		senders = append(senders, l.Sender)
	}
	return senders
}

// compact drops repeats of a sender in a row (a bot answer may be several
// messages).
func compact(s []string) string {
	var out []string
	for _, v := range s {
		if len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return strings.Join(out, " ")
}

// TestHandoffEndToEnd: a user message over the webhook API and over
// Messenger; send_chat_to_agent with countdown 5; the bot is silent; the
// agent's reply reaches the user's webhook (signature verified by the
// receiver) and the Messenger user through the fake Graph API; hand back;
// the bot answers again; the transcripts show it in order.
func TestHandoffEndToEnd(t *testing.T) { testHandoffEndToEnd(t, "") }

// TestHandoffEndToEndPostgres is the same on PostgreSQL.
func TestHandoffEndToEndPostgres(t *testing.T) { testHandoffEndToEnd(t, storetest.PostgresURL(t)) }

func testHandoffEndToEnd(t *testing.T, dbURL string) {
	p := startTextServer(t, dbURL)
	base := p.srv.URL()
	addSupportTeam(t, p.srv, "+919800000001")

	// 1. A user message on each channel.
	if code, b := postJSON(t, base+webhook.PathLogMessage, webhookHeaders, logMessage("ho-user", "what are your opening hours")); code != 200 {
		t.Fatalf("log message: %d %s", code, b)
	}
	if m := waitFor(t, p.webhook.got, "the bot's answer"); m.Agent.Name != "bot" {
		t.Fatalf("first answer from %+v", m.Agent)
	}
	fbSeq := 0
	messenger := func(text string) {
		t.Helper()
		fbSeq++
		q, _ := json.Marshal(text)
		fb := fmt.Sprintf(`{"object":"page","entry":[{"id":"PAGE","time":1,"messaging":[{"sender":{"id":"PSIDHO"},"recipient":{"id":"PAGE"},"timestamp":1,"message":{"mid":"mid.ho.%d","text":%s}}]}]}`, fbSeq, q)
		h := http.Header{"Content-Type": {"application/json"}, "X-Hub-Signature-256": {platform.SignMeta(e2eAppSecret, []byte(fb))}}
		if code, body := post(t, base+"/fb/bluebird", h, fb); code != 200 {
			t.Fatalf("messenger: %d %s", code, body)
		}
	}
	messenger("how much is delivery")
	p.graph.WaitAccepted(t, 1, 20*time.Second)

	// 2. Both chats to the support team with a 5 s countdown.
	for _, user := range []string{"ho-user", "PSIDHO"} {
		body := fmt.Sprintf(`{"team_name":"support","user_name":%q,"business_id":1,"countdown":5}`, user)
		if code, b := postJSON(t, base+api.SendChatPath, webhookHeaders, body); code != 200 || !strings.Contains(string(b), `"success":true`) {
			t.Fatalf("send_chat_to_agent %s: %d %s", user, code, b)
		}
	}
	webChat, fbChat := waitQueued(t, base, "ho-user"), waitQueued(t, base, "PSIDHO")

	// 3. The bot is silent: the inbound is stored, no bot line follows.
	if code, b := postJSON(t, base+webhook.PathLogMessage, webhookHeaders, logMessage("ho-user", "hello, is anyone there")); code != 200 {
		t.Fatalf("log message: %d %s", code, b)
	}
	messenger("hello? a human please")
	if s := transcriptSenders(t, base, "ho-user"); s[len(s)-1] != "user" {
		t.Fatalf("the bot answered a queued chat: %v", s)
	}
	if s := transcriptSenders(t, base, "PSIDHO"); s[len(s)-1] != "user" {
		t.Fatalf("the bot answered a queued Messenger chat: %v", s)
	}
	if n := len(p.graph.Accepted()); n != 1 {
		t.Fatalf("graph got %d sends, want only the first answer", n)
	}

	// 4. The agent takes both and replies; each reply reaches the user's channel.
	agentPost(t, base, webChat, "take", `{"agent_name":"Asha"}`)
	agentPost(t, base, webChat, "messages", `{"agent_name":"Asha","text":"Hi, I am Asha from Bluebird. How can I help?"}`)
	m := waitFor(t, p.webhook.got, "the agent's reply")
	if m.Message.Body.Text != "Hi, I am Asha from Bluebird. How can I help?" || m.Agent.Name != "agent(Asha)" || m.Agent.IsAutomated || m.User.AuthID != "ho-user" {
		t.Fatalf("agent delivery %+v", m)
	}
	agentPost(t, base, fbChat, "take", `{"agent_name":"Asha"}`)
	agentPost(t, base, fbChat, "messages", `{"agent_name":"Asha","text":"Asha here, on Messenger."}`)
	got := p.graph.WaitAccepted(t, 2, 20*time.Second)
	var send channeltest.MessengerSend
	if err := got[1].JSON(&send); err != nil || send.Recipient.ID != "PSIDHO" || send.Message.Text != "Asha here, on Messenger." {
		t.Fatalf("messenger agent send %s: %v", got[1].Body, err)
	}

	// 5. Hand back; 6. the bot answers again.
	agentPost(t, base, webChat, "hand_back", `{"agent_name":"Asha"}`)
	agentPost(t, base, fbChat, "hand_back", `{"agent_name":"Asha"}`)
	if code, b := postJSON(t, base+webhook.PathLogMessage, webhookHeaders, logMessage("ho-user", "how much is delivery")); code != 200 {
		t.Fatalf("log message: %d %s", code, b)
	}
	if m := waitFor(t, p.webhook.got, "the bot after the hand back"); m.Agent.Name != "bot" || !strings.Contains(m.Message.Body.Text, "Delivery") {
		t.Fatalf("after hand back: %+v", m)
	}
	messenger("where are you located")
	p.graph.WaitAccepted(t, 3, 20*time.Second)

	// The transcripts, in json and text, in order.
	if got, want := compact(transcriptSenders(t, base, "ho-user")), "user bot user agent(Asha) user bot"; got != want {
		t.Fatalf("webhook transcript senders %q, want %q", got, want)
	}
	if got, want := compact(transcriptSenders(t, base, "PSIDHO")), "user bot user agent(Asha) user bot"; got != want {
		t.Fatalf("messenger transcript senders %q, want %q", got, want)
	}
}

// TestVoiceHandoffEndToEnd: a caller asks for an agent (key 0) and is
// transferred to the team's number, not the connection's agent number; the
// caller's conversation and handoff show it.
func TestVoiceHandoffEndToEnd(t *testing.T) {
	srv := startServer(t, voiceConfig(t, ""))
	if srv.voice.sttState != "ok" {
		t.Skipf("pocketsphinx unavailable (%s); make test installs it", srv.voice.sttState)
	}
	addSupportTeam(t, srv, "08040001234")
	base := srv.URL()
	const sid = "7101"
	for _, st := range []struct {
		name   string
		params map[string]string
		want   string
	}{
		{"new call", map[string]string{"event": "NewCall", "cid": "09876543210", "called_number": "918065740671"}, "<record "},
		{"asks for an agent", map[string]string{"event": "GotDTMF", "data": "0"}, "08040001234</dial>"},
	} {
		v := ev(sid, st.params["event"])
		for k, val := range st.params {
			v.Set(k, val)
		}
		code, body := kookooGet(t, base, v)
		if code != 200 || !strings.Contains(body, st.want) {
			t.Fatalf("%s: %d, want %q in:\n%s", st.name, code, st.want, body)
		}
	}
	ctx := context.Background()
	call, err := srv.store.GetCall(ctx, sid)
	if err != nil || call.State != ivr.CallStateTransferring {
		t.Fatalf("call %+v (%v), want transferring", call, err)
	}
	caller, err := srv.store.GetUser(ctx, demo.BusinessID, ivr.ChannelKooKoo, "09876543210")
	if err != nil {
		t.Fatal(err)
	}
	convs, err := srv.store.ListConversations(ctx, caller.ID)
	if err != nil || len(convs) != 1 {
		t.Fatalf("caller conversations %+v (%v)", convs, err)
	}
	conv := convs[0]
	if conv.Handoff != ivr.HandoffAgent {
		t.Fatalf("conversation handoff %q after the transfer, want agent", conv.Handoff)
	}
	ho, err := srv.store.LiveHandoff(ctx, conv.ID)
	if err != nil || ho.Status != ivr.HandoffPhone {
		t.Fatalf("live handoff %+v (%v), want status phone", ho, err)
	}

}

// TestVoiceHandoffByAPIMidCall: a caller's chat sent to the team by the
// integration API while the call runs; at the caller's next utterance the
// bot does not answer it: the caller hears that they are being connected,
// and the call is transferred to the team's number.
func TestVoiceHandoffByAPIMidCall(t *testing.T) {
	recs := newRecordings(t)
	srv := startServer(t, voiceConfig(t, ""))
	if srv.voice.sttState != "ok" {
		t.Skipf("pocketsphinx unavailable (%s); make test installs it", srv.voice.sttState)
	}
	addSupportTeam(t, srv, "08040001234")
	base := srv.URL()
	const sid = "7201"
	get := func(params map[string]string) string {
		t.Helper()
		v := ev(sid, params["event"])
		for k, val := range params {
			v.Set(k, val)
		}
		code, body := kookooGet(t, base, v)
		if code != 200 {
			t.Fatalf("%v: %d %s", params, code, body)
		}
		return body
	}
	get(map[string]string{"event": "NewCall", "cid": "09876543211", "called_number": "918065740671"})
	if body := get(map[string]string{"event": "Record", "data": recs.say(t, "m1", "how much is delivery"), "status": "silence"}); !strings.Contains(body, "<record ") {
		t.Fatalf("first turn:\n%s", body)
	}
	if code, b := postJSON(t, base+api.SendChatPath, webhookHeaders, `{"team_name":"support","user_name":"09876543211","business_id":1,"countdown":5}`); code != 200 {
		t.Fatalf("send_chat_to_agent: %d %s", code, b)
	}
	waitQueued(t, base, "09876543211")
	body := get(map[string]string{"event": "Record", "data": recs.say(t, "m2", "what are your opening hours"), "status": "silence"})
	if !strings.Contains(body, "08040001234</dial>") || !strings.Contains(body, ivr.TransferMessage) || strings.Contains(body, "open") {
		t.Fatalf("after the chat was queued the call answered (want %q, then the dial):\n%s", ivr.TransferMessage, body)
	}
	call, err := srv.store.GetCall(context.Background(), sid)
	if err != nil {
		t.Fatal(err)
	}
	conv, err := srv.store.GetConversation(context.Background(), call.ConversationID)
	if err != nil || conv.Handoff != ivr.HandoffAgent {
		t.Fatalf("conversation %+v (%v), want handoff agent", conv, err)
	}
}

// TestDeclaredAPIStepAnswers: a business declared in YAML with an API step
// on its order_status node answers an order number from its own order API
// (a loopback fake, allowed by dev mode) through the bot API; the token
// comes from the environment and an unknown order gets the not-found reply.
func TestDeclaredAPIStepAnswers(t *testing.T) {
	orders := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer orders-secret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/orders/1042" {
			http.Error(w, `{"error":"no such order"}`, http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte(`{"order":{"id":"1042","status":"shipped"}}`))
	}))
	t.Cleanup(orders.Close)
	dir := t.TempDir()
	faqPath := dir + "/shop.csv"
	if err := os.WriteFile(faqPath, []byte("node_name,user_says,bot_says\norder_status,where is my order|track my order,\"Sure, what is your order number?\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yamlPath := dir + "/koel.yaml"
	yamlText := `businesses:
  - id: 8
    name: Shop
    token_env: SHOP_TOKEN
    client_id: shop
    faq_file: ` + faqPath + `
    api_steps:
      order_status:
        method: GET
        url: ` + orders.URL + `/orders/{{.value}}
        headers: {Authorization: "Bearer ${SHOP_ORDERS_TOKEN}"}
        reply: "Your order {{.order.id}} is {{.order.status}}."
`
	if err := os.WriteFile(yamlPath, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := env(map[string]string{"SHOP_TOKEN": "shop-token", "SHOP_ORDERS_TOKEN": "orders-secret", "KOEL_STT_ENGINE": "none", "KOEL_SIM": "0", "KOEL_DEV": "1"})
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
	for _, turn := range []struct{ say, want string }{
		{"where is my order", "Sure, what is your order number?"},
		{"1042", "Your order 1042 is shipped."},
		{"track my order", "Sure, what is your order number?"},
		{"777", "I could not find that order"},
	} {
		status, body := postJSON(t, srv.URL()+"/api/bots/8/converse", map[string]string{"Authorization": "Bearer shop-token"},
			fmt.Sprintf(`{"user_id":"buyer","text":%q}`, turn.say))
		if status != 200 || !strings.Contains(string(body), turn.want) {
			t.Fatalf("%q: %d %s, want %q", turn.say, status, body, turn.want)
		}
	}
}
