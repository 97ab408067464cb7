package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/sim"
	"github.com/koelvoice/koel/sim/voiceeval"
)

const (
	demoOrderAnswer = "Your order 1042, a pair of wireless earphones, is out for delivery and arrives today."
	demoNotFound    = "I could not find that order"
)

// TestDemoOrderStatusByText: a fresh koel (not in dev mode, so loopback is
// refused to every API step but the demo's own) answers the demo's
// order_status node from its built-in fake order API through the bot API:
// a known order, an unknown one (the not-found reply), the outage (500)
// and the order whose API never answers in time (the break message),
// then the FAQ answers again.
func TestDemoOrderStatusByText(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "", "")
	cfg.Dev = false
	srv := startServer(t, cfg)
	auth := map[string]string{"Authorization": "Bearer " + testToken}
	say := func(text string) string {
		t.Helper()
		status, body := postJSON(t, srv.URL()+"/api/bots/1/converse", auth, fmt.Sprintf(`{"user_id":"shopper","text":%q}`, text))
		if status != http.StatusOK {
			t.Fatalf("%q: %d %s", text, status, body)
		}
		return string(body)
	}
	ask := "please tell me your order number"
	for _, turn := range []struct{ say, want, notWant string }{
		{"where is my order", ask, ""},
		{"1042", demoOrderAnswer, ""},
		{"track my order", ask, ""},
		{"my order number is 2001", "Your order 2001, a smart television, is delivered.", ""},
		{"where is my order", ask, ""},
		{"9999", demoNotFound, ""},
		{"order status", ask, ""},
		{demo.OrderOutage, "Sorry", "Your order"},
		{"order status", ask, ""},
		{demo.OrderSlow, "Sorry", "Your order"},
		{"what are your opening hours", "nine in the morning", ""},
	} {
		start := time.Now()
		got := say(turn.say)
		if !strings.Contains(got, turn.want) || (turn.notWant != "" && strings.Contains(got, turn.notWant)) {
			t.Fatalf("%q answered %s, want %q", turn.say, got, turn.want)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%q took %v: the step's deadline must sit inside the bot timeout", turn.say, took)
		}
	}
	// The fake API itself wants the token koel generated.
	resp, err := http.Get(srv.URL() + "/demo/orders/1042")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the fake order API without its token answered %d, want 401", resp.StatusCode)
	}
}

