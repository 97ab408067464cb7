package sim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// realOffer makes a complete offer the way the CLI does.
func realOffer(t *testing.T) (string, *webrtc.PeerConnection) {
	t.Helper()
	api, err := newAPI(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.CreateDataChannel(eventChannelLabel, nil); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-done
	return pc.LocalDescription().SDP, pc
}

// dataOnlyOffer is an offer with a DataChannel and no audio.
func dataOnlyOffer(t *testing.T) string {
	t.Helper()
	api, err := newAPI(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.CreateDataChannel("koel", nil); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}

func postOffer(t *testing.T, ts *testServer, body any) (int, string) {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	ctype := "application/json"
	if s, ok := body.(string); ok && strings.HasPrefix(s, "text:") {
		ctype, b = "text/plain", []byte(strings.TrimPrefix(s, "text:"))
	}
	resp, err := http.Post(ts.srv.URL+"/sim/offer", ctype, strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&e)
	if _, old := e["error"]; old {
		t.Errorf("error body %v uses \"error\"; the documented key is \"error_message\"", e)
	}
	return resp.StatusCode, e["error_message"]
}

func TestOfferRejectsBadInput(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	app := httptest.NewServer(http.NotFoundHandler())
	defer app.Close()
	ts := startSim(t, func(c *Config) {
		c.AllowURL = func(u *url.URL) error {
			if strings.HasPrefix(u.Host, "10.") {
				return errors.New("private address")
			}
			return allowHTTP(u)
		}
	})
	good, _ := realOffer(t)
	cases := []struct {
		name     string
		body     any
		wantCode int
		wantMsg  string
	}{
		{"not json", "{", 400, "body"},
		{"text/plain post", "text:{}", 415, "application/json"},
		{"malformed sdp", offerRequest{SDP: "v=0\r\nthis is not sdp", AppURL: app.URL}, 400, "malformed SDP"},
		{"empty sdp", offerRequest{AppURL: app.URL}, 400, "malformed SDP"},
		{"no audio", offerRequest{SDP: dataOnlyOffer(t), AppURL: app.URL}, 400, "no PCMU audio"},
		{"no app", offerRequest{SDP: good}, 400, "give a connection or an app_url"},
		{"both apps", offerRequest{SDP: good, AppURL: app.URL, Connection: "demo"}, 400, "not both"},
		{"connection without in-process app", offerRequest{SDP: good, Connection: "demo"}, 400, "no in-process app"},
		{"bad connection name", offerRequest{SDP: good, Connection: "../etc"}, 400, "not a valid identifier"},
		{"url refused by policy", offerRequest{SDP: good, AppURL: "http://10.0.0.1/app"}, 400, "url not allowed"},
		{"url with bad scheme", offerRequest{SDP: good, AppURL: "file:///etc/passwd"}, 400, "url not allowed"},
		{"negative silence", offerRequest{SDP: good, AppURL: app.URL, SilencePeriod: -1}, 400, "silence_period"},
		{"huge max record", offerRequest{SDP: good, AppURL: app.URL, MaxRecordTime: 1e9}, 400, "max_record_time"},
		{"bad caller", offerRequest{SDP: good, AppURL: app.URL, Caller: "call me"}, 400, "not a phone number"},
		{"answer not offer", offerRequest{SDP: good, AppURL: app.URL, Type: "answer"}, 400, "is not \"offer\""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := postOffer(t, ts, tc.body)
			if code != tc.wantCode || !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("got %d %q, want %d containing %q", code, msg, tc.wantCode, tc.wantMsg)
			}
		})
	}
	if n := ts.sim.ActiveCalls(); n != 0 {
		t.Errorf("ActiveCalls = %d after refused offers, want 0", n)
	}
}

