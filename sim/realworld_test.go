package sim

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/koelvoice/koel/audio"
)

// These tests reproduce what public KooKoo apps do (the official PHP and
// Java samples, written anew in Go, none of their code): state in a
// session cookie, the PHP library's addRecord format string where the
// silence goes, play-only responses and the follow-up request, filler,
// dial loops, gotourl to a second app and conference. Each asserts the
// exact requests the app saw and what the caller heard.

// sessionApp keeps per-session state behind a cookie, as PHP's
// session_start() does: a request without the cookie starts a new session.
type sessionApp struct {
	mu       sync.Mutex
	name     string // cookie name
	next     int
	sessions map[string]map[string]string
}

func newSessionApp(cookie string) *sessionApp {
	return &sessionApp{name: cookie, sessions: map[string]map[string]string{}}
}

// session returns the request's session, making one (and setting the
// cookie) when the request has none; fresh reports a new session.
func (a *sessionApp) session(w http.ResponseWriter, r *http.Request) (sess map[string]string, fresh bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, err := r.Cookie(a.name); err == nil {
		if s, ok := a.sessions[c.Value]; ok {
			return s, false
		}
	}
	a.next++
	id := fmt.Sprintf("%s-%d", a.name, a.next)
	a.sessions[id] = map[string]string{}
	http.SetCookie(w, &http.Cookie{Name: a.name, Value: id, Path: "/", HttpOnly: true})
	return a.sessions[id], true
}

func (a *sessionApp) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.sessions)
}

// callWith runs steps against cfg (Server filled in) and returns the CLI
// output, the client and the script's error.
func callWith(t *testing.T, ts *testServer, cfg clientConfig, steps []step) (string, *client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	api, err := newAPI(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server, cfg.Logger = ts.srv.URL, testLogger(t)
	c, err := dialSim(ctx, api, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := &script{steps: steps, clips: make([]audio.PCM, len(steps)), tts: testTTS(t), out: &out}
	if err := sc.prepare(ctx); err != nil {
		t.Fatal(err)
	}
	runErr := sc.run(ctx, c)
	if err := c.hangup(); err != nil {
		t.Errorf("hangup: %v", err)
	}
	t.Log("\n" + out.String())
	return out.String(), c, runErr
}

func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l+"\n") {
			t.Errorf("output lacks the line %q", l)
		}
	}
}

