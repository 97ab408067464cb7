package audio_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/audiotest"
)

const frame = audio.FrameDuration

// run feeds p to e in chunks of chunk samples until it ends; it returns the
// result and whether the recording ended.
func run(t testing.TB, e *audio.Endpointer, p audio.PCM, chunk int) (audio.EndResult, bool) {
	t.Helper()
	s := p.Samples
	for len(s) > 0 {
		n := min(chunk, len(s))
		if res, done := e.Write(s[:n]); done {
			return res, true
		}
		s = s[n:]
	}
	return e.Result(), false
}

func mustEndpointer(t testing.TB, cfg audio.EndpointConfig) *audio.Endpointer {
	t.Helper()
	e, err := audio.NewEndpointer(cfg)
	if err != nil {
		t.Fatalf("NewEndpointer(%+v): %v", cfg, err)
	}
	return e
}

// TestEndpointerSynthetic pins the semantics on frame-aligned tones, where
// the voiced frames are known exactly.
func TestEndpointerSynthetic(t *testing.T) {
	sil := audiotest.Silence
	tone := func(d time.Duration) audio.PCM { return audiotest.Tone(d, 440, -20) }
	tests := []struct {
		name string
		cfg  audio.EndpointConfig
		in   audio.PCM
		want audio.EndResult
		done bool
	}{
		{
			name: "silence after speech",
			cfg:  audio.EndpointConfig{SilencePeriod: time.Second, MaxRecordTime: 30 * time.Second},
			in:   audiotest.Concat(sil(400*time.Millisecond), tone(time.Second), sil(5*time.Second)),
			want: audio.EndResult{Reason: audio.EndSilence, Spoke: true, SpeechStart: 400 * time.Millisecond, SpeechEnd: 1400 * time.Millisecond, End: 2400 * time.Millisecond},
			done: true,
		},
		{
			name: "pause shorter than silence period",
			cfg:  audio.EndpointConfig{SilencePeriod: 2 * time.Second, MaxRecordTime: 30 * time.Second},
			in:   audiotest.Concat(sil(200*time.Millisecond), tone(time.Second), sil(1980*time.Millisecond), tone(500*time.Millisecond), sil(5*time.Second)),
			want: audio.EndResult{Reason: audio.EndSilence, Spoke: true, SpeechStart: 200 * time.Millisecond, SpeechEnd: 3680 * time.Millisecond, End: 5680 * time.Millisecond},
			done: true,
		},
		{
			name: "max duration truncates speech",
			cfg:  audio.EndpointConfig{SilencePeriod: time.Second, MaxRecordTime: 3 * time.Second},
			in:   audiotest.Concat(sil(time.Second), tone(10*time.Second)),
			want: audio.EndResult{Reason: audio.EndMaxDuration, Spoke: true, SpeechStart: time.Second, SpeechEnd: 3 * time.Second, End: 3 * time.Second},
			done: true,
		},
		{
			name: "max duration wins over a later silence end",
			cfg:  audio.EndpointConfig{SilencePeriod: 2 * time.Second, MaxRecordTime: 2 * time.Second},
			in:   audiotest.Concat(sil(200*time.Millisecond), tone(time.Second), sil(5*time.Second)),
			want: audio.EndResult{Reason: audio.EndMaxDuration, Spoke: true, SpeechStart: 200 * time.Millisecond, SpeechEnd: 1200 * time.Millisecond, End: 2 * time.Second},
			done: true,
		},
		{
			name: "silence wins a tie with max duration",
			cfg:  audio.EndpointConfig{SilencePeriod: time.Second, MaxRecordTime: 2200 * time.Millisecond},
			in:   audiotest.Concat(sil(200*time.Millisecond), tone(time.Second), sil(5*time.Second)),
			want: audio.EndResult{Reason: audio.EndSilence, Spoke: true, SpeechStart: 200 * time.Millisecond, SpeechEnd: 1200 * time.Millisecond, End: 2200 * time.Millisecond},
			done: true,
		},
		{
			name: "no input at initial silence",
			cfg:  audio.EndpointConfig{SilencePeriod: time.Second, MaxRecordTime: 10 * time.Second, InitialSilence: 3 * time.Second},
			in:   sil(10 * time.Second),
			want: audio.EndResult{Reason: audio.EndNoInput, End: 3 * time.Second},
			done: true,
		},
		{
			name: "no input defaults to max record time",
			cfg:  audio.EndpointConfig{SilencePeriod: time.Second, MaxRecordTime: 4 * time.Second},
			in:   sil(10 * time.Second),
			want: audio.EndResult{Reason: audio.EndNoInput, End: 4 * time.Second},
			done: true,
		},
		{
			name: "clicks are not speech",
			cfg:  audio.EndpointConfig{SilencePeriod: time.Second, MaxRecordTime: 10 * time.Second, InitialSilence: 2 * time.Second},
			in:   audiotest.Concat(sil(500*time.Millisecond), audiotest.Tone(20*time.Millisecond, 1000, -6), sil(300*time.Millisecond), audiotest.Tone(40*time.Millisecond, 1000, -6), sil(3*time.Second)),
			want: audio.EndResult{Reason: audio.EndNoInput, End: 2 * time.Second},
			done: true,
		},
		{
			name: "breath below the speech floor is not speech",
			cfg:  audio.EndpointConfig{SilencePeriod: time.Second, MaxRecordTime: 10 * time.Second, InitialSilence: 2 * time.Second},
			in:   audiotest.Concat(sil(500*time.Millisecond), audiotest.Noise(400*time.Millisecond, -50, 3), sil(3*time.Second)),
			want: audio.EndResult{Reason: audio.EndNoInput, End: 2 * time.Second},
			done: true,
		},
		{
			name: "stationary noise alone is no input",
			cfg:  audio.EndpointConfig{SilencePeriod: time.Second, MaxRecordTime: 10 * time.Second, InitialSilence: 5 * time.Second},
			in:   audiotest.Noise(10*time.Second, -35, 1),
			want: audio.EndResult{Reason: audio.EndNoInput, End: 5 * time.Second},
			done: true,
		},
		{
			name: "speech over noise",
			cfg:  audio.EndpointConfig{SilencePeriod: time.Second, MaxRecordTime: 10 * time.Second},
			in:   audiotest.Mix(audiotest.Noise(6*time.Second, -50, 2), audiotest.Concat(sil(time.Second), tone(time.Second))),
			want: audio.EndResult{Reason: audio.EndSilence, Spoke: true, SpeechStart: time.Second, SpeechEnd: 2 * time.Second, End: 3 * time.Second},
			done: true,
		},
		{
			// The noise floor starts at the first frame's level: a sound
			// that is steady from the very start is background.
			name: "steady tone from the first frame is background",
			cfg:  audio.EndpointConfig{SilencePeriod: time.Second, MaxRecordTime: 10 * time.Second, InitialSilence: 2 * time.Second},
			in:   tone(5 * time.Second),
			want: audio.EndResult{Reason: audio.EndNoInput, End: 2 * time.Second},
			done: true,
		},
		{
			name: "rounded up to whole frames",
			cfg:  audio.EndpointConfig{SilencePeriod: 1001 * time.Millisecond, MaxRecordTime: 10 * time.Second},
			in:   audiotest.Concat(sil(400*time.Millisecond), tone(time.Second), sil(5*time.Second)),
			want: audio.EndResult{Reason: audio.EndSilence, Spoke: true, SpeechStart: 400 * time.Millisecond, SpeechEnd: 1400 * time.Millisecond, End: 2420 * time.Millisecond},
			done: true,
		},
		{
			name: "still recording",
			cfg:  audio.EndpointConfig{SilencePeriod: time.Second, MaxRecordTime: 10 * time.Second},
			in:   audiotest.Concat(sil(100*time.Millisecond), tone(time.Second), sil(500*time.Millisecond)),
			want: audio.EndResult{Spoke: true, SpeechStart: 100 * time.Millisecond, SpeechEnd: 1100 * time.Millisecond, End: 1600 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		for _, chunk := range []int{audio.FrameSamples, 80, 333, 4000} {
			t.Run(fmt.Sprintf("%s/chunk%d", tt.name, chunk), func(t *testing.T) {
				e := mustEndpointer(t, tt.cfg)
				got, done := run(t, e, tt.in, chunk)
				if got != tt.want || done != tt.done {
					t.Fatalf("got %+v done=%v\nwant %+v done=%v", got, done, tt.want, tt.done)
				}
			})
		}
	}
}

func TestEndpointerDTMFAndHangup(t *testing.T) {
	cfg := audio.EndpointConfig{SilencePeriod: time.Second, MaxRecordTime: 10 * time.Second, TerminatorKey: '#'}
	speech := audiotest.Concat(audiotest.Silence(200*time.Millisecond), audiotest.Tone(2*time.Second, 300, -15))

	e := mustEndpointer(t, cfg)
	run(t, e, audio.PCM{Rate: 8000, Samples: speech.Samples[:8000]}, audio.FrameSamples)
	if res, done := e.DTMF('5'); done || res.Reason != "" {
		t.Fatalf("non-terminator key ended the recording: %+v", res)
	}
	if !e.Speaking() {
		t.Fatal("Speaking() is false mid-tone")
	}
	res, done := e.DTMF('#')
	want := audio.EndResult{Reason: audio.EndDTMF, Spoke: true, SpeechStart: 200 * time.Millisecond, SpeechEnd: time.Second, End: time.Second}
	if !done || res != want {
		t.Fatalf("DTMF(#) = %+v, %v; want %+v", res, done, want)
	}
	if again, done := e.Write(speech.Samples[8000:8160]); !done || again != want {
		t.Fatalf("Write after the end changed the result: %+v", again)
	}
	if h := e.Hangup(); h != want {
		t.Fatalf("Hangup after DTMF changed the result: %+v", h)
	}

	e = mustEndpointer(t, cfg)
	run(t, e, audio.PCM{Rate: 8000, Samples: speech.Samples[:6000]}, 100)
	h := e.Hangup()
	want = audio.EndResult{Reason: audio.EndHangup, Spoke: true, SpeechStart: 200 * time.Millisecond, SpeechEnd: 740 * time.Millisecond, End: 740 * time.Millisecond}
	if h != want || !e.Done() {
		t.Fatalf("Hangup mid-speech = %+v, want %+v", h, want)
	}

	e = mustEndpointer(t, audio.EndpointConfig{SilencePeriod: time.Second, MaxRecordTime: time.Second})
	if res, done := e.DTMF('#'); done || res.Reason != "" {
		t.Fatalf("DTMF without a terminator key ended the recording: %+v", res)
	}
	if h := e.Hangup(); h != (audio.EndResult{Reason: audio.EndHangup}) {
		t.Fatalf("Hangup before any audio = %+v", h)
	}
}

func TestNewEndpointerInvalid(t *testing.T) {
	ok := audio.EndpointConfig{SilencePeriod: time.Second, MaxRecordTime: time.Second}
	tests := map[string]func(c *audio.EndpointConfig){
		"zero silence":        func(c *audio.EndpointConfig) { c.SilencePeriod = 0 },
		"negative max":        func(c *audio.EndpointConfig) { c.MaxRecordTime = -time.Second },
		"huge max":            func(c *audio.EndpointConfig) { c.MaxRecordTime = 1000 * time.Hour },
		"negative initial":    func(c *audio.EndpointConfig) { c.InitialSilence = -1 },
		"bad key":             func(c *audio.EndpointConfig) { c.TerminatorKey = 'x' },
		"exit above enter":    func(c *audio.EndpointConfig) { c.VAD.EnterDB, c.VAD.ExitDB = 3, 9 },
		"positive speech dB":  func(c *audio.EndpointConfig) { c.VAD.MinSpeechDBFS = 3 },
		"too many enter":      func(c *audio.EndpointConfig) { c.VAD.EnterFrames = 1000 },
		"negative hangover":   func(c *audio.EndpointConfig) { c.VAD.HangoverFrames = -1 },
		"negative floor rise": func(c *audio.EndpointConfig) { c.VAD.FloorRiseDBPerSecond = -1 },
	}
	for name, mod := range tests {
		t.Run(name, func(t *testing.T) {
			c := ok
			mod(&c)
			if _, err := audio.NewEndpointer(c); !errors.Is(err, audio.ErrInvalid) {
				t.Fatalf("NewEndpointer = %v, want ErrInvalid", err)
			}
		})
	}
	for _, k := range "0123456789*#ABCD" {
		c := ok
		c.TerminatorKey = k
		if _, err := audio.NewEndpointer(c); err != nil {
			t.Errorf("terminator %q rejected: %v", k, err)
		}
	}
}

func FuzzEndpointer(f *testing.F) {
	f.Add([]byte{0, 0, 0xff, 0x7f}, uint8(1), uint8(3), uint16(160))
	f.Add(make([]byte, 4000), uint8(2), uint8(1), uint16(7))
	loud := audiotest.Tone(time.Second, 440, -10)
	f.Add(s16le(audiotest.Concat(audiotest.Silence(100*time.Millisecond), loud, audiotest.Silence(time.Second)).Samples), uint8(1), uint8(2), uint16(333))
	f.Fuzz(func(t *testing.T, raw []byte, sil, maxRec uint8, chunk uint16) {
		cfg := audio.EndpointConfig{
			SilencePeriod: time.Duration(sil%5+1) * 100 * time.Millisecond,
			MaxRecordTime: time.Duration(maxRec%8+1) * 200 * time.Millisecond,
		}
		samples := make([]int16, len(raw)/2)
		for i := range samples {
			samples[i] = int16(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8)
		}
		p := audio.PCM{Rate: 8000, Samples: samples}
		a, b := mustEndpointer(t, cfg), mustEndpointer(t, cfg)
		ra, da := run(t, a, p, audio.FrameSamples)
		rb, db := run(t, b, p, int(chunk%1000)+1)
		if ra != rb || da != db {
			t.Fatalf("chunking changed the decision: %+v vs %+v", ra, rb)
		}
		if ra.End%frame != 0 || ra.SpeechStart%frame != 0 || ra.SpeechEnd%frame != 0 {
			t.Fatalf("offsets not frame-aligned: %+v", ra)
		}
		if ra.SpeechStart > ra.SpeechEnd || ra.SpeechEnd > ra.End || ra.End > cfg.MaxRecordTime {
			t.Fatalf("inconsistent offsets: %+v (max %v)", ra, cfg.MaxRecordTime)
		}
		if !ra.Spoke && (ra.SpeechStart != 0 || ra.SpeechEnd != 0) {
			t.Fatalf("speech offsets without speech: %+v", ra)
		}
		switch ra.Reason {
		case audio.EndSilence:
			if !ra.Spoke || ra.End-ra.SpeechEnd != cfg.SilencePeriod {
				t.Fatalf("silence end not one silence period after speech: %+v", ra)
			}
		case audio.EndNoInput:
			if ra.Spoke || ra.End != cfg.MaxRecordTime {
				t.Fatalf("bad no_input: %+v", ra)
			}
		case audio.EndMaxDuration:
			if ra.End != cfg.MaxRecordTime {
				t.Fatalf("max_duration at %v, want %v", ra.End, cfg.MaxRecordTime)
			}
		case "":
			if da || ra.End != audio.SamplesToDuration(len(samples)/audio.FrameSamples*audio.FrameSamples, 8000) {
				t.Fatalf("unfinished result %+v after %d samples", ra, len(samples))
			}
		default:
			t.Fatalf("unexpected reason %q", ra.Reason)
		}
	})
}

func BenchmarkEndpointer(b *testing.B) {
	speech := audiotest.Mix(audiotest.Noise(10*time.Second, -45, 1), audiotest.Tone(10*time.Second, 300, -20))
	frames := audiotest.Frames(speech)
	cfg := audio.EndpointConfig{SilencePeriod: time.Second, MaxRecordTime: audio.MaxEndpointDuration}
	e := mustEndpointer(b, cfg)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, done := e.Write(frames[i%len(frames)]); done {
			e = mustEndpointer(b, cfg) // an hour of audio has passed
		}
		i++
	}
}
