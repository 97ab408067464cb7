package audio

import (
	"fmt"
	"math"
)

// Resampler design. The filter is a Kaiser-windowed sinc evaluated at every
// fractional position the ratio to/from = l/m needs (a polyphase bank of l
// phases). Its stopband starts at half the lower of the two rates and its
// passband ends 15 % below that (3.4 kHz when either side is 8 kHz, the top
// of the telephone band), with 70 dB of stopband attenuation.
const (
	resampleAttenuationDB = 70
	resamplePassband      = 0.85
	maxResamplePhases     = 1024
	minResampleRate       = 1000
	maxResampleRate       = 192000
)

// Resampler converts a stream of samples from one rate to another with a
// windowed-sinc polyphase filter. It keeps filter state across calls to
// [Resampler.Process], so a stream cut into frames of any size resamples to
// exactly what the whole buffer would. The filter is centred (linear phase,
// no delay): output sample n lies at input time n·from/to.
//
// A Resampler is not safe for concurrent use.
type Resampler struct {
	from, to int
	l, m     int       // to/from reduced to lowest terms
	half     int       // K: taps reach K-1 samples back and K ahead
	taps     int       // 2K
	coef     []float32 // l phases of taps coefficients
	hist     []float32 // input history; hist[pos] is the current output's integer position
	pos      int
	phase    int   // numerator of the output's fractional position, over l
	in, out  int64 // samples consumed and produced since the last Flush
	identity bool
}

// NewResampler returns a Resampler from rate from to rate to (Hz). Both
// rates must lie in [1000, 192000] and their reduced ratio must need at most
// 1024 filter phases (every pair of [RateSupported] rates does); otherwise
// the error wraps [ErrUnsupported].
func NewResampler(from, to int) (*Resampler, error) {
	if from < minResampleRate || from > maxResampleRate || to < minResampleRate || to > maxResampleRate {
		return nil, fmt.Errorf("%w: resample %d Hz to %d Hz: rate out of range", ErrUnsupported, from, to)
	}
	g := gcd(from, to)
	r := &Resampler{from: from, to: to, l: to / g, m: from / g}
	if from == to {
		r.identity = true
		return r, nil
	}
	if r.l > maxResamplePhases {
		return nil, fmt.Errorf("%w: resample %d Hz to %d Hz: ratio %d/%d too complex", ErrUnsupported, from, to, r.l, r.m)
	}
	lower := float64(min(from, to))
	stop := lower / 2
	pass := stop * resamplePassband
	cutoff := (pass + stop) / 2 / float64(from)           // cycles per input sample
	width := (stop - pass) / float64(from)                // transition, cycles per input sample
	n := (resampleAttenuationDB - 7.95) / (14.36 * width) // Kaiser's estimate of the length
	r.half = max(2, int(math.Ceil(n/2)))
	r.taps = 2 * r.half
	beta := 0.1102 * (resampleAttenuationDB - 8.7)
	i0beta := besselI0(beta)
	r.coef = make([]float32, r.l*r.taps)
	vals := make([]float64, r.taps)
	for p := range r.l {
		frac := float64(p) / float64(r.l)
		row := r.coef[p*r.taps : (p+1)*r.taps]
		var sum float64
		for k := range r.taps {
			d := float64(k-r.half+1) - frac // tap time minus output time, in input samples
			x := d / float64(r.half)
			w := 0.0
			if x > -1 && x < 1 {
				w = besselI0(beta*math.Sqrt(1-x*x)) / i0beta
			}
			v := 2 * cutoff * sinc(2*cutoff*d) * w
			vals[k] = v
			sum += v
		}
		for k, v := range vals {
			row[k] = float32(v / sum) // unity gain at DC for every phase
		}
	}
	r.reset()
	return r, nil
}

// From returns the input rate in Hz.
func (r *Resampler) From() int { return r.from }