// TestRealWorldSessionCookieAdder is the PHP adder: state in the PHP
// session, a cookie set on a redirect, two numbers, the sum. Without the
// cookie the app answers an empty body (PHP notices and no output). A
// second call must start its own session.
func TestRealWorldSessionCookieAdder(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	log := newAppLog()
	sess := newSessionApp("PHPSESSID")
	var cookies []string
	var mu sync.Mutex
	mux := http.NewServeMux()
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		// The entry URL sets the session on a redirect to the app.
		st, _ := sess.session(w, r)
		st["via"] = "redirect"
		http.Redirect(w, r, "/adder.php?"+r.URL.RawQuery, http.StatusFound)
	})
	mux.HandleFunc("/adder.php", func(w http.ResponseWriter, r *http.Request) {
		q := log.add(r)
		mu.Lock()
		cookies = append(cookies, r.Header.Get("Cookie"))
		mu.Unlock()
		st, fresh := sess.session(w, r)
		switch {
		case q["event"] == "NewCall":
			st["state"] = "first"
			xmlResponse(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<response><collectdtmf t="#" o="4000"><playtext speed="2" lang="EN" quality="best">Welcome to adder. Please enter your first number. Terminate with hash</playtext></collectdtmf></response>`)
		case fresh:
			w.WriteHeader(http.StatusOK) // PHP: undefined index, no output
		case q["event"] == "GotDTMF" && st["state"] == "first":
			st["state"], st["first"] = "second", q["data"]
			xmlResponse(w, `<response><collectdtmf t="#" o="4000"><playtext speed="2" lang="EN" quality="best">Please enter the second number. Terminate with hash</playtext></collectdtmf></response>`)
		case q["event"] == "GotDTMF" && st["state"] == "second":
			a, _ := strconv.Atoi(st["first"])
			b, _ := strconv.Atoi(q["data"])
			xmlResponse(w, fmt.Sprintf(`<response><playtext speed="2" lang="EN" quality="best">your total is %d</playtext><hangup/></response>`, a+b))
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	app := httptest.NewServer(mux)
	defer app.Close()
	ts := startSim(t, nil)

	out, _, err := callWith(t, ts, clientConfig{AppURL: app.URL + "/start"}, []step{{"dtmf", "12#"}, {"dtmf", "30#"}})
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	got := log.waitEvents(t, 4)
	if !slices.Equal(got, []string{"NewCall", "GotDTMF", "GotDTMF", "Disconnect"}) {
		t.Fatalf("app saw %v", got)
	}
	if d := []string{log.all()[1]["data"], log.all()[2]["data"]}; !slices.Equal(d, []string{"12", "30"}) {
		t.Errorf("GotDTMF data %v, want [12 30]", d)
	}
	wantBot := []string{
		"Welcome to adder. Please enter your first number. Terminate with hash",
		"Please enter the second number. Terminate with hash",
		"your total is 42",
	}
	if b := botLines(out); !slices.Equal(b, wantBot) {
		t.Errorf("the caller heard %q, want %q", b, wantBot)
	}
	mu.Lock()
	for i, c := range cookies {
		if c != "PHPSESSID=PHPSESSID-1" {
			t.Errorf("request %d to the app carried cookies %q, want the session set on the redirect", i, c)
		}
	}
	mu.Unlock()

	// A second call is a new caller: no cookie from the first call.
	if _, _, err := callWith(t, ts, clientConfig{AppURL: app.URL + "/start"}, []step{{"dtmf", "1#"}, {"dtmf", "2#"}}); err != nil {
		t.Fatalf("second call: %v", err)
	}
	log.waitEvents(t, 8)
	if n := sess.count(); n != 2 {
		t.Errorf("%d sessions after two calls, want 2 (one per call)", n)
	}
	mu.Lock()
	if c := cookies[4]; c != "PHPSESSID=PHPSESSID-2" {
		t.Errorf("second call's first app request carried %q, want its own new session", c)
	}
	mu.Unlock()
}

// recordApp is the PHP "Record and playback" snippet: playtext, then
// addRecord('filename2','wav','120'), which puts "wav" where the silence
// goes; on Record it plays the recording back and hangs up.
func recordApp(log *appLog) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := log.add(r)
		switch q["event"] {
		case "NewCall":
			xmlResponse(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<response><playtext lang="EN" speed="2" quality="best">Please record your message after beep </playtext><record silence="wav" maxduration="120" termchar="#">filename2</record></response>`)
		case "Record":
			xmlResponse(w, `<response><playtext lang="EN" speed="2" quality="best">your recorded audio is </playtext><playaudio>`+q["data"]+`</playaudio><playtext lang="EN" speed="2" quality="best">Thank you for calling, have a nice day</playtext><hangup/></response>`)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}
}

// TestRealWorldRecordFormatStringInSilence: silence="wav" falls back to
// KooKoo's default (4 s) with a warning naming tag, attribute, value and
// default; the call goes on. With --strict the same response ends the call.
func TestRealWorldRecordFormatStringInSilence(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	log := newAppLog()
	app := httptest.NewServer(recordApp(log))
	defer app.Close()
	ts := startSim(t, nil)

	out, c, err := callWith(t, ts, clientConfig{AppURL: app.URL}, []step{{"say", "this is my message for the record"}})
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	got := log.waitEvents(t, 3)
	if !slices.Equal(got, []string{"NewCall", "Record", "Disconnect"}) {
		t.Fatalf("app saw %v", got)
	}
	rec := log.all()[1]
	if rec["status"] != "silence" || !strings.HasPrefix(rec["data"], ts.srv.URL+"/sim/recordings/filename2-") {
		t.Errorf("Record request %v, want status=silence and the recording URL", rec)
	}
	wantLines(t, out, `warning: <record> silence="wav" is not an integer; KooKoo's default 4 is used`)
	// The record ended after KooKoo's 4 s of silence, not the 5 s initial
	// silence or the 120 s maxduration.
	if !strings.Contains(out, "event: turn end=silence") {
		t.Errorf("the record did not end on silence")
	}
	wantBot := []string{"Please record your message after beep", "your recorded audio is", "[audio " + rec["data"] + "]", "Thank you for calling, have a nice day"}
	if b := botLines(out); !slices.Equal(b, wantBot) {
		t.Errorf("the caller heard %q, want %q", b, wantBot)
	}
	// The playback is the caller's own words: the bot's audio is longer
	// than the prompts alone.
	if d := c.botAudio().Duration(); d < 5*time.Second {
		t.Errorf("the caller heard %v of audio, want prompts plus the playback", d)
	}

	// --strict: the same response is an error, and the call ends there.
	slog := newAppLog()
	strictApp := httptest.NewServer(recordApp(slog))
	defer strictApp.Close()
	out, _, err = callWith(t, ts, clientConfig{AppURL: strictApp.URL, Strict: true}, []step{{"say", "hello"}})
	if err == nil || !strings.Contains(err.Error(), `--strict: <record> silence="wav" is not an integer`) {
		t.Errorf("strict call error = %v, want the silence attribute named", err)
	}
	if !strings.Contains(out, "event: hangup by error") {
		t.Errorf("strict call did not end with an error:\n%s", out)
	}
}

// TestRealWorldPlaytextOnlyThenNothing is "Playback dynamic text": three
// playtexts with the PHP library's speed/lang/quality attributes, then the
// follow-up request, answered with <response/> (the PHP sample) or a body
// of white space (the Java sample's JSP). KooKoo ends the call and tells
// the app with Disconnect; the emulator says why.
func TestRealWorldPlaytextOnlyThenNothing(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ts := startSim(t, nil)
	for _, tc := range []struct {
		name, followUp, warning string
	}{
		{"php empty response", `<?xml version="1.0" encoding="UTF-8"?>` + "\n<response/>\n", ""},
		{"jsp white space", "\n\n   \n", "warning: <response> is missing: the body is empty; read as <response/>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := newAppLog()
			app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				q := log.add(r)
				w.Header().Set("Content-Type", "text/xml")
				if q["event"] != "NewCall" {
					_, _ = w.Write([]byte(tc.followUp))
					return
				}
				_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<response><playtext lang="EN" speed="2" quality="best">Press 1 for English</playtext><playtext lang="HI" speed="4" quality="normal">Press 2 for Hindi</playtext><playtext lang="KA" speed="9" quality="best">Press 3 for Kannada</playtext></response>`))
			}))
			defer app.Close()
			out, c, err := callWith(t, ts, clientConfig{AppURL: app.URL}, nil)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			got := log.waitEvents(t, 3)
			if !slices.Equal(got, []string{"NewCall", "(none)", "Disconnect"}) {
				t.Fatalf("app saw %v, want NewCall, the follow-up, Disconnect", got)
			}
			if d := log.all()[2]; d["process"] != "none" || d["total_call_duration"] == "" {
				t.Errorf("Disconnect %v, want process=none and total_call_duration", d)
			}
			if b := botLines(out); !slices.Equal(b, []string{"Press 1 for English", "Press 2 for Hindi", "Press 3 for Kannada"}) {
				t.Errorf("the caller heard %q", b)
			}
			wantLines(t, out, "event: (follow-up, no event)", "event: the app returned no further verbs; the call ends")
			if !strings.Contains(out, "event: hangup by app: the app returned no further verbs; the call ends (frames late") {
				t.Errorf("the hangup does not say the app ended the call")
			}
			if d := c.botAudio().Duration(); d < 2*time.Second {
				t.Errorf("the caller heard %v of audio, want the three prompts", d)
			}
			if strings.Contains(out, errorPrompt) {
				t.Errorf("the call blamed the app:\n%s", out)
			}
			if tc.warning == "" && strings.Contains(out, "warning:") {
				t.Errorf("unexpected warning:\n%s", out)
			}
			if tc.warning != "" {
				wantLines(t, out, tc.warning)
			}
		})
	}
}

// TestRealWorldFillerAndPlayOnlyMenus is demo.php's flow: every response
// has filler="yes"; key 2 answers with nothing but filler (KooKoo requests
// the app again, which serves the next menu from the session); no input
// answers with a play-only response, and the follow-up serves the menu.
func TestRealWorldFillerAndPlayOnlyMenus(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	log := newAppLog()
	sess := newSessionApp("PHPSESSID")
	menu := `<response filler="yes"><collectdtmf l="1" o="4000"><playtext speed="4" lang="EN" quality="best">press 1 for record, press 2 to dial</playtext></collectdtmf></response>`
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := log.add(r)
		st, _ := sess.session(w, r)
		switch {
		case q["event"] == "Disconnect" || q["event"] == "Hangup":
		case q["event"] == "NewCall" || st["next"] == "menu":
			st["next"] = "check"
			xmlResponse(w, menu)
		case q["event"] == "GotDTMF" && st["next"] == "check" && q["data"] == "":
			st["next"] = "menu"
			xmlResponse(w, `<response filler="yes"><playtext speed="2" lang="EN" quality="best">you have not entered any input</playtext></response>`)
		case q["event"] == "GotDTMF" && st["next"] == "check" && q["data"] == "2":
			st["next"] = "dialmenu"
			xmlResponse(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<response filler="yes"/>`)
		case st["next"] == "dialmenu":
			st["next"] = "done"
			xmlResponse(w, `<response filler="yes"><playtext>dial menu</playtext><hangup/></response>`)
		default:
			xmlResponse(w, `<response filler="yes"><playtext>Sorry, session and events not maintained properly</playtext><hangup/></response>`)
		}
	}))
	defer app.Close()
	ts := startSim(t, nil)

	// The caller lets the first menu time out, then presses 2.
	out, _, err := callWith(t, ts, clientConfig{AppURL: app.URL}, []step{{"none", ""}, {"dtmf", "2"}})
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	got := log.waitEvents(t, 6)
	want := []string{"NewCall", "GotDTMF", "(none)", "GotDTMF", "(none)", "Disconnect"}
	if !slices.Equal(got, want) {
		t.Fatalf("app saw %v, want %v", got, want)
	}
	wantLines(t, out, `event: filler="yes" with nothing to do: KooKoo requests the app again`)
	wantBot := []string{"press 1 for record, press 2 to dial", "you have not entered any input", "press 1 for record, press 2 to dial", "dial menu"}
	if b := botLines(out); !slices.Equal(b, wantBot) {
		t.Errorf("the caller heard %q, want %q", b, wantBot)
	}
}

