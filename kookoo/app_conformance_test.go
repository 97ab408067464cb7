package kookoo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/ivr/bot/remote"
)

const (
	caller = "cid=9704665032&called_number=918065740671&cid_e164=%2B919704665032&cid_type=MOBILE&circle=KARNATAKA&operator=Airtel"
	sid    = "21275806501458167"
)

// conformanceCase is a sequence of KooKoo requests against a fresh app;
// the exchange is compared with testdata/conformance/<name>.golden.
type conformanceCase struct {
	name  string
	opts  func(t *testing.T) harnessOptions
	setup func(t *testing.T, h *harness)
	// steps are "GET identifier?query" or "POST identifier?query|form";
	// {rec} is the recording server's base URL, {sid} the call's sid and
	// {caller} the NewCall caller parameters.
	steps []string
}

// setupRecordings serves the conformance recordings: questions the softphone
// path reports as already transcribed, an empty recording, garbage bytes.
func setupRecordings(t testing.TB, h *harness) {
	for path, text := range map[string]string{
		"/q-hours.wav":    "what are your opening hours",
		"/q-location.wav": "where is your store",
		"/q-agent.wav":    "talk to an agent",
		"/q-silence.wav":  "",
		"/q-screen.wav":   "my screen is broken", // the FAQ bot's confidence 0.505: the confirm band
		"/q-yes.wav":      "yes please",
		"/q-no.wav":       "no",
		"/q-mumble.wav":   "blue sky green", // heard, not understood (the bot falls back)
		"/q-mumble-2.wav": "green sky blue",
	} {
		h.pre.set(h.recs.URL+path, text)
	}
	h.recs.putPCM(t, "/empty.wav", audio.PCM{Rate: audio.SampleRate})
	h.recs.put("/garbage.wav", []byte("this is certainly not a wav or an mp3 file"))
}