// TestDemoOrderStatusOverSoftphone is the voice acceptance test: a WebRTC
// caller on the real softphone (pion over loopback, pocketsphinx, espeak-ng)
// asks for order status, keys the order number with RFC 4733 telephone
// events inside KooKoo's <collectdtmf>, and hears the answer from the fake
// order API; an unknown order gets the not-found reply, the order whose API
// never answers gets the break message; a caller who says the number
// during the prompt is asked to say it again and is answered from what the
// closed digits pass heard in the softphone's audio (espeak-ng and flite
// voices).
func TestDemoOrderStatusOverSoftphone(t *testing.T) {
	if testing.Short() {
		t.Skip("a real softphone call")
	}
	cfg := testConfig(t, t.TempDir(), "", "")
	srv := startVoiceServer(t, cfg)
	call := func(t *testing.T, steps ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
		defer cancel()
		args := []string{"--server", srv.URL(), "--connection", "demo", "--timeout", "110s"}
		for _, s := range steps {
			kind, arg, _ := strings.Cut(s, ":")
			args = append(args, "--"+kind, arg)
		}
		var stdout, stderr bytes.Buffer
		if err := sim.RunCLI(ctx, args, &stdout, &stderr); err != nil {
			t.Fatalf("koel call: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
		}
		t.Log("\n" + stdout.String())
		return stdout.String()
	}
	botSaid := func(out string) []string {
		var lines []string
		for _, l := range strings.Split(out, "\n") {
			if s, ok := strings.CutPrefix(l, "bot: "); ok {
				lines = append(lines, s)
			}
		}
		return lines
	}
	// inOrder checks that want appear as bot lines in this order.
	inOrder := func(t *testing.T, out string, want ...string) {
		t.Helper()
		said := botSaid(out)
		i := 0
		for _, s := range said {
			if i < len(want) && strings.Contains(s, want[i]) {
				i++
			}
		}
		if i < len(want) {
			t.Errorf("the caller heard %q; missing %q (in order %q)", said, want[i], want)
		}
	}

	t.Run("keyed", func(t *testing.T) {
		out := call(t, "say:where is my order", "dtmf:1042#", "say:track my order", "dtmf:9999#", "say:where is my order", "dtmf:"+demo.OrderSlow+"#")
		for _, want := range []string{"event: GotDTMF data=1042", "event: GotDTMF data=9999", "event: GotDTMF data=" + demo.OrderSlow} {
			if !strings.Contains(out, want) {
				t.Errorf("the call lacks %q", want)
			}
		}
		inOrder(t, out, "please tell me your order number", demoOrderAnswer,
			"please tell me your order number", demoNotFound,
			"please tell me your order number", "Sorry, something went wrong on our side.")
	})
	t.Run("said during the prompt, then after the tone", func(t *testing.T) {
		// Speech during <collectdtmf> is not recorded (KooKoo does not);
		// the empty GotDTMF asks for it again and the call records it.
		// The softphone transcribes the number itself with the FAQ's
		// vocabulary ("one zero four two" comes back as "one me order")
		// and hands its audio to the voice service, whose closed digits
		// pass reads it again; nothing is downloaded. Each caller is a
		// real synthesizer voice.
		renderer, err := voiceeval.NewRenderer("")
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			synth  voiceeval.Synth
			number string // what the caller says, in digit words
			order  string
		}{
			{voiceeval.Synth{Engine: voiceeval.EngineEspeak, Voice: "en-us"}, "one zero four two", "1042"},
			{voiceeval.Synth{Engine: voiceeval.EngineFlite, Voice: "slt"}, "one zero four two", "1042"},
			{voiceeval.Synth{Engine: voiceeval.EngineEspeak, Voice: "en-us+f3"}, "three one one three", "3113"},
		} {
			t.Run(tc.synth.String(), func(t *testing.T) {
				if err := voiceeval.Available(tc.synth.Engine); err != nil {
					t.Skip(err)
				}
				t.Parallel()
				dir := t.TempDir()
				wav := func(name, text string) string {
					t.Helper()
					pcm, err := renderer.Speech(t.Context(), tc.synth, text)
					if err != nil {
						t.Fatal(err)
					}
					var b bytes.Buffer
					if err := audio.EncodeWAV(&b, pcm, audio.EncodingPCM16); err != nil {
						t.Fatal(err)
					}
					path := filepath.Join(dir, name+".wav")
					if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
						t.Fatal(err)
					}
					return "wav:" + path
				}
				number := wav("number", tc.number)
				out := call(t, wav("question", "where is my order"), number, number)
				if !strings.Contains(out, "event: GotDTMF\n") {
					t.Errorf("the key collection did not time out empty")
				}
				inOrder(t, out, "please tell me your order number", "Please say it after the tone.")
				i := strings.Index(out, "Please say it after the tone.")
				if i < 0 {
					t.Fatal("the caller was not asked to say the number")
				}
				after := out[i:]
				heard, recURL := lineValue(after, "event: heard "), lineValue(after, "event: Record data=")
				if heard == "" || recURL == "" {
					t.Fatalf("the number said after the tone was not recorded and heard")
				}
				recURL, _, _ = strings.Cut(recURL, " ")
				sid, _, _ := strings.Cut(lineValue(out, "event: call sid="), " ")
				turn := turnOf(t, srv, sid, recURL)
				// What the voice service took as the caller's words: the
				// digits pass's reading (digit words only) when it heard
				// more digits than the softphone's transcript.
				value := faq.CollectedValue(turn.Transcript)
				t.Logf("%s said %q: the softphone heard %s, the turn %q (value %q, %d ms of recognition)",
					tc.synth, tc.number, heard, turn.Transcript, value, turn.STTMS)
				if ivr.CountDigits(turn.Transcript) == 0 || !onlyDigitWords(turn.Transcript) {
					t.Errorf("turn transcript %q is not a digits reading", turn.Transcript)
				}
				want := demoNotFound
				switch value {
				case "1042":
					want = demoOrderAnswer
				case "2001", "3113":
					want = "Your order " + value
				}
				inOrder(t, after, want)
				// Measured: 9 of 9 calls (three runs of these three callers)
				// heard the number exactly.
				if value != tc.order {
					t.Errorf("%s said order %s; the call heard %q", tc.synth, tc.order, value)
				}
			})
		}
	})
}

// lineValue returns what follows prefix on the first line of out that
// starts with it ("" if none).
func lineValue(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), prefix); ok {
			return v
		}
	}
	return ""
}

// turnOf returns the stored turn of call sid that recorded recURL.
func turnOf(t *testing.T, srv *Server, sid, recURL string) ivr.Turn {
	t.Helper()
	turns, err := srv.store.ListTurns(context.Background(), sid)
	if err != nil {
		t.Fatalf("turns of %q: %v", sid, err)
	}
	for _, tr := range turns {
		if tr.RecordingURL == recURL {
			return tr
		}
	}
	t.Fatalf("call %q has no turn for %s (turns %+v)", sid, recURL, turns)
	return ivr.Turn{}
}

// onlyDigitWords reports whether every word of text is a digit or a digit
// word: the closed digits vocabulary's reading.
func onlyDigitWords(text string) bool {
	for _, w := range strings.Fields(text) {
		if ivr.CountDigits(w) != 1 && strings.Trim(w, "0123456789") != "" {
			return false
		}
	}
	return true
}