// dialLoopApp is "Collecting mobile number and dialing out": collect a
// number, dial it with record=true; on not_answered dial again (the PHP
// sample redials for ever; this one stops after three tries).
func dialLoopApp(log *appLog) http.HandlerFunc {
	tries := 0
	return func(w http.ResponseWriter, r *http.Request) {
		q := log.add(r)
		dial := `<dial record="true" limittime="1000" timeout="30" moh="default" promptToCalledNumber="no" caller_id="">%s</dial>`
		switch q["event"] {
		case "NewCall":
			xmlResponse(w, `<response><collectdtmf l="15" t="#" o="4000"><playtext speed="3">please enter the number that you want to dial followed by hash</playtext></collectdtmf></response>`)
		case "GotDTMF":
			xmlResponse(w, `<response><playtext>please wait while we transfer your call</playtext>`+fmt.Sprintf(dial, q["data"])+`</response>`)
		case "Dial":
			if q["status"] == "answered" {
				xmlResponse(w, `<response><playtext>Thank you for calling</playtext><hangup/></response>`)
				return
			}
			if tries++; tries < 3 {
				xmlResponse(w, `<response>`+fmt.Sprintf(dial, "99999999")+`</response>`)
				return
			}
			xmlResponse(w, `<response><playtext>nobody answered, status `+q["status"]+`</playtext><hangup/></response>`)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}
}

// TestRealWorldDialOutcomes drives every branch of a dial app: a redial
// loop on not_answered, busy, and answered with a chosen call duration and
// the dial recording.
func TestRealWorldDialOutcomes(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ts := startSim(t, nil)
	for _, tc := range []struct {
		outcome  string
		duration float64
		want     []string
		lastBot  string
	}{
		{DialNotAnswered, 0, []string{"NewCall", "GotDTMF", "Dial", "Dial", "Dial", "Disconnect"}, "nobody answered, status not_answered"},
		{DialBusy, 0, []string{"NewCall", "GotDTMF", "Dial", "Dial", "Dial", "Disconnect"}, "nobody answered, status busy"},
		{DialAnswered, 1, []string{"NewCall", "GotDTMF", "Dial", "Disconnect"}, "Thank you for calling"},
	} {
		t.Run(tc.outcome, func(t *testing.T) {
			log := newAppLog()
			app := httptest.NewServer(dialLoopApp(log))
			defer app.Close()
			out, _, err := callWith(t, ts, clientConfig{AppURL: app.URL, DialOutcome: tc.outcome, DialDuration: tc.duration},
				[]step{{"dtmf", "09876543210#"}})
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			got := log.waitEvents(t, len(tc.want))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("app saw %v, want %v", got, tc.want)
			}
			reqs := log.all()
			if reqs[1]["data"] != "09876543210" {
				t.Errorf("GotDTMF data %q", reqs[1]["data"])
			}
			d := reqs[2]
			if d["status"] != tc.outcome {
				t.Errorf("Dial status %q, want %q", d["status"], tc.outcome)
			}
			if tc.outcome == DialAnswered {
				if d["callduration"] != "1" {
					t.Errorf("Dial callduration %q, want 1", d["callduration"])
				}
				resp, err := http.Get(d["data"])
				if err != nil {
					t.Fatalf("dial recording %q: %v", d["data"], err)
				}
				defer resp.Body.Close()
				rec, err := audio.DecodeWAV(resp.Body, 1<<20)
				if err != nil || rec.Duration() != time.Second {
					t.Errorf("dial recording: %v, %v; want 1 s", rec.Duration(), err)
				}
			} else if d["data"] != "-1" || d["callduration"] != "0" {
				t.Errorf("Dial %v, want data=-1 callduration=0", d)
			}
			if b := botLines(out); len(b) == 0 || b[len(b)-1] != tc.lastBot {
				t.Errorf("the caller last heard %q, want %q", b, tc.lastBot)
			}
			if strings.Count(out, "(simulated "+tc.outcome+")") != strings.Count(strings.Join(tc.want, " "), "Dial") {
				t.Errorf("output does not show each simulated dial")
			}
		})
	}
}

