package sim

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/audiotest"
)

// callApp runs a script against an app URL and returns the CLI output and
// the script's error.
func callApp(t *testing.T, ts *testServer, appURL string, steps []step, hangupEarly bool) (string, *client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	api, err := newAPI(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := dialSim(ctx, api, clientConfig{Server: ts.srv.URL, AppURL: appURL, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := &script{steps: steps, clips: make([]audio.PCM, len(steps)), tts: testTTS(t), out: &out, hangupAfterLast: hangupEarly}
	runErr := sc.run(ctx, c)
	if err := c.hangup(); err != nil {
		t.Errorf("hangup: %v", err)
	}
	t.Log("\n" + out.String())
	return out.String(), c, runErr
}

func toneWAV(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := audio.EncodeWAV(&b, audiotest.Tone(600*time.Millisecond, 440, -12), audio.EncodingPCM16); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestEmulatorConformance checks that a KooKoo app using collectdtmf,
// playaudio, gotourl, record and hangup sees exactly the event sequence of
// the spec (§3.1, §3.2, §3.4): GotDTMF with the key, a follow-up with no
// event after a play-only response, GotDTMF with empty data on timeout sent
// to the gotourl target, Record with the recording URL, Disconnect after
// <hangup/>.
func TestEmulatorConformance(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	log := newAppLog()
	wav := toneWAV(t)
	audioFetched := make(chan struct{}, 1)
	var app *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("/tone.wav", func(w http.ResponseWriter, r *http.Request) {
		audioFetched <- struct{}{}
		w.Header().Set("Content-Type", "audio/wav")
		_, _ = w.Write(wav)
	})
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) {
		q := log.add(r)
		q["path"] = "/a"
		switch q["event"] {
		case "NewCall":
			xmlResponse(w, `<response sid="`+q["sid"]+`"><playtext>Main menu.</playtext><collectdtmf l="1" t="#" o="3000"><playtext>Press a key.</playtext></collectdtmf></response>`)
		case "GotDTMF":
			xmlResponse(w, `<response><playaudio>`+app.URL+`/tone.wav</playaudio></response>`)
		case "(none)":
			xmlResponse(w, `<Response><CollectDtmf l="2" o="400"><PlayText>Enter two digits.</PlayText></CollectDtmf><GoToUrl>`+app.URL+`/b?state=second</GoToUrl></Response>`)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	mux.HandleFunc("/b", func(w http.ResponseWriter, r *http.Request) {
		q := log.add(r)
		switch q["event"] {
		case "GotDTMF":
			xmlResponse(w, `<response><record format="wav" silence="1" maxduration="8">answer</record></response>`)
		case "Record":
			xmlResponse(w, `<response><playtext>Goodbye.</playtext><hangup/></response>`)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	app = httptest.NewServer(mux)
	defer app.Close()
	ts := startSim(t, nil)

	out, _, err := callApp(t, ts, app.URL+"/a", []step{{"dtmf", "5"}, {"none", ""}, {"say", "my answer is yes"}}, false)
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	reqs := log.all()
	log.waitEvents(t, 6)
	reqs = log.all()
	type seen struct{ event, data, state string }
	var got []seen
	for _, q := range reqs {
		data := q["data"]
		if q["event"] == "Record" {
			data = strings.TrimPrefix(data, ts.srv.URL+"/sim/recordings/")[:len("answer-")]
		}
		got = append(got, seen{q["event"], data, q["state"]})
	}
	want := []seen{
		{"NewCall", "", ""},
		{"GotDTMF", "5", ""},
		{"(none)", "", ""},
		{"GotDTMF", "", "second"},
		{"Record", "answer-", "second"},
		{"Disconnect", "", "second"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("app saw\n%v\nwant\n%v", got, want)
	}
	for i, q := range reqs {
		if q["parse_error"] != "" {
			t.Errorf("request %d does not parse as KooKoo: %s", i, q["parse_error"])
		}
		if q["sid"] == "" || q["sid"] != reqs[0]["sid"] || q["cid"] == "" || q["called_number"] == "" {
			t.Errorf("request %d lacks sid/cid/called_number or changes sid: %v", i, q)
		}
	}
	if _, ok := reqs[3]["data"]; !ok {
		t.Errorf("GotDTMF after a timeout has no data parameter; KooKoo sends data empty: %v", reqs[3])
	}
	if reqs[4]["status"] != "silence" {
		t.Errorf("Record status = %q, want silence", reqs[4]["status"])
	}
	if reqs[5]["process"] == "" || reqs[5]["total_call_duration"] == "" {
		t.Errorf("Disconnect lacks process/total_call_duration: %v", reqs[5])
	}
	select {
	case <-audioFetched:
	default:
		t.Error("playaudio URL was never fetched")
	}
	// The recording is served where the Record event said.
	resp, err := http.Get(reqs[4]["data"])
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rec, err := audio.DecodeWAV(resp.Body, 10<<20)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("recording: status %d, %v", resp.StatusCode, err)
	}
	if d := rec.Duration(); d < 500*time.Millisecond {
		t.Errorf("recording lasts %v, want the caller's words", d)
	}
	if !strings.Contains(out, "event: keys \"5\"") || !strings.Contains(out, "event: keys \"\"") {
		t.Errorf("output lacks the collected keys")
	}
}

// TestHangupDuringRecordKeepsPartialRecording hangs up while a <record> is
// still listening: the app gets Hangup with process=record and the partial
// recording's URL in data (§3.3).
func TestHangupDuringRecordKeepsPartialRecording(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	log := newAppLog()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := log.add(r)
		if q["event"] == "NewCall" {
			xmlResponse(w, `<response><playtext>Leave a message.</playtext><record silence="8" maxduration="30">msg</record></response>`)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer app.Close()
	ts := startSim(t, nil)

	// The caller speaks, then hangs up before 8 s of silence end the record.
	_, _, err := callApp(t, ts, app.URL, []step{{"say", "this message is cut short"}}, true)
	_ = err // the script ends when the media ends; what matters is what the app saw
	got := log.waitEvents(t, 2)
	if !slices.Equal(got, []string{"NewCall", "Hangup"}) {
		t.Fatalf("app saw %v, want [NewCall Hangup]", got)
	}
	h := log.all()[1]
	if h["process"] != "record" {
		t.Errorf("Hangup process = %q, want record", h["process"])
	}
	if h["status"] != "hangup" {
		t.Errorf("Hangup status = %q, want hangup", h["status"])
	}
	resp, err := http.Get(h["data"])
	if err != nil {
		t.Fatalf("partial recording %q: %v", h["data"], err)
	}
	defer resp.Body.Close()
	rec, err := audio.DecodeWAV(resp.Body, 10<<20)
	if err != nil {
		t.Fatalf("partial recording: %v", err)
	}
	if d := rec.Duration(); d < time.Second {
		t.Errorf("partial recording lasts %v, want at least the caller's words", d)
	}
}

// TestDialOutcomeIsConfigurable: <dial> ends at once with the configured
// outcome (§1.3 Dial: data -1 when not recorded, status, callduration).
func TestDialOutcomeIsConfigurable(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	log := newAppLog()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := log.add(r)
		switch q["event"] {
		case "NewCall":
			xmlResponse(w, `<response><say-as format="501">12</say-as><dial>09876543210</dial></response>`)
		case "Dial":
			xmlResponse(w, `<response><hangup/></response>`)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer app.Close()
	ts := startSim(t, func(c *Config) { c.DialOutcome = DialAnswered })
	// The app hangs up before the caller gets a turn, so the script reports
	// an early end; what matters is what the app saw.
	out, _, _ := callApp(t, ts, app.URL, []step{{"none", ""}}, false)
	got := log.waitEvents(t, 3)
	if !slices.Equal(got, []string{"NewCall", "Dial", "Disconnect"}) {
		t.Fatalf("app saw %v", got)
	}
	d := log.all()[1]
	if d["status"] != "answered" || d["data"] != "-1" || d["callduration"] != "0" {
		t.Errorf("Dial request %v, want status=answered data=-1 callduration=0", d)
	}
	if !strings.Contains(out, "bot: one two") || !strings.Contains(out, "event: dial *******3210 (simulated answered)") {
		t.Errorf("output lacks say-as speech or the dial:\n%s", out)
	}
}
