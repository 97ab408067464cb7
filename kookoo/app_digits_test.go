package kookoo

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/ivr"
)

// TestCollectDigitsPass: an order number said (not keyed) while the value
// is collected, which the open vocabulary does not read as digits, is
// decoded again with the closed digits vocabulary; the pass's reading, at
// the minimum confidence and with more digits than the open one, is the
// value. An unsure pass, or one that hears fewer digits, leaves the open
// reading. On the softphone, whose own transcript comes with the event, the
// pass decodes the audio the softphone holds; nothing is downloaded.
func TestCollectDigitsPass(t *testing.T) {
	res := func(text string, conf float64) stt.Result {
		return stt.Result{Text: text, Confidence: conf, Words: len(strings.Fields(text))}
	}
	const found, notFound = "Your order 1042", "I could not find that order"
	cases := []struct {
		name      string
		heard     heardAs
		softphone bool // the softphone's transcript is heard.open, its audio held
		wantSay   string
		wantPass  bool
	}{
		{name: "digits lost by the open pass", heard: heardAs{res("and zero for two", 0.8), res("one zero four two", 1)},
			wantSay: found, wantPass: true},
		{name: "pass unsure: the open reading stands", heard: heardAs{res("and zero for two", 0.8), res("one zero four two", 0.2)},
			wantSay: notFound, wantPass: true},
		{name: "open pass heard more digits", heard: heardAs{res("it is one zero four two", 0.9), res("nine nine", 1)},
			wantSay: found, wantPass: true},
		{name: "softphone: digits lost by its transcript", softphone: true, heard: heardAs{res("and zero for two", 0.8), res("one zero four two", 1)},
			wantSay: found, wantPass: true},
		{name: "softphone: pass unsure", softphone: true, heard: heardAs{res("and zero for two", 0.8), res("one zero four two", 0.2)},
			wantSay: notFound, wantPass: true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const questionLen, replyLen = 8000, 4000
			fake := &passSTT{byLen: map[int]heardAs{
				questionLen: {open: res("where is my order", 0.95)},
				replyLen:    tc.heard,
			}}
			opts := apiStepOptions(t)
			opts.stt = fake
			h := newHarness(t, opts)
			q := h.recs.putPCM(t, "/question.wav", audio.PCM{Rate: audio.SampleRate, Samples: make([]int16, questionLen)})
			reply := h.recs.putPCM(t, "/reply.wav", audio.PCM{Rate: audio.SampleRate, Samples: make([]int16, replyLen)})
			if tc.softphone {
				h.pre.m = map[string]stt.Result{reply: tc.heard.open}
				h.pre.held = map[string][]int16{reply: make([]int16, replyLen)}
			}
			sid := "43000000000001" + string(rune('0'+i/10)) + string(rune('0'+i%10))
			var bodies []string
			for _, step := range []string{
				"sid=" + sid + "&event=NewCall&" + caller,
				"sid=" + sid + "&event=Record&status=silence&data=" + url.QueryEscape(q),
				"sid=" + sid + "&event=GotDTMF&data=",
				"sid=" + sid + "&event=Record&status=silence&data=" + url.QueryEscape(reply),
			} {
				code, body := h.get("demo", step)
				if code != http.StatusOK {
					t.Fatalf("%s: %d %s", step, code, body)
				}
				bodies = append(bodies, body)
			}
			if !strings.Contains(bodies[1], "<collectdtmf") {
				t.Fatalf("the order question answered %s, want the order number collected", bodies[1])
			}
			if last := bodies[3]; !strings.Contains(last, tc.wantSay) {
				t.Errorf("reply %s, want it to say %q", last, tc.wantSay)
			}
			pass := false
			for _, k := range fake.vocabs {
				pass = pass || k == ivr.DigitsVocabulary().Key
			}
			if pass != tc.wantPass {
				t.Errorf("digits pass used %v, want %v (vocabularies %q)", pass, tc.wantPass, fake.vocabs)
			}
			wantFetches := int64(2) // the question and the reply
			if tc.softphone {
				wantFetches = 1
			}
			if got := h.recs.hits.Load(); got != wantFetches {
				t.Errorf("%d recordings downloaded, want %d", got, wantFetches)
			}
		})
	}
}

func TestCountDigits(t *testing.T) {
	for _, tc := range []struct {
		text string
		want int
	}{
		{"one zero four two", 4}, {"order 1042 please", 4}, {"it is oh nine", 2},
		{"and zero for two", 2}, {"and for to", 0}, {"", 0}, {"where is my order", 0}, {"BL-1042", 4},
	} {
		if got := ivr.CountDigits(tc.text); got != tc.want {
			t.Errorf("CountDigits(%q) = %d, want %d", tc.text, got, tc.want)
		}
	}
}
