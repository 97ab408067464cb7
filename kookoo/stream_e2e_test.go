package kookoo

import (
	"github.com/koelvoice/koel/audio"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/koelvoice/koel/ivr"
)

// TestStreamFakeKooKoo calls koel in stream mode from a fake KooKoo that
// speaks the documented frames: the welcome, two demo questions answered,
// the second one barging in on the first answer, a request for an agent
// that leaves the stream, and event=Stream answered with <dial>. The
// stored turns are those of record mode.
func TestStreamFakeKooKoo(t *testing.T) {
	sh := newStreamHarness(t, harnessOptions{stt: newSphinx(t), logger: testLog(t)}, StreamConfig{})
	sid := sidN(1)
	st := sh.newCall(t, "live", sid)
	if !strings.HasPrefix(st.URL, "ws://127.0.0.1:") || !strings.Contains(st.URL, "/kookoo/live/stream?token=") || st.SIPNumber != "524431" {
		t.Fatalf("stream verb = %+v", st)
	}
	f := dialFake(t, st.URL, sid, true)
	f.waitQuiet(t, 100, 1500*time.Millisecond, "the welcome")

	spoken := []audio.PCM{telephone(t, "what are your opening hours"), telephone(t, "what is your address"), telephone(t, "i want to talk to an agent")}
	f.say(spoken[0].Samples)
	// Let the first answer play for a while, then speak over it.
	waitFor(t, 20*time.Second, "the first question sent", func() bool { _, _, _, mic := f.snapshot(); return mic == 0 })
	played0, _, _, _ := f.snapshot()
	waitFor(t, 20*time.Second, "the first answer to play", func() bool { p, _, _, _ := f.snapshot(); return p > played0+60 })
	f.say(spoken[1].Samples)
	waitFor(t, 10*time.Second, "clearBuffer", func() bool { return f.hasCommand(CommandClearBuffer) })
	played1, _, _, _ := f.snapshot()
	f.waitQuiet(t, played1+100, 1500*time.Millisecond, "the second answer")

	f.say(spoken[2].Samples)
	status, reason := f.waitClosed(t, 30*time.Second)
	if status != 1000 {
		t.Fatalf("stream closed with %v (%s), want a normal close", status, reason)
	}
	if b := f.bad(); b != "" {
		t.Fatalf("the app sent a packet KooKoo refuses: %s", b)
	}

	code, body := sh.get("live", "event=Stream&sid="+sid)
	r := xmlOf(t, "Stream", code, body)
	if d, ok := last(r).(Dial); !ok || d.Number != demoSettings.AgentNumber || len(r.Verbs) != 1 {
		for _, tr := range sh.turns(sid) {
			t.Logf("turn %d: %q (%.2f) -> %q", tr.Seq, tr.Transcript, tr.Confidence, tr.Reply)
		}
		t.Fatalf("event=Stream answered %s, want only the <dial>", body)
	}
	code, body = sh.get("live", "event=Dial&sid="+sid+"&status=answered&data=http://x.kookoo.test/d.mp3&callduration=30")
	if code != http.StatusOK {
		t.Fatalf("Dial: %d %s", code, body)
	}
	sh.get("live", "event=Hangup&sid="+sid+"&process=dial&status=answered")
	call := sh.call(sid)
	if call.State != ivr.CallStateEnded || call.Outcome != ivr.OutcomeTransferred {
		t.Errorf("call = %+v", call)
	}
	turns := sh.turns(sid)
	if len(turns) != 3 {
		t.Fatalf("turns = %+v, want 3", turns)
	}
	for i, want := range []string{"nine in the morning", "Residency Road", "connect you"} {
		tr := turns[i]
		if !strings.Contains(tr.Reply, want) || tr.Transcript == "" || tr.MessageID == 0 {
			t.Errorf("turn %d = %+v, want a reply with %q", i+1, tr, want)
		}
		t.Logf("turn %d: %q -> %q status %s speech %d ms stt %d ms total %d ms", tr.Seq, tr.Transcript, tr.Reply, tr.RecordStatus, tr.SpeechMS, tr.STTMS, tr.TotalMS)
		if i == 1 {
			// The barge-in turn keeps only the last second before the
			// barge-in was detected: its speech is part of what was played.
			if tr.SpeechMS <= 0 || tr.SpeechMS > spoken[i].Duration().Milliseconds() || tr.STTMS <= 0 {
				t.Errorf("barge-in turn: speech_ms %d stt_ms %d, want within the %v played and a recogniser time", tr.SpeechMS, tr.STTMS, spoken[i].Duration())
			}
			continue
		}
		checkTurnTimings(t, tr, spoken[i].Duration())
	}
	if !strings.HasPrefix(turns[1].RecordStatus, "barge_in:silence:heard_ms=") {
		t.Errorf("turn 2 status %q does not record the barge-in", turns[1].RecordStatus)
	}
	if n := testutil.ToFloat64(sh.stream.m.bargeIns); n != 1 {
		t.Errorf("barge-ins = %v, want 1", n)
	}
	if n, sum := histogram(t, sh.stream.m.replyLatency); n != 3 {
		t.Errorf("reply latency observed %d times, want 3 (one per answered turn)", n)
	} else {
		t.Logf("end of turn -> first reply packet: mean %.0f ms over %d turns", sum/float64(n)*1000, n)
	}
	if n := testutil.ToFloat64(sh.stream.m.fallbacks); n != 0 {
		t.Errorf("fallbacks = %v", n)
	}
	if sh.stream.ActiveStreams() != 0 {
		t.Errorf("%d streams still active", sh.stream.ActiveStreams())
	}
}

// histogram returns the sample count and sum of h.
func histogram(t testing.TB, h prometheus.Histogram) (uint64, float64) {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// checkTurnTimings asserts that a turn answered from a transport's own
// transcript stores its timings as record mode does: speech_ms close to
// the length of the speech the caller played (the end-pointer's span of
// voiced frames: at most the played audio, and most of it), and a
// non-zero recogniser time below the turn's total.
func checkTurnTimings(t *testing.T, tr ivr.Turn, played time.Duration) {
	t.Helper()
	speech := time.Duration(tr.SpeechMS) * time.Millisecond
	if speech < played/2 || speech > played+100*time.Millisecond {
		t.Errorf("turn %d: speech_ms %d, want close to the %d ms played", tr.Seq, tr.SpeechMS, played.Milliseconds())
	}
	if tr.STTMS <= 0 || tr.STTMS > ivr.DefaultTurnTimeout.Milliseconds() {
		t.Errorf("turn %d: stt_ms %d, want a recogniser time above 0 and within the turn timeout", tr.Seq, tr.STTMS)
	}
}
