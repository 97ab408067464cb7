package kookoo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/audiotest"
	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// newSphinx returns the real pocketsphinx recogniser, or skips the test
// when it is not built in.
func newSphinx(t testing.TB) *stt.Sphinx {
	t.Helper()
	s, err := stt.NewSphinx(stt.SphinxConfig{DataDir: t.TempDir(), PoolSize: 2})
	if errors.Is(err, stt.ErrUnavailable) {
		t.Skipf("pocketsphinx unavailable: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// telephone synthesizes text with espeak-ng and passes it through G.711,
// with a little silence around it, as KooKoo would record it.
func telephone(t testing.TB, text string) audio.PCM {
	t.Helper()
	speech := audiotest.ULawRoundTrip(audiotest.Speak(t, text, ""))
	return audiotest.Concat(audiotest.Silence(300*time.Millisecond), speech, audiotest.Silence(500*time.Millisecond))
}

// xmlOf checks that body is a valid KooKoo response and returns it parsed.
func xmlOf(t *testing.T, step string, code int, body string) Response {
	t.Helper()
	if code != http.StatusOK {
		t.Fatalf("%s: status %d: %s", step, code, body)
	}
	resp, err := ParseResponse([]byte(body))
	if err != nil {
		t.Fatalf("%s: %v: %s", step, err, body)
	}
	if err := resp.Validate(); err != nil {
		t.Fatalf("%s: %v: %s", step, err, body)
	}
	return resp
}

func spoken(resp Response) string {
	var parts []string
	for _, v := range resp.Verbs {
		if p, ok := v.(PlayText); ok {
			parts = append(parts, p.Text)
		}
	}
	return strings.Join(parts, " ")
}

func last(resp Response) Verb {
	if len(resp.Verbs) == 0 {
		return nil
	}
	return resp.Verbs[len(resp.Verbs)-1]
}

// TestEndToEnd plays KooKoo against the app on a real store, engine, FAQ
// bot and pocketsphinx, with recordings synthesized by espeak-ng and served
// over loopback: two questions, a key press for an agent, an unanswered
// transfer, back to the bot, and a hang-up.
func TestEndToEnd(t *testing.T) {
	h := newHarness(t, harnessOptions{stt: newSphinx(t)})
	const sid = "1104528084461170"
	q := func(vals ...string) string {
		v := url.Values{"sid": {sid}}
		for i := 0; i+1 < len(vals); i += 2 {
			v.Set(vals[i], vals[i+1])
		}
		return v.Encode()
	}
	questions := []struct{ text, answer string }{
		{"what are your opening hours", "nine in the morning"},
		{"what is your address", "Residency Road"},
	}
	recURL := make([]string, len(questions))
	for i, qq := range questions {
		recURL[i] = h.recs.putPCM(t, fmt.Sprintf("/kookoo-user/%s-%d.wav", sid, i+1), telephone(t, qq.text))
	}

	code, body := h.get("demo", q("event", "NewCall", "cid", "09704665032", "called_number", "918065740671"))
	r := xmlOf(t, "NewCall", code, body)
	if rec, ok := last(r).(Record); !ok || rec.Name != sid+"-1" || rec.Silence != 3*time.Second || rec.MaxDuration != 10*time.Second {
		t.Fatalf("NewCall answer %s does not end in the first record", body)
	}
	for i, qq := range questions {
		code, body = h.get("demo", q("event", "Record", "data", recURL[i], "status", "silence"))
		r = xmlOf(t, "Record", code, body)
		if !strings.Contains(spoken(r), qq.answer) {
			turns := h.turns(sid)
			t.Fatalf("question %q: answer %q lacks %q (turns %+v)", qq.text, spoken(r), qq.answer, turns)
		}
		if rec, ok := last(r).(Record); !ok || rec.Name != fmt.Sprintf("%s-%d", sid, i+2) {
			t.Fatalf("answer %s does not listen again", body)
		}
	}
	code, body = h.get("demo", q("event", "GotDTMF", "data", "0"))
	r = xmlOf(t, "GotDTMF", code, body)
	if d, ok := last(r).(Dial); !ok || d.Number != demoSettings.AgentNumber || d.CallerID != demoSettings.CallerID {
		t.Fatalf("GotDTMF 0 answer %s does not dial the agent", body)
	}
	code, body = h.get("demo", q("event", "Dial", "status", "not_answered", "data", "-1", "callduration", "0"))
	r = xmlOf(t, "Dial", code, body)
	if _, ok := last(r).(Record); !ok || !strings.Contains(spoken(r), "no agent") {
		t.Fatalf("Dial not_answered answer %s does not return to the bot", body)
	}
	code, body = h.get("demo", q("event", "Hangup", "process", "record", "total_call_duration", "48"))
	if code != http.StatusOK || body != "" {
		t.Fatalf("Hangup answered %d %q, want an empty 200", code, body)
	}

	call := h.call(sid)
	if call.State != ivr.CallStateEnded || call.Outcome != ivr.OutcomeCallerHangup || call.Caller != "09704665032" {
		t.Errorf("call = %+v", call)
	}
	turns := h.turns(sid)
	if len(turns) != 2 {
		t.Fatalf("turns = %+v, want 2", turns)
	}
	for i, tr := range turns {
		if tr.Transcript == "" || tr.MessageID == 0 || !strings.Contains(tr.Reply, questions[i].answer) || tr.SpeechMS < 500 ||
			tr.STTMS < 0 || tr.TotalMS < tr.STTMS || tr.RecordingURL != recURL[i] {
			t.Errorf("turn %d = %+v", i+1, tr)
		}
		t.Logf("turn %d: %q (confidence %.2f) fetch %d ms, decode %d ms, stt %d ms, bot %d ms, total %d ms",
			tr.Seq, tr.Transcript, tr.Confidence, tr.FetchMS, tr.DecodeMS, tr.STTMS, tr.BotMS, tr.TotalMS)
	}
	msgs, err := h.store.ListMessages(context.Background(), call.ConversationID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 5 || msgs[0].Sender != ivr.SenderUser || msgs[0].Text != turns[0].Transcript || msgs[1].Sender != ivr.SenderBot {
		t.Errorf("conversation messages = %+v", msgs)
	}
	conv, err := h.store.GetConversation(context.Background(), call.ConversationID)
	if err != nil || conv.Open {
		t.Errorf("conversation %+v (err %v) should be closed", conv, err)
	}
}

// TestEndToEndSilenceHangsUp: three recordings of silence (through the real
// recogniser) and the call says goodbye and hangs up.
func TestEndToEndSilenceHangsUp(t *testing.T) {
	h := newHarness(t, harnessOptions{stt: newSphinx(t)})
	const sid = "9465281780016373"
	quiet := audiotest.Concat(audiotest.Silence(2*time.Second), audiotest.Noise(time.Second, -60, 1))
	get := func(query string) Response {
		t.Helper()
		code, body := h.get("noagent", "sid="+sid+"&"+query)
		return xmlOf(t, query, code, body)
	}
	get("event=NewCall&cid=8041169706")
	var r Response
	for i := range 3 {
		// Each recording has its own URL, as on KooKoo.
		u := h.recs.putPCM(t, fmt.Sprintf("/%s-%d.wav", sid, i+1), quiet)
		r = get("event=Record&data=" + url.QueryEscape(u))
	}
	if _, ok := last(r).(Hangup); !ok || !strings.Contains(spoken(r), demoSettings.GoodbyeMessage) {
		t.Fatalf("after three silent recordings: %s", r)
	}
	if c := h.call(sid); c.Outcome != ivr.OutcomeNoInput || c.State != ivr.CallStateHangingUp || !c.EndedAt.IsZero() {
		t.Errorf("call = %+v", c)
	}
	if code, body := h.get("noagent", "sid="+sid+"&event=Disconnect"); code != http.StatusOK || body != "" {
		t.Errorf("Disconnect answered %d %q", code, body)
	}
	if c := h.call(sid); c.Outcome != ivr.OutcomeNoInput || c.State != ivr.CallStateEnded {
		t.Errorf("call = %+v", c)
	}
}

// TestTwoNodesOnePostgres runs one call whose events alternate between two
// apps (two koel processes) on separate connections to one PostgreSQL
// database, with a duplicate delivery landing on the other node.
func TestTwoNodesOnePostgres(t *testing.T) {
	dbURL := storetest.PostgresURL(t)
	open := func() store.Store {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, err := store.OpenPostgres(ctx, dbURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	s1, s2 := open(), open()
	// Both nodes see the same transcripts (the softphone path stands in for
	// STT here; TestEndToEnd covers real STT).
	n1 := newHarness(t, harnessOptions{store: s1, nodeID: "node-a"})
	n2 := newHarness(t, harnessOptions{store: s2, nodeID: "node-b", noSetup: true, pre: n1.pre})
	setupRecordings(t, n1)

	const sid = "3000000000000001"
	nodes := []*harness{n1, n2}
	steps := []struct {
		query string
		want  func(Response) bool
	}{
		{"event=NewCall&" + caller, func(r Response) bool { _, ok := last(r).(Record); return ok }},
		{"event=Record&data={rec}/q-hours.wav&status=silence", func(r Response) bool { return strings.Contains(spoken(r), "nine in the morning") }},
		{"event=Record&data={rec}/q-hours.wav&status=silence", func(r Response) bool { return strings.Contains(spoken(r), "nine in the morning") }}, // duplicate on the other node
		{"event=Record&data={rec}/q-location.wav&status=silence", func(r Response) bool { return strings.Contains(spoken(r), "Residency Road") }},
		{"event=GotDTMF&data=0", func(r Response) bool { _, ok := last(r).(Dial); return ok }},
		{"event=Dial&status=not_answered&data=-1", func(r Response) bool { _, ok := last(r).(Record); return ok }},
		{"event=Record&data={rec}/empty.wav", func(r Response) bool { _, ok := last(r).(CollectDTMF); return ok }},
		{"event=GotDTMF&data=", func(r Response) bool { _, ok := last(r).(Record); return ok }},
	}
	for i, st := range steps {
		h := nodes[i%2]
		query := "sid=" + sid + "&" + strings.ReplaceAll(st.query, "{rec}", n1.recs.URL)
		code, body := h.get("demo", query)
		r := xmlOf(t, st.query, code, body)
		if !st.want(r) {
			t.Fatalf("step %d on node %d (%s): unexpected answer %s", i, i%2, st.query, body)
		}
	}
	if code, body := n2.get("demo", "sid="+sid+"&event=Hangup&process=record"); code != http.StatusOK || body != "" {
		t.Fatalf("Hangup answered %d %q", code, body)
	}
	call := n1.call(sid)
	if call.State != ivr.CallStateEnded || call.Outcome != ivr.OutcomeCallerHangup || call.Turn != 5 {
		t.Errorf("call = %+v", call)
	}
	if turns := n1.turns(sid); len(turns) != 3 {
		t.Errorf("turns = %d, want 3 (the duplicate is not a turn)", len(turns))
	}
}

// TestConcurrentEventsOfOneCall delivers the same Record event to two nodes
// at once: the call lock serializes them, one does the work and the other
// answers from the stored response.
func TestConcurrentEventsOfOneCall(t *testing.T) {
	st := storetest.NewSQLite(t)
	n1 := newHarness(t, harnessOptions{store: st, nodeID: "node-a"})
	n2 := newHarness(t, harnessOptions{store: st, nodeID: "node-b", noSetup: true, pre: n1.pre})
	setupRecordings(t, n1)
	const sid = "4000000000000001"
	if code, body := n1.get("demo", "sid="+sid+"&event=NewCall&"+caller); code != http.StatusOK {
		t.Fatalf("NewCall: %d %s", code, body)
	}
	query := "sid=" + sid + "&event=Record&data=" + url.QueryEscape(n1.recs.URL+"/q-hours.wav")
	type result struct {
		code int
		body string
	}
	results := make(chan result, 2)
	for _, h := range []*harness{n1, n2} {
		go func() {
			code, body := h.get("demo", query)
			results <- result{code, body}
		}()
	}
	a, b := <-results, <-results
	if a.code != http.StatusOK || a.body != b.body || !strings.Contains(a.body, "nine in the morning") {
		t.Fatalf("concurrent deliveries answered differently:\n%d %s\n%d %s", a.code, a.body, b.code, b.body)
	}
	if turns := n1.turns(sid); len(turns) != 1 {
		t.Errorf("turns = %d, want 1", len(turns))
	}
}
