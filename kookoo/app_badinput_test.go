package kookoo

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/audiotest"
	"github.com/koelvoice/koel/ivr"
)

// music is a few seconds of a synthetic tune: chords of three sines that
// change every 400 ms, with a beat, at a loud but unclipped level.
func music(d time.Duration) audio.PCM {
	chords := [][3]float64{{262, 330, 392}, {294, 370, 440}, {220, 277, 330}, {196, 247, 294}}
	n := int(d.Seconds() * audio.SampleRate)
	out := make([]int16, n)
	for i := range out {
		c := chords[(i/(audio.SampleRate*2/5))%len(chords)]
		t := float64(i) / audio.SampleRate
		v := 0.0
		for _, hz := range c {
			v += math.Sin(2 * math.Pi * hz * t)
		}
		beat := 0.6 + 0.4*math.Exp(-8*math.Mod(t, 0.5))
		out[i] = int16(v / 3 * beat * 9000)
	}
	return audio.PCM{Rate: audio.SampleRate, Samples: out}
}

// clip drives p into hard clipping: gain, then the 16-bit rails.
func clip(p audio.PCM, gain float64) audio.PCM {
	out := make([]int16, len(p.Samples))
	for i, s := range p.Samples {
		out[i] = int16(max(-32768, min(32767, float64(s)*gain)))
	}
	return audio.PCM{Rate: p.Rate, Samples: out}
}