// TestRealWorldGotoURLToSecondApp is demo.php's option 4: <gotourl> alone
// moves the call to a second app, which gets the follow-up request, then
// every later request. Cookies stay with their host: the first app's
// session cookie never reaches the second app.
func TestRealWorldGotoURLToSecondApp(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	log := newAppLog()
	first := newSessionApp("FIRST")
	second := newSessionApp("SECOND")
	var secondCookies []string
	var mu sync.Mutex
	appB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.RawQuery += "&app=B" // before log.add: its maps are shared
		q := log.add(r)
		mu.Lock()
		secondCookies = append(secondCookies, r.Header.Get("Cookie"))
		mu.Unlock()
		st, _ := second.session(w, r)
		switch {
		case q["event"] == "(none)":
			st["state"] = "menu"
			xmlResponse(w, `<response><collectdtmf l="1" o="4000"><playtext>welcome to the other url, press a key</playtext></collectdtmf></response>`)
		case q["event"] == "GotDTMF" && st["state"] == "menu":
			xmlResponse(w, `<response><playtext>you pressed `+q["data"]+` in the second app</playtext><hangup/></response>`)
		case q["event"] == "Disconnect":
		default:
			xmlResponse(w, `<response><playtext>no session in the second app</playtext><hangup/></response>`)
		}
	}))
	defer appB.Close()
	// The second app is reached by another host name (localhost), so the
	// cookie jar must keep the hosts apart.
	bURL, _ := url.Parse(appB.URL)
	bURL.Host = "localhost:" + bURL.Port()
	appA := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.RawQuery += "&app=A"
		q := log.add(r)
		first.session(w, r)
		if q["event"] == "NewCall" {
			xmlResponse(w, `<response filler="yes"><playtext>moving you to the other app</playtext><gotourl>`+bURL.String()+`/demo_gotopage.php</gotourl></response>`)
			return
		}
		xmlResponse(w, `<response><playtext>still in the first app</playtext><hangup/></response>`)
	}))
	defer appA.Close()
	ts := startSim(t, nil)

	out, _, err := callWith(t, ts, clientConfig{AppURL: appA.URL}, []step{{"dtmf", "3"}})
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	log.waitEvents(t, 4)
	var got []string
	for _, q := range log.all() {
		got = append(got, q["app"]+":"+q["event"])
	}
	if want := []string{"A:NewCall", "B:(none)", "B:GotDTMF", "B:Disconnect"}; !slices.Equal(got, want) {
		t.Fatalf("apps saw %v, want %v", got, want)
	}
	wantBot := []string{"moving you to the other app", "welcome to the other url, press a key", "you pressed 3 in the second app"}
	if b := botLines(out); !slices.Equal(b, wantBot) {
		t.Errorf("the caller heard %q, want %q", b, wantBot)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"", "SECOND=SECOND-1", "SECOND=SECOND-1"}; !slices.Equal(secondCookies, want) {
		t.Errorf("the second app got cookies %q, want %q (its own only)", secondCookies, want)
	}
}

