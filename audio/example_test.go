package audio_test

import (
	"fmt"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/audiotest"
)

// A media loop feeds the caller's 20 ms frames to an Endpointer and stops
// recording when it says so.
func ExampleEndpointer() {
	ep, err := audio.NewEndpointer(audio.EndpointConfig{
		SilencePeriod: 2 * time.Second,  // KooKoo silence="2"
		MaxRecordTime: 30 * time.Second, // KooKoo maxduration="30"
		TerminatorKey: '#',
	})
	if err != nil {
		panic(err)
	}
	rec := audio.NewRecorder(30 * time.Second)
	caller := audiotest.Concat(
		audiotest.Silence(300*time.Millisecond),
		audiotest.Tone(1500*time.Millisecond, 220, -18), // stands in for speech
		audiotest.Silence(5*time.Second),
	)
	for _, frame := range audiotest.Frames(caller) {
		_ = rec.Write(frame) // the cap equals MaxRecordTime, so it is never hit first
		if res, done := ep.Write(frame); done {
			rec.Truncate(res.End)
			fmt.Println(res.Reason, res.SpeechStart, res.SpeechEnd, res.End, rec.Duration())
			break
		}
	}
	// Output: silence 300ms 1.8s 3.8s 3.8s
}

// Telephone audio arrives as mu-law at 8 kHz; speech recognisers want
// 16 kHz linear PCM.
func ExampleResample() {
	ulaw := make([]byte, audio.FrameSamples)
	audio.EncodeUlaw(ulaw, audiotest.Tone(audio.FrameDuration, 440, -20).Samples)
	pcm := make([]int16, len(ulaw))
	audio.DecodeUlaw(pcm, ulaw)
	wide, err := audio.Resample(audio.PCM{Rate: audio.SampleRate, Samples: pcm}, 16000)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(wide.Samples), wide.Duration())
	// Output: 320 20ms
}