func conformanceCases() []conformanceCase {
	nc := "GET demo?event=NewCall&sid={sid}&{caller}"
	rec := func(path string) string {
		return "GET demo?event=Record&sid={sid}&data={rec}" + path + "&status=silence"
	}
	return []conformanceCase{
		{name: "probe", steps: []string{"GET demo?event=NewCall"}},
		{name: "probe_unknown_identifier", steps: []string{"GET nope?event=NewCall"}},
		{name: "unknown_identifier", steps: []string{"GET nope?event=NewCall&sid={sid}&{caller}", "GET nope?event=Hangup&sid={sid}"}},
		{name: "inactive_connection", steps: []string{"GET off?event=NewCall&sid={sid}&{caller}", "GET off?event=Disconnect&sid={sid}"}},
		{name: "new_call", steps: []string{nc}},
		{name: "new_call_post", steps: []string{"POST demo?sid={sid}|event=NewCall&{caller}"}},
		{name: "new_call_event_case", steps: []string{"GET demo?event=newcall&sid={sid}&{caller}"}},
		{name: "record_answered", steps: []string{nc, rec("/q-hours.wav")}},
		{name: "two_questions_then_hangup", steps: []string{nc, rec("/q-hours.wav"), rec("/q-location.wav"),
			"GET demo?event=Hangup&sid={sid}&process=record&total_call_duration=41", "GET demo?event=Disconnect&sid={sid}&process=none"}},
		{name: "empty_recording_offers_menu", steps: []string{nc, rec("/empty.wav"), "GET demo?event=GotDTMF&sid={sid}&data="}},
		{name: "silence_transcript_offers_menu", steps: []string{nc, rec("/q-silence.wav")}},
		{name: "three_empty_recordings_hang_up", steps: []string{nc, rec("/empty.wav"), "GET demo?event=GotDTMF&sid={sid}&data=",
			rec("/q-silence.wav"), "GET demo?event=GotDTMF&sid={sid}&data=", rec("/empty.wav"),
			"GET demo?event=Disconnect&sid={sid}&process=none&total_call_duration=40"}},
		{name: "no_agent_empty_recording_reprompts", steps: []string{"GET noagent?event=NewCall&sid={sid}&{caller}",
			"GET noagent?event=Record&sid={sid}&data={rec}/empty.wav"}},
		{name: "recording_404_then_continue", steps: []string{nc, rec("/missing.wav"), rec("/q-hours.wav")}},
		{name: "recording_garbage", steps: []string{nc, rec("/garbage.wav")}},
		{name: "recording_private_address", steps: []string{nc, "GET demo?event=Record&sid={sid}&data=http://rec.kookoo.test/u/x.wav"}},
		{name: "recording_host_not_allowed", steps: []string{nc, "GET demo?event=Record&sid={sid}&data=http://example.com/x.wav"}},
		{
			name:  "recording_timeout",
			opts:  func(*testing.T) harnessOptions { return harnessOptions{fetchTimeout: 100 * time.Millisecond} },
			steps: []string{nc, rec("/slow/x.wav")},
		},
		{name: "three_failures_hang_up", steps: []string{nc, rec("/missing.wav"), rec("/garbage.wav"), rec("/missing.wav"),
			"GET demo?event=Disconnect&sid={sid}"}},
		{name: "dtmf_agent_not_answered_then_answered", steps: []string{nc, rec("/q-hours.wav"),
			"GET demo?event=GotDTMF&sid={sid}&data=0", "GET demo?event=Dial&sid={sid}&status=not_answered&data=-1&callduration=0",
			rec("/q-location.wav"), "GET demo?event=GotDTMF&sid={sid}&data=0%23",
			"GET demo?event=Dial&sid={sid}&status=answered&data=-1&callduration=75", "GET demo?event=Disconnect&sid={sid}"}},
		{name: "menu_agent_digit", steps: []string{nc, rec("/empty.wav"), "GET demo?event=GotDTMF&sid={sid}&data=0"}},
		{name: "bot_handoff", steps: []string{nc, rec("/q-agent.wav"), "GET demo?event=Hangup&sid={sid}&process=dial&status=answered&data=-1"}},
		{name: "bot_handoff_without_agent", steps: []string{"GET noagent?event=NewCall&sid={sid}&{caller}",
			"GET noagent?event=Record&sid={sid}&data={rec}/q-agent.wav"}},
		{name: "invalid_digit", steps: []string{nc, "GET demo?event=GotDTMF&sid={sid}&data=5"}},
		{name: "follow_up_without_event", steps: []string{nc, "GET demo?sid={sid}"}},
		{name: "duplicate_deliveries", steps: []string{nc, nc, rec("/q-hours.wav"), rec("/q-hours.wav")}},
		{name: "absurd_data_10kB", steps: []string{nc, "GET demo?event=Record&sid={sid}&data=http://x.kookoo.test/" + strings.Repeat("a", 10<<10)}},
		{name: "non_url_data", steps: []string{nc, "GET demo?event=Record&sid={sid}&data=hello"}},
		{name: "unknown_event", steps: []string{nc, "GET demo?event=Explode&sid={sid}"}},
		{name: "unrequested_event", steps: []string{nc, "GET demo?event=Conference&sid={sid}&data=1"}},
		{name: "missing_sid", steps: []string{"GET demo?event=Record&data={rec}/q-hours.wav"}},
		{name: "bad_sid", steps: []string{"GET demo?event=NewCall&sid=..%2F..%2Fetc&{caller}"}},
		{name: "bad_duration_on_hangup_still_ends", steps: []string{nc, "GET demo?event=Hangup&sid={sid}&total_call_duration=abc"}},
		{name: "event_after_end", steps: []string{nc, "GET demo?event=Hangup&sid={sid}&process=record", rec("/q-hours.wav")}},
		{name: "hangup_unknown_call", steps: []string{"GET demo?event=Hangup&sid={sid}&process=none"}},
		{name: "hangup_with_recording", steps: []string{nc, rec("/q-hours.wav"),
			"GET demo?event=Hangup&sid={sid}&process=record&data={rec}/q-location.wav&status=hangup"}},
		{name: "confirmation_yes", steps: []string{nc, rec("/q-screen.wav"), rec("/q-yes.wav"),
			"GET demo?event=Hangup&sid={sid}&process=record"}},
		{name: "confirmation_keys_after_silence", steps: []string{nc, rec("/q-screen.wav"), rec("/empty.wav"),
			"GET demo?event=GotDTMF&sid={sid}&data=1"}},
		{name: "confirmation_no_then_new_question", steps: []string{nc, rec("/q-screen.wav"), rec("/q-no.wav"), rec("/q-hours.wav")}},
		{name: "confirmation_answered_with_a_question", steps: []string{nc, rec("/q-screen.wav"), rec("/q-location.wav")}},
		{name: "not_understood_asks_again_in_speech", steps: []string{nc, rec("/q-mumble.wav")}},
		{name: "topic_menu_after_two_misses", steps: []string{nc, rec("/q-mumble.wav"), rec("/q-mumble-2.wav"),
			"GET demo?event=GotDTMF&sid={sid}&data=2", rec("/q-hours.wav")}},
		{name: "topic_menu_timeout_records_again", steps: []string{nc, rec("/q-mumble.wav"), rec("/empty.wav"),
			"GET demo?event=GotDTMF&sid={sid}&data=", rec("/q-hours.wav")}},
		{name: "record_for_unknown_call", steps: []string{rec("/q-hours.wav")}},
		{name: "dial_event_while_listening", steps: []string{nc, "GET demo?event=Dial&sid={sid}&status=answered"}},
		{name: "disconnect_live_call", steps: []string{nc, "GET demo?event=Disconnect&sid={sid}&message=error"}},
		{
			name: "bot_timeout",
			opts: func(t *testing.T) harnessOptions {
				release := make(chan struct{})
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					select {
					case <-r.Context().Done():
					case <-release:
					}
				}))
				t.Cleanup(func() { close(release); srv.Close() })
				b, err := remote.New(remote.Config{URL: srv.URL + "/webhooks/rest/webhook"})
				if err != nil {
					t.Fatal(err)
				}
				return harnessOptions{bot: b, botTimeout: 100 * time.Millisecond}
			},
			steps: []string{nc, rec("/q-hours.wav")},
		},
	}
}

