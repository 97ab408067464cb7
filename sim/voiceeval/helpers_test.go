package voiceeval

import (
	"math"

	"github.com/koelvoice/koel/audio"
)

// tone is one second of a 440 Hz sine at 8 kHz.
func tone() audio.PCM {
	p := audio.PCM{Rate: audio.SampleRate, Samples: make([]int16, audio.SampleRate)}
	for i := range p.Samples {
		p.Samples[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/audio.SampleRate))
	}
	return p
}

func equal(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