// To returns the output rate in Hz.
func (r *Resampler) To() int { return r.to }

func (r *Resampler) reset() {
	r.hist = r.hist[:0]
	for range r.half - 1 {
		r.hist = append(r.hist, 0)
	}
	r.pos = r.half - 1
	r.phase = 0
	r.in, r.out = 0, 0
}

// Process resamples src, appends the output to dst and returns it. Output
// that needs input not yet seen is held back until the next call or
// [Resampler.Flush].
func (r *Resampler) Process(dst, src []int16) []int16 {
	if r.identity {
		return append(dst, src...)
	}
	for _, s := range src {
		r.hist = append(r.hist, float32(s))
	}
	r.in += int64(len(src))
	dst = r.run(dst, -1)
	r.compact()
	return dst
}

// Flush emits the output still held back (the input is treated as followed
// by silence), appends it to dst and returns it. After Flush the Resampler
// starts a new stream. Over one stream, Process and Flush together produce
// ceil(in·to/from) samples.
func (r *Resampler) Flush(dst []int16) []int16 {
	if r.identity {
		return dst
	}
	target := (r.in*int64(r.l) + int64(r.m) - 1) / int64(r.m)
	for range r.half {
		r.hist = append(r.hist, 0)
	}
	dst = r.run(dst, target)
	r.reset()
	return dst
}

// run produces output while the history holds every tap it needs, and, when
// limit is not negative, while fewer than limit samples have been produced.
func (r *Resampler) run(dst []int16, limit int64) []int16 {
	taps, half := r.taps, r.half
	for r.pos+half < len(r.hist) && (limit < 0 || r.out < limit) {
		x := r.hist[r.pos-half+1 : r.pos-half+1+taps]
		h := r.coef[r.phase*taps : (r.phase+1)*taps]
		dst = append(dst, clamp16(dot(x, h)))
		r.out++
		r.phase += r.m
		r.pos += r.phase / r.l
		r.phase %= r.l
	}
	return dst
}

// compact drops history no future output needs.
func (r *Resampler) compact() {
	drop := r.pos - r.half + 1
	if drop <= 0 {
		return
	}
	if drop > len(r.hist) {
		// Whole input consumed and more: the outputs ahead need samples
		// not yet arrived; keep the offset.
		r.pos -= len(r.hist)
		r.hist = r.hist[:0]
		return
	}
	n := copy(r.hist, r.hist[drop:])
	r.hist = r.hist[:n]
	r.pos -= drop
}

func dot(x, h []float32) float32 {
	h = h[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * h[i]
		s1 += x[i+1] * h[i+1]
		s2 += x[i+2] * h[i+2]
		s3 += x[i+3] * h[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * h[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func clamp16(v float32) int16 {
	v = float32(math.Round(float64(v)))
	switch {
	case v > math.MaxInt16:
		return math.MaxInt16
	case v < math.MinInt16:
		return math.MinInt16
	}
	return int16(v)
}

// Resample converts the whole of p to rate to, returning ceil(len·to/rate)
// samples. It returns a copy when the rates are equal. Errors wrap
// [ErrUnsupported] (see [NewResampler]).
func Resample(p PCM, to int) (PCM, error) {
	if p.Rate == to {
		return PCM{Rate: to, Samples: append([]int16(nil), p.Samples...)}, nil
	}
	r, err := NewResampler(p.Rate, to)
	if err != nil {
		return PCM{}, err
	}
	out := make([]int16, 0, int(int64(len(p.Samples))*int64(to)/int64(p.Rate))+1)
	out = r.Process(out, p.Samples)
	out = r.Flush(out)
	return PCM{Rate: to, Samples: out}, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the zeroth-order modified Bessel function of the first kind.
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	q := x * x / 4
	for k := 1; k < 200; k++ {
		term *= q / float64(k*k)
		sum += term
		if term < sum*1e-16 {
			break
		}
	}
	return sum
}
