package kookoo

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/ivr"
)

// heardAs is what passSTT hears in a recording, by vocabulary.
type heardAs struct {
	open, closed stt.Result
}

// passSTT is a recogniser whose answer depends on the recording (told apart
// by its length in samples) and on whether the vocabulary is closed (the
// yes/no pass). It records the vocabularies it was started with.
type passSTT struct {
	mu     sync.Mutex
	byLen  map[int]heardAs
	vocabs []string
}

func (p *passSTT) Start(_ context.Context, v stt.Vocabulary) (stt.Stream, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.vocabs = append(p.vocabs, v.Key)
	return &passStream{p: p, closed: v.Closed}, nil
}

type passStream struct {
	p      *passSTT
	closed bool
	n      int
}

func (s *passStream) Write(pcm []int16) error { s.n += len(pcm); return nil }
func (s *passStream) Partial() string         { return "" }
func (s *passStream) Close(context.Context) (stt.Result, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	h := s.p.byLen[s.n]
	if s.closed {
		return h.closed, nil
	}
	return h.open, nil
}

// TestConfirmYesNoPass: in the confirming state a reply the open
// vocabulary does not read as a yes or a no is decoded again with the
// closed yes/no vocabulary, on record mode's recording and on the audio the
// softphone holds (whose own transcript came with the event; its recording
// is never downloaded). A yes or no the pass hears at
// ivr.YesNoMinConfidence decides; anything else leaves the open pass's
// reading.
func TestConfirmYesNoPass(t *testing.T) {
	res := func(text string, conf float64) stt.Result {
		return stt.Result{Text: text, Confidence: conf, Words: len(strings.Fields(text))}
	}
	const repairAnswer = "You can book a repair at any store"
	cases := []struct {
		name      string
		heard     heardAs
		softphone bool // the transport's own transcript is heard.open
		// held is whether the softphone still holds the reply's audio.
		held      bool
		wantBand  string
		wantSay   string
		wantWords string // the caller's stored transcript
		wantPass  bool   // the yes/no vocabulary was used
	}{
		{name: "yes lost by the open pass", heard: heardAs{res("you", 0.45), res("yes", 1)},
			wantBand: ivr.UnderstandingConfirmed, wantSay: repairAnswer, wantWords: "yes", wantPass: true},
		{name: "yes heard as an unsure no", heard: heardAs{res("no", 0.28), res("yes", 1)},
			wantBand: ivr.UnderstandingConfirmed, wantSay: repairAnswer, wantWords: "yes", wantPass: true},
		{name: "an unsure no the pass confirms", heard: heardAs{res("no", 0.28), res("no", 0.9)},
			wantBand: ivr.UnderstandingDeclined, wantSay: "", wantWords: "no", wantPass: true},
		{name: "yes heard as nothing", heard: heardAs{res("", 0), res("yeah", 0.9)},
			wantBand: ivr.UnderstandingConfirmed, wantSay: repairAnswer, wantWords: "yeah", wantPass: true},
		{name: "no", heard: heardAs{res("know", 0.3), res("no", 1)},
			wantBand: ivr.UnderstandingDeclined, wantSay: "", wantWords: "no", wantPass: true},
		{name: "yes heard by the open pass needs no second pass", heard: heardAs{res("yes please", 0.9), res("no", 1)},
			wantBand: ivr.UnderstandingConfirmed, wantSay: repairAnswer, wantWords: "yes please"},
		// flite slt's spoken yes scores 0.34 in the closed vocabulary:
		// under the open pass's minimum, at the pass's own.
		{name: "yes at the pass's minimum", heard: heardAs{res("you", 0.45), res("yeah", ivr.YesNoMinConfidence+0.04)},
			wantBand: ivr.UnderstandingConfirmed, wantSay: repairAnswer, wantWords: "yeah", wantPass: true},
		{name: "pass unsure: the open reading stands", heard: heardAs{res("you", 0.45), res("yes", ivr.YesNoMinConfidence-0.05)},
			wantBand: ivr.UnderstandingConfirm, wantWords: "you", wantPass: true},
		{name: "a new question is not an answer", heard: heardAs{res("when are you open on sunday", 1), res("you not", 0.21)},
			wantBand: ivr.UnderstandingAnswered, wantSay: "Our stores are open", wantWords: "when are you open on sunday", wantPass: true},
		// The softphone transcribed the reply itself and hands the audio it
		// holds: the pass decodes that, and its recording is not fetched
		// (the fast path stays download-free).
		{name: "softphone: yes lost by its transcript", softphone: true, held: true, heard: heardAs{res("you", 0.45), res("yes", 1)},
			wantBand: ivr.UnderstandingConfirmed, wantSay: repairAnswer, wantWords: "yes", wantPass: true},
		{name: "softphone: no heard as nothing", softphone: true, held: true, heard: heardAs{res("", 0), res("no", 1)},
			wantBand: ivr.UnderstandingDeclined, wantWords: "no", wantPass: true},
		{name: "softphone: yes in its transcript needs no second pass", softphone: true, held: true, heard: heardAs{res("yes", 0.9), res("no", 1)},
			wantBand: ivr.UnderstandingConfirmed, wantSay: repairAnswer, wantWords: "yes"},
		{name: "softphone: pass unsure", softphone: true, held: true, heard: heardAs{res("you", 0.45), res("yes", ivr.YesNoMinConfidence-0.05)},
			wantBand: ivr.UnderstandingConfirm, wantWords: "you", wantPass: true},
		// A recording the softphone no longer holds (expired) gets no
		// pass, and is still not fetched.
		{name: "softphone: audio no longer held", softphone: true, heard: heardAs{res("you", 0.45), res("yes", 1)},
			wantBand: ivr.UnderstandingConfirm, wantWords: "you"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const questionLen, replyLen = 8000, 4000
			fake := &passSTT{byLen: map[int]heardAs{
				// In the confirm band of the demo FAQ's repair node ("my
				// screen is broken" is answered outright since the demo
				// FAQ's "broken screen").
				questionLen: {open: res("my tv is broken", 0.9)},
				replyLen:    tc.heard,
			}}
			h := newHarness(t, harnessOptions{stt: fake})
			q := h.recs.putPCM(t, "/question.wav", audio.PCM{Rate: audio.SampleRate, Samples: make([]int16, questionLen)})
			reply := h.recs.putPCM(t, "/reply.wav", audio.PCM{Rate: audio.SampleRate, Samples: make([]int16, replyLen)})
			if tc.softphone {
				h.pre.m = map[string]stt.Result{reply: tc.heard.open}
				if tc.held {
					h.pre.held = map[string][]int16{reply: make([]int16, replyLen)}
				}
			}
			sid := "42000000000001" + string(rune('0'+i/10)) + string(rune('0'+i%10))
			var last string
			for _, step := range []string{
				"sid=" + sid + "&event=NewCall&" + caller,
				"sid=" + sid + "&event=Record&data=" + url.QueryEscape(q),
				"sid=" + sid + "&event=Record&data=" + url.QueryEscape(reply),
			} {
				code, body := h.get("demo", step)
				if code != http.StatusOK {
					t.Fatalf("%s: %d %s", step, code, body)
				}
				last = body
			}
			turns := h.turns(sid)
			if len(turns) != 2 || turns[0].Understanding != ivr.UnderstandingConfirm {
				t.Fatalf("turns %+v, want a confirmation then the reply", turns)
			}
			if got := turns[1]; got.Understanding != tc.wantBand || got.Transcript != tc.wantWords {
				t.Errorf("reply turn band %q transcript %q, want %q %q", got.Understanding, got.Transcript, tc.wantBand, tc.wantWords)
			}
			if tc.wantSay != "" && !strings.Contains(last, tc.wantSay) {
				t.Errorf("reply %s, want it to say %q", last, tc.wantSay)
			}
			pass := false
			for _, k := range fake.vocabs {
				pass = pass || k == ivr.YesNoVocabulary().Key
			}
			if pass != tc.wantPass {
				t.Errorf("yes/no pass used %v, want %v (vocabularies %q)", pass, tc.wantPass, fake.vocabs)
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

// Every phrase of the yes/no pass's vocabulary reads as a yes or a no.
func TestYesNoVocabularyReadsAsAnswers(t *testing.T) {
	v := ivr.YesNoVocabulary()
	if !v.Closed || v.Key == "" {
		t.Fatalf("vocabulary %+v, want a closed one with a key", v)
	}
	for _, p := range v.Phrases {
		if ivr.YesNo(p) == "" {
			t.Errorf("phrase %q is neither a yes nor a no", p)
		}
	}
}
