package stt

// bandExtender puts energy back above 4 kHz in telephone audio upsampled
// to the acoustic model's 16 kHz, by spectral folding: the high-passed
// signal, modulated by (-1)^n, mirrors the 2-3.4 kHz band (fricatives,
// upper formants) to 4.6-6 kHz, where the wide-band model expects it. Low
// frequencies are attenuated before folding, so voiced energy does not
// land near 8 kHz. It works in place and keeps state across calls, so a
// stream cut anywhere gives the same samples as the whole buffer.
type bandExtender struct {
	gain float64 // level of the folded image; 0 disables
	prev float64 // last input sample
	odd  bool    // parity of the next sample
}

// reset starts a new utterance.
func (b *bandExtender) reset() { b.prev, b.odd = 0, false }

// process extends x in place.
func (b *bandExtender) process(x []int16) {
	if b.gain == 0 {
		return
	}
	for i, s := range x {
		v := float64(s)
		img := b.gain * (v - b.prev)
		if b.odd {
			img = -img
		}
		b.prev = v
		b.odd = !b.odd
		x[i] = clampSample(v + img)
	}
}

func clampSample(v float64) int16 {
	switch {
	case v > 32767:
		return 32767
	case v < -32768:
		return -32768
	}
	return int16(v)
}