func wavBytes(t *testing.T, p audio.PCM, enc audio.Encoding) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := audio.EncodeWAV(&b, p, enc); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestBadInputRecordings sends recordings no caller should get a wrong
// answer for, through the real recogniser and FAQ bot (issue 8, "Bad
// input"): silence, music, noise, clipped speech, a 1 s and a 60 s
// recording, and files whose header lies about their format. Each gets a
// re-prompt, a confirmation, the break message or the right answer, never
// an answer to another question and never a crash, and its turn row says
// what happened.
func TestBadInputRecordings(t *testing.T) {
	h := newHarness(t, harnessOptions{stt: newSphinx(t)})
	question := telephone(t, "what are your opening hours")
	const hoursAnswer = "Our stores are open from nine in the morning"
	pcm16 := func(p audio.PCM) []byte { return wavBytes(t, p, audio.EncodingPCM16) }
	// patch rewrites little-endian fields of a canonical 44-byte-header WAV.
	patch := func(b []byte, fields map[int]uint32, widths map[int]int) []byte {
		b = append([]byte(nil), b...)
		for off, v := range fields {
			if widths[off] == 2 {
				binary.LittleEndian.PutUint16(b[off:], uint16(v))
			} else {
				binary.LittleEndian.PutUint32(b[off:], v)
			}
		}
		return b
	}
	ulaw := wavBytes(t, question, audio.EncodingUlaw)
	// The µ-law file's fmt chunk is 18 bytes; relabel it as 16-bit PCM.
	ulawAsPCM := patch(ulaw, map[int]uint32{20: 1, 32: 2, 34: 16, 28: 16000}, map[int]int{20: 2, 32: 2, 34: 2})

	type outcome struct {
		bands []string // acceptable understanding bands
		// answer, when set, is the only answer text the case may speak.
		answer string
	}
	noAnswer := outcome{bands: []string{ivr.UnderstandingNoSpeech, ivr.UnderstandingReprompt, ivr.UnderstandingConfirm}}
	hours := outcome{bands: []string{ivr.UnderstandingAnswered, ivr.UnderstandingConfirm, ivr.UnderstandingReprompt, ivr.UnderstandingNoSpeech}, answer: hoursAnswer}
	cases := []struct {
		name  string
		data  []byte
		want  outcome
		check func(t *testing.T, turn ivr.Turn)
	}{
		{name: "digital silence", data: pcm16(audiotest.Silence(4 * time.Second)),
			want: outcome{bands: []string{ivr.UnderstandingNoSpeech}},
			check: func(t *testing.T, turn ivr.Turn) {
				if turn.EndReason != "no_speech" || turn.Transcript != "" {
					t.Errorf("silence turn: end %q transcript %q", turn.EndReason, turn.Transcript)
				}
			}},
		{name: "line hiss", data: pcm16(audiotest.Noise(4*time.Second, -50, 1)), want: noAnswer},
		{name: "music", data: pcm16(music(5 * time.Second)), want: noAnswer},
		{name: "loud noise", data: pcm16(audiotest.Noise(4*time.Second, -12, 2)), want: noAnswer},
		{name: "clipped speech", data: pcm16(clip(question, 12)), want: hours},
		{name: "one second", data: pcm16(audio.PCM{Rate: audio.SampleRate, Samples: question.Samples[:audio.SampleRate]}), want: hours},
		{name: "sixty seconds", data: pcm16(audiotest.Concat(question, audiotest.Noise(58*time.Second, -55, 3))), want: hours,
			check: func(t *testing.T, turn ivr.Turn) {
				if turn.SpeechMS < 59000 {
					t.Errorf("60 s recording: speech_ms %d", turn.SpeechMS)
				}
			}},
		{name: "header claims 16 kHz for 8 kHz audio", data: patch(pcm16(question), map[int]uint32{24: 16000, 28: 32000}, nil), want: hours},
		{name: "header claims 16-bit PCM for mu-law bytes", data: ulawAsPCM, want: hours},
		{name: "header claims more data than the file holds", data: patch(pcm16(question), map[int]uint32{40: 0x7ffffff0}, nil), want: hours},
		{name: "header claims a format koel does not decode", data: patch(pcm16(question), map[int]uint32{20: 0x55}, map[int]int{20: 2}),
			want: outcome{bands: []string{ivr.UnderstandingFailed}},
			check: func(t *testing.T, turn ivr.Turn) {
				if !strings.HasPrefix(turn.Error, ivr.FailDecode+":") {
					t.Errorf("undecodable turn: error %q", turn.Error)
				}
			}},
		{name: "truncated header", data: pcm16(question)[:30],
			want: outcome{bands: []string{ivr.UnderstandingFailed}},
			check: func(t *testing.T, turn ivr.Turn) {
				if !strings.HasPrefix(turn.Error, ivr.FailDecode+":") {
					t.Errorf("truncated turn: error %q", turn.Error)
				}
			}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sid := fmt.Sprintf("83%014d", i)
			if code, body := h.get("demo", "sid="+sid+"&event=NewCall&"+caller); code != http.StatusOK {
				t.Fatalf("NewCall: %d %s", code, body)
			}
			u := h.recs.put(fmt.Sprintf("/bad-%d.wav", i), tc.data)
			code, body := h.get("demo", "sid="+sid+"&event=Record&status=silence&data="+url.QueryEscape(u))
			resp := xmlOf(t, tc.name, code, body)
			turns := h.turns(sid)
			if len(turns) != 1 {
				t.Fatalf("turns = %d, want 1", len(turns))
			}
			turn := turns[0]
			t.Logf("transcript %q (%.2f), band %s, error %q: %s", turn.Transcript, turn.Confidence, turn.Understanding, turn.Error, spoken(resp))
			ok := false
			for _, b := range tc.want.bands {
				ok = ok || turn.Understanding == b
			}
			if !ok {
				t.Errorf("band %q, want one of %v", turn.Understanding, tc.want.bands)
			}
			if turn.Understanding == ivr.UnderstandingAnswered && !strings.Contains(spoken(resp), tc.want.answer) {
				t.Errorf("confidently wrong: answered %q", spoken(resp))
			}
			// A confirmation speaks no answer: it asks, and the caller's no
			// (or key 2) declines it. The one-second clip ("what are your",
			// heard "what are your okay" once every utterance decodes from a
			// fresh front end) may be asked about a topic that resembles it
			// ("what is your address"): a question, not a wrong answer.
			if turn.Understanding == ivr.UnderstandingConfirm {
				if said := spoken(resp); !strings.Contains(said, "Say yes or no") || strings.Contains(said, "42 Residency Road") {
					t.Errorf("confirmation that is not only a yes/no question: %q", said)
				}
			}
			if _, isHangup := last(resp).(Hangup); isHangup {
				t.Errorf("one bad recording hung up the call: %s", body)
			}
			if tc.check != nil {
				tc.check(t, turn)
			}
		})
	}
}