// conferenceApp is the PHP conference snippet: a pin, then the PHP
// library's <conference> with caller_id="", record, version and
// timeout="-1"; after the Conference event it says goodbye.
func conferenceApp(log *appLog) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := log.add(r)
		switch q["event"] {
		case "NewCall":
			xmlResponse(w, `<response><collectdtmf l="4" t="#" o="4000"><playtext speed="3">please enter the conference number followed by hash</playtext></collectdtmf></response>`)
		case "GotDTMF":
			xmlResponse(w, `<response><playtext>Please be online while we connect you</playtext><conference caller_id="" record="true" version="1" timeout="-1">`+q["data"]+`</conference></response>`)
		case "Conference":
			xmlResponse(w, `<response><playtext>you left the conference</playtext><hangup/></response>`)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}
}

// TestRealWorldConference: the caller joins, leaves with # (KooKoo's
// Conference event), or stays for the chosen conference duration.
func TestRealWorldConference(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ts := startSim(t, nil)
	for _, tc := range []struct {
		name  string
		cfg   clientConfig
		steps []step
	}{
		{"leaves with hash", clientConfig{}, []step{{"dtmf", "1234#"}, {"dtmf", "#"}}},
		{"chosen duration", clientConfig{ConferenceDuration: 0.3}, []step{{"dtmf", "1234#"}, {"none", ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := newAppLog()
			app := httptest.NewServer(conferenceApp(log))
			defer app.Close()
			tc.cfg.AppURL = app.URL
			out, _, err := callWith(t, ts, tc.cfg, tc.steps)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			got := log.waitEvents(t, 4)
			if want := []string{"NewCall", "GotDTMF", "Conference", "Disconnect"}; !slices.Equal(got, want) {
				t.Fatalf("app saw %v, want %v", got, want)
			}
			wantLines(t, out, "event: conference 1234 (simulated; # leaves)", "event: listening (conference)")
			if b := botLines(out); len(b) != 3 || b[2] != "you left the conference" {
				t.Errorf("the caller heard %q", b)
			}
			if strings.Contains(out, "warning:") {
				t.Errorf("the PHP library's documented conference attributes drew a warning:\n%s", out)
			}
		})
	}
}

// TestInProcessAppKeepsCookies: koel's own router, served in process,
// gets the call's cookies back like an app over HTTP.
func TestInProcessAppKeepsCookies(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	log := newAppLog()
	sess := newSessionApp("KOELSESS")
	var cookies []string
	var mu sync.Mutex
	app := http.NewServeMux()
	app.HandleFunc("/kookoo/inproc", func(w http.ResponseWriter, r *http.Request) {
		q := log.add(r)
		mu.Lock()
		cookies = append(cookies, r.Header.Get("Cookie"))
		mu.Unlock()
		_, fresh := sess.session(w, r)
		switch {
		case q["event"] == "NewCall":
			xmlResponse(w, `<response><collectdtmf l="1" o="3000"><playtext>press a key</playtext></collectdtmf></response>`)
		case fresh:
			xmlResponse(w, `<response><playtext>no session</playtext><hangup/></response>`)
		default:
			xmlResponse(w, `<response><playtext>session kept</playtext><hangup/></response>`)
		}
	})
	ts := startSim(t, func(c *Config) { c.App = app })
	out, _, err := callWith(t, ts, clientConfig{Connection: "inproc"}, []step{{"dtmf", "1"}})
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	if got := log.waitEvents(t, 3); !slices.Equal(got, []string{"NewCall", "GotDTMF", "Disconnect"}) {
		t.Fatalf("app saw %v", got)
	}
	if b := botLines(out); !slices.Equal(b, []string{"press a key", "session kept"}) {
		t.Errorf("the caller heard %q", b)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"", "KOELSESS=KOELSESS-1", "KOELSESS=KOELSESS-1"}; !slices.Equal(cookies, want) {
		t.Errorf("in-process requests carried %q, want %q", cookies, want)
	}
}

// TestHangupDuringDialReportsTheDial: the caller hangs up while an
// answered <dial> talks; the app gets Hangup with process=dial and the
// dial's data and status (PHP-DEMO: "If User Hangup the Call on Dial event
// You will get below paramters also").
func TestHangupDuringDialReportsTheDial(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	log := newAppLog()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if q := log.add(r); q["event"] == "NewCall" {
			xmlResponse(w, `<response><dial record="false" timeout="30">09876543210</dial></response>`)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer app.Close()
	ts := startSim(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api, _ := newAPI(testLogger(t))
	c, err := dialSim(ctx, api, clientConfig{Server: ts.srv.URL, AppURL: app.URL, DialOutcome: DialAnswered, DialDuration: 600})
	if err != nil {
		t.Fatal(err)
	}
	// Hang up once the dial is answered (the ring is over).
	for ev := range c.events {
		if ev.Type == EventInfo && strings.HasPrefix(ev.Text, "dial answered") {
			break
		}
	}
	if err := c.hangup(); err != nil {
		t.Errorf("hangup: %v", err)
	}
	if got := log.waitEvents(t, 2); !slices.Equal(got, []string{"NewCall", "Hangup"}) {
		t.Fatalf("app saw %v", got)
	}
	h := log.all()[1]
	if h["process"] != "dial" || h["status"] != DialAnswered || h["data"] != "-1" {
		t.Errorf("Hangup %v, want process=dial status=answered data=-1", h)
	}
}