func TestOfferCapAnswers503(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("event") == "NewCall" {
			xmlResponse(w, `<response><record silence="5" maxduration="30">x</record></response>`)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer app.Close()
	ts := startSim(t, func(c *Config) { c.MaxCalls = 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api, err := newAPI(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := dialSim(ctx, api, clientConfig{Server: ts.srv.URL, AppURL: app.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.hangup()
	if n := ts.sim.ActiveCalls(); n != 1 {
		t.Fatalf("ActiveCalls = %d, want 1", n)
	}
	_, err = dialSim(ctx, api, clientConfig{Server: ts.srv.URL, AppURL: app.URL})
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "too many concurrent calls (limit 1)") {
		t.Fatalf("second call: %v, want 503 too many concurrent calls", err)
	}
}

// failingApps answer NewCall badly; the emulator must play the error
// prompt, hang up and say why.
func TestAppFailuresEndTheCallWithAReason(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	cases := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"invalid xml", func(w http.ResponseWriter, r *http.Request) { xmlResponse(w, "<response><playtext>unclosed") }, "invalid KooKoo XML"},
		{"not xml", func(w http.ResponseWriter, r *http.Request) { xmlResponse(w, "hello") }, "invalid KooKoo XML"},
		{"server error", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, "status 500"},
		{"timeout", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, "deadline exceeded"},
		{"too large", func(w http.ResponseWriter, r *http.Request) {
			xmlResponse(w, "<response><playtext>"+strings.Repeat("a", 5000)+"</playtext></response>")
		}, "response over"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := httptest.NewServer(tc.handler)
			defer app.Close()
			ts := startSim(t, func(c *Config) { c.AppTimeout = 700 * time.Millisecond; c.MaxAppBodyBytes = 4096 })
			out, _, err := callApp(t, ts, app.URL, []step{{"say", "hello"}}, false)
			if !errors.Is(err, ErrCallFailed) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("call error = %v, want ErrCallFailed containing %q", err, tc.want)
			}
			if !strings.Contains(out, "bot: "+errorPrompt) {
				t.Errorf("the error prompt was not played:\n%s", out)
			}
			if !strings.Contains(out, "event: hangup by error") {
				t.Errorf("the hangup does not say why:\n%s", out)
			}
		})
	}
}

func TestPlayAudioUnsupportedIsSkipped(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	log := newAppLog()
	var app *httptest.Server
	app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad.wav" {
			_, _ = w.Write([]byte("RIFF\x10\x00\x00\x00WAVEjunkjunk"))
			return
		}
		q := log.add(r)
		switch q["event"] {
		case "NewCall":
			xmlResponse(w, `<response><playaudio>`+app.URL+`/bad.wav</playaudio><playtext>After the audio.</playtext><hangup/></response>`)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer app.Close()
	ts := startSim(t, nil)
	out, _, err := callApp(t, ts, app.URL, []step{{"none", ""}}, false)
	if err == nil || !strings.Contains(out, "error: playaudio") || !strings.Contains(out, "bot: After the audio.") {
		t.Errorf("want the bad audio reported and skipped; err=%v\n%s", err, out)
	}
	if got := log.waitEvents(t, 2); got[1] != "Disconnect" {
		t.Errorf("app saw %v, want NewCall, Disconnect", got)
	}
}

func TestCLIRejectsBadFlagsAndFiles(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.wav")
	if err := os.WriteFile(bad, []byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x03\x00\x01\x00\x40\x1f\x00\x00\x00\x7d\x00\x00\x04\x00\x20\x00data\x00\x00\x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no app", []string{"--say", "hi"}, "exactly one of --connection or --app"},
		{"two apps", []string{"--connection", "demo", "--app", "http://x", "--say", "hi"}, "exactly one"},
		{"bad dial outcome", []string{"--connection", "demo", "--dial", "engaged"}, "--dial"},
		{"bad dtmf", []string{"--connection", "demo", "--dtmf", "12x"}, "not up to 32 DTMF keys"},
		{"stray arg", []string{"--connection", "demo", "--say", "hi", "extra"}, "unexpected argument"},
		{"unknown flag", []string{"--bogus"}, "flag provided but not defined"},
		{"missing wav", []string{"--connection", "demo", "--wav", filepath.Join(dir, "nope.wav")}, "no such file"},
		{"unsupported wav", []string{"--connection", "demo", "--wav", bad}, bad},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			err := runCLI(context.Background(), tc.args, &stdout, &stderr, cliDeps{tts: testTTS(t)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
