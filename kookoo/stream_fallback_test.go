package kookoo

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// TestStreamHangupDuringStream: the caller hangs up while the first answer
// plays (stop, then KooKoo's Hangup with process=stream): the call ends and
// the answered turn is stored.
func TestStreamHangupDuringStream(t *testing.T) {
	sh := newStreamHarness(t, harnessOptions{stt: newSphinx(t)}, StreamConfig{})
	sid := sidN(50)
	f := dialFake(t, sh.newCall(t, "live", sid).URL, sid, true)
	f.waitQuiet(t, 100, 1500*time.Millisecond, "the welcome")
	played, _, _, _ := f.snapshot()
	f.say(telephone(t, "what are your opening hours").Samples)
	waitFor(t, 20*time.Second, "the answer to play", func() bool { p, _, _, _ := f.snapshot(); return p > played+50 })
	f.hangUp()
	waitFor(t, 5*time.Second, "the session to end", func() bool { return sh.stream.ActiveStreams() == 0 })
	if code, body := sh.get("live", "event=Hangup&sid="+sid+"&process=stream&total_call_duration=12"); code != http.StatusOK || body != "" {
		t.Fatalf("Hangup answered %d %q, want an empty 200", code, body)
	}
	if c := sh.call(sid); c.State != ivr.CallStateEnded || c.Outcome != ivr.OutcomeCallerHangup {
		t.Errorf("call = %+v", c)
	}
	turns := sh.turns(sid)
	if len(turns) != 1 || !strings.Contains(turns[0].Reply, "nine in the morning") {
		t.Fatalf("turns = %+v", turns)
	}
}

// TestStreamFallbackSecondNode: the stream breaks while the caller is
// speaking; the turn is still answered and stored, and the next
// event=Stream, served by a second node on the same PostgreSQL, goes on in
// record mode: the reply, then a <record> that the second node transcribes.
func TestStreamFallbackSecondNode(t *testing.T) {
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
	n1 := newStreamHarness(t, harnessOptions{store: open(), nodeID: "node-a", stt: newSphinx(t)}, StreamConfig{})
	n2 := newStreamHarness(t, harnessOptions{store: open(), nodeID: "node-b", stt: newSphinx(t), noSetup: true}, StreamConfig{})
	sid := sidN(60)
	f := dialFake(t, n1.newCall(t, "live", sid).URL, sid, true)
	f.waitQuiet(t, 100, 1500*time.Millisecond, "the welcome")
	f.say(telephone(t, "what are your opening hours").Samples)
	// Kill the socket before the end-pointer's silence period is over.
	waitFor(t, 20*time.Second, "the question to be sent", func() bool { _, _, _, mic := f.snapshot(); return mic == 0 })
	_ = f.ws.CloseNow()
	waitFor(t, 20*time.Second, "node A's session to end", func() bool { return n1.stream.ActiveStreams() == 0 })

	code, body := n2.get("live", "event=Stream&sid="+sid)
	r := xmlOf(t, "Stream on node B", code, body)
	if rec, ok := last(r).(Record); !ok || rec.Name != sid+"-2" || !strings.Contains(spoken(r), "nine in the morning") {
		t.Fatalf("event=Stream on node B answered %s, want the reply and the next <record>", body)
	}
	if n := testutil.ToFloat64(n2.stream.m.fallbacks); n != 1 {
		t.Errorf("node B fallbacks = %v", n)
	}
	u := n2.recs.putPCM(t, "/rec/"+sid+"-2.wav", telephone(t, "what is your address"))
	code, body = n2.get("live", "event=Record&sid="+sid+"&status=silence&data="+u)
	r = xmlOf(t, "Record on node B", code, body)
	if !strings.Contains(spoken(r), "Residency Road") {
		t.Fatalf("Record on node B answered %s (turns %+v)", body, n2.turns(sid))
	}
	turns := n2.turns(sid)
	if len(turns) != 2 || !strings.Contains(turns[0].Reply, "nine in the morning") || turns[0].RecordStatus != "hangup" ||
		turns[1].RecordingURL != u || !strings.Contains(turns[1].Reply, "Residency Road") {
		t.Fatalf("turns = %+v", turns)
	}
}