func TestConformance(t *testing.T) {
	for _, tc := range append(conformanceCases(), apiStepConformanceCases()...) {
		t.Run(tc.name, func(t *testing.T) {
			var o harnessOptions
			if tc.opts != nil {
				o = tc.opts(t)
			}
			o.resolver = mapResolver{
				"localhost":       {netip.MustParseAddr("127.0.0.1")},
				"rec.kookoo.test": {netip.MustParseAddr("10.0.0.5")},
			}
			h := newHarness(t, o)
			setupRecordings(t, h)
			if tc.setup != nil {
				tc.setup(t, h)
			}
			var out bytes.Buffer
			for i, step := range tc.steps {
				step = strings.NewReplacer("{sid}", sid, "{caller}", caller, "{rec}", h.recs.URL).Replace(step)
				method, rest, _ := strings.Cut(step, " ")
				target, form, _ := strings.Cut(rest, "|")
				req := httptest.NewRequest(method, "/kookoo/"+target, strings.NewReader(form))
				if method == http.MethodPost {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				rec := httptest.NewRecorder()
				h.router.ServeHTTP(rec, req)
				res := rec.Result()
				body := rec.Body.String()
				if strings.HasPrefix(body, "<") {
					resp, err := ParseResponse([]byte(body))
					if err != nil {
						t.Fatalf("step %d: answer is not KooKoo XML: %v\n%s", i, err, body)
					}
					if err := resp.Validate(); err != nil {
						t.Fatalf("step %d: answer breaks the protocol: %v\n%s", i, err, body)
					}
				} else if body != "" {
					t.Fatalf("step %d: answer is neither XML nor empty: %q", i, body)
				}
				shown := strings.ReplaceAll(step, h.recs.URL, "{rec}")
				if len(shown) > 300 {
					shown = shown[:300] + fmt.Sprintf("…(%d bytes)", len(shown))
				}
				fmt.Fprintf(&out, "> %s\n< %d %s\n", shown, res.StatusCode, res.Header.Get("Content-Type"))
				if body == "" {
					body = "(empty)"
				}
				fmt.Fprintf(&out, "%s\n\n", strings.ReplaceAll(body, h.recs.URL, "{rec}"))
			}
			dir := filepath.Join("testdata", "conformance")
			if *update {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			checkGolden(t, filepath.Join(dir, tc.name+".golden"), out.Bytes())
		})
	}
}

// TestConformanceStore checks what the conformance exchanges leave in the
// store: calls, outcomes, turns, transcripts and the caller's conversation.
func TestConformanceStore(t *testing.T) {
	ctx := context.Background()
	run := func(t *testing.T, h *harness, queries ...string) {
		t.Helper()
		for _, q := range queries {
			q = strings.NewReplacer("{sid}", sid, "{caller}", caller, "{rec}", h.recs.URL).Replace(q)
			if code, body := h.get("demo", q); code != http.StatusOK {
				t.Fatalf("%s: %d %s", q, code, body)
			}
		}
	}
	nc := "event=NewCall&sid={sid}&{caller}"

	t.Run("answered turns and hang-up", func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		setupRecordings(t, h)
		run(t, h, nc, "event=Record&sid={sid}&data={rec}/q-hours.wav&status=silence",
			"event=Record&sid={sid}&data={rec}/q-hours.wav&status=silence", // duplicate delivery
			"event=Record&sid={sid}&data={rec}/empty.wav",
			"event=Hangup&sid={sid}&process=record&data={rec}/q-location.wav")
		call := h.call(sid)
		if call.State != "ended" || call.Outcome != "caller_hangup" || call.EndedAt.IsZero() || call.Caller != "9704665032" {
			t.Errorf("call = %+v", call)
		}
		turns := h.turns(sid)
		if len(turns) != 3 {
			t.Fatalf("turns = %d, want 3 (the duplicate is not a turn): %+v", len(turns), turns)
		}
		if turns[0].Seq != 1 || turns[0].Transcript != "what are your opening hours" || !strings.Contains(turns[0].Reply, "nine in the morning") ||
			turns[0].MessageID == 0 || turns[0].RecordStatus != "silence" || turns[0].RecordingURL != h.recs.URL+"/q-hours.wav" {
			t.Errorf("turn 1 = %+v", turns[0])
		}
		if turns[1].Transcript != "" || turns[1].EndReason != "no_speech" || turns[1].MessageID != 0 {
			t.Errorf("turn 2 = %+v", turns[1])
		}
		if turns[2].EndReason != "hangup" || turns[2].Transcript != "where is your store" || turns[2].Reply != "" || turns[2].MessageID == 0 {
			t.Errorf("turn 3 = %+v", turns[2])
		}
		conv, err := h.store.GetConversation(ctx, call.ConversationID)
		if err != nil {
			t.Fatal(err)
		}
		if conv.Open {
			t.Error("conversation still open after the hang-up")
		}
		msgs, err := h.store.ListMessages(ctx, conv.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range msgs {
			got = append(got, m.Sender+": "+m.Text)
		}
		want := []string{"user: what are your opening hours", "bot: " + turns[0].Reply, "user: where is your store"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("conversation = %q, want %q", got, want)
		}
		if h.app.ActiveCalls() != 0 {
			t.Errorf("active calls = %d after the end", h.app.ActiveCalls())
		}
	})

	t.Run("failures are recorded with their reason", func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		setupRecordings(t, h)
		run(t, h, nc, "event=Record&sid={sid}&data={rec}/missing.wav", "event=Record&sid={sid}&data={rec}/garbage.wav",
			"event=Record&sid={sid}&data={rec}/missing.wav", "event=Disconnect&sid={sid}")
		call := h.call(sid)
		if call.Outcome != "failed" || call.Failures != 3 {
			t.Errorf("call = %+v", call)
		}
		turns := h.turns(sid)
		if len(turns) != 3 || !strings.HasPrefix(turns[0].Error, "fetch: ") || !strings.HasPrefix(turns[1].Error, "decode: ") {
			b, _ := json.MarshalIndent(turns, "", " ")
			t.Errorf("turns = %s", b)
		}
	})

	t.Run("invalid requests store nothing of themselves", func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		setupRecordings(t, h)
		run(t, h, nc, "event=Record&sid={sid}&data=hello", "event=Record&sid={sid}&data=hello")
		call := h.call(sid)
		if call.Failures != 1 || call.Turn != 2 || len(h.turns(sid)) != 0 {
			t.Errorf("call = %+v turns = %d; a repeated invalid delivery must count once and store no turn", call, len(h.turns(sid)))
		}
		if code, _ := h.get("demo", "event=Record&data=x"); code != http.StatusOK {
			t.Errorf("missing sid answered %d", code)
		}
		if _, err := h.store.GetCall(ctx, ""); err == nil {
			t.Error("a call without sid was stored")
		}
	})

	t.Run("probe has no side effects", func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		run(t, h, "event=NewCall")
		if n, err := h.store.CountActiveCalls(ctx); err != nil || n != 0 {
			t.Errorf("active calls after probe = %d, %v", n, err)
		}
	})
}
