package stt

import (
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"github.com/koelvoice/koel/audio"
)

// CMNMode selects how the recogniser's cepstral mean normalisation is
// estimated for each utterance.
type CMNMode int

const (
	// CMNDefault is the zero value: the measured default, CMNPrior.
	CMNDefault CMNMode = iota
	// CMNPrior resets the live cepstral mean to the telephone prior at the
	// start of every utterance, so a recording is recognised the same
	// whatever the decoder heard before; partial hypotheses stay available.
	CMNPrior
	// CMNBatch normalises each utterance with its own mean, computed over
	// the whole recording at Close; Partial returns "" in this mode.
	CMNBatch
	// CMNCarry keeps pocketsphinx's own behaviour: the live mean and the
	// voice-activity detector's noise statistics carry over from one
	// utterance of a pooled decoder to the next (earlier callers change
	// how later callers are recognised). For measurement.
	CMNCarry
)

// String names the mode.
func (m CMNMode) String() string {
	switch m {
	case CMNDefault, CMNPrior:
		return "prior"
	case CMNBatch:
		return "batch"
	case CMNCarry:
		return "carry"
	default:
		return "CMNMode(" + strconv.Itoa(int(m)) + ")"
	}
}

// ParseCMNMode parses prior, batch or carry.
func ParseCMNMode(s string) (CMNMode, bool) {
	switch s {
	case "prior":
		return CMNPrior, true
	case "batch":
		return CMNBatch, true
	case "carry":
		return CMNCarry, true
	}
	return 0, false
}

// cmnPrior parses the telephone prior: telephoneFilledCMNInit when the
// band fill is on, else telephoneCMNInit.
func cmnPrior(filled bool) []float32 {
	src := telephoneCMNInit
	if filled {
		src = telephoneFilledCMNInit
	}
	f := strings.Split(src, ",")
	out := make([]float32, len(f))
	for i, s := range f {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 32)
		if err != nil {
			panic("stt: telephoneCMNInit is malformed: " + err.Error())
		}
		out[i] = float32(v)
	}
	return out
}

// bandFillSamples is the length of the band-fill loop at 16 kHz (4 s).
const bandFillSamples = 4 * decoderRate

// bandFill returns a loop of white noise confined to 4-8 kHz at 16 kHz,
// whose RMS level is dBFS. Upsampled 8 kHz telephone audio leaves the
// acoustic model's filterbank channels above 4 kHz empty, which throws its
// features and their normalisation off; a faint fill gives them the floor a
// wide-band microphone would. The noise is 8 kHz white noise upsampled
// (so it occupies 0-4 kHz) and modulated by (-1)^n, which mirrors it into
// 4-8 kHz. It is built from a fixed seed: the same audio always decodes the
// same way.
func bandFill(dBFS float64) []int16 {
	rng := rand.New(rand.NewPCG(0x6b6f656c, 0x62616e64))
	n8 := bandFillSamples / 2
	low := make([]int16, n8)
	for i := range low {
		low[i] = int16(max(-32768, min(32767, math.Round(rng.NormFloat64()*4000))))
	}
	up, err := audio.Resample(audio.PCM{Rate: audio.SampleRate, Samples: low}, decoderRate)
	if err != nil {
		panic("stt: band fill resample: " + err.Error())
	}
	x := make([]float64, len(up.Samples))
	var e float64
	for i, s := range up.Samples {
		v := float64(s)
		if i%2 == 1 {
			v = -v
		}
		x[i] = v
		e += v * v
	}
	rms := math.Sqrt(e / float64(max(1, len(x))))
	gain := 32768 * math.Pow(10, dBFS/20) / rms
	out := make([]int16, len(x))
	for i, v := range x {
		out[i] = int16(max(-32768, min(32767, math.Round(v*gain))))
	}
	return out
}

// addFill adds fill, starting at position pos of its loop, onto pcm
// (saturating) and returns the next position.
func addFill(pcm, fill []int16, pos int) int {
	if len(fill) == 0 {
		return pos
	}
	for i := range pcm {
		v := int32(pcm[i]) + int32(fill[pos])
		pcm[i] = int16(max(-32768, min(32767, v)))
		pos++
		if pos == len(fill) {
			pos = 0
		}
	}
	return pos
}

// topWords picks the n most probable words of a general unigram model
// (log10 probabilities) that are plain words (a-z and apostrophes) with a
// pronunciation in lex, and renormalises their probabilities to sum to 1.
func topWords(uni map[string]float64, lex lexicon, n int) map[string]float64 {
	type wp struct {
		w string
		p float64
	}
	list := make([]wp, 0, len(uni))
	for w, lp := range uni {
		if !plainWord(w) || len(lex[w]) == 0 {
			continue
		}
		list = append(list, wp{w, lp})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].p != list[j].p {
			return list[i].p > list[j].p
		}
		return list[i].w < list[j].w
	})
	if len(list) > n {
		list = list[:n]
	}
	var sum float64
	for _, x := range list {
		sum += math.Pow(10, x.p)
	}
	out := make(map[string]float64, len(list))
	for _, x := range list {
		out[x.w] = math.Pow(10, x.p) / sum
	}
	return out
}

func plainWord(w string) bool {
	if w == "" || w[0] == '\'' || w[len(w)-1] == '\'' {
		return false
	}
	for i := 0; i < len(w); i++ {
		if c := w[i]; !(c >= 'a' && c <= 'z' || c == '\'') {
			return false
		}
	}
	return true
}

// rawHyp is one raw N-best hypothesis and its path score (log domain,
// sphinx units).
type rawHyp struct {
	Text  string
	Score int
}

// alternatives turns a decoder's raw N-best list into normalised
// hypotheses: each is cleaned like the best hypothesis (fillers, garbage
// and out-of-vocabulary words dropped), hypotheses that clean to the same
// text are merged (their probabilities added), and the probabilities,
// exp(scale × (score − best score)) with scores converted to natural log
// by lnPerUnit, are normalised to sum to 1. best, the decoder's final
// hypothesis (cleaned), is always first; an empty cleaned text is dropped.
func alternatives(raw []rawHyp, best string, words map[string]bool, lnPerUnit, scale float64) []Hypothesis {
	if best == "" {
		return nil
	}
	if len(raw) == 0 {
		return []Hypothesis{{Text: best, Posterior: 1}}
	}
	top := raw[0].Score
	for _, r := range raw {
		top = max(top, r.Score)
	}
	prob := map[string]float64{}
	var order []string
	for _, r := range raw {
		t := cleanHyp(r.Text, words)
		if t == "" {
			continue
		}
		if _, ok := prob[t]; !ok {
			order = append(order, t)
		}
		prob[t] += math.Exp(scale * lnPerUnit * float64(r.Score-top))
	}
	if _, ok := prob[best]; !ok {
		// The final hypothesis came from another pass than the N-best
		// search: give it the best path's probability.
		prob[best] = math.Exp(scale * lnPerUnit * float64(raw[0].Score-top))
		order = append(order, best)
	}
	var sum float64
	for _, p := range prob {
		sum += p
	}
	out := []Hypothesis{{Text: best, Posterior: prob[best] / sum}}
	rest := make([]Hypothesis, 0, len(order))
	for _, t := range order {
		if t != best {
			rest = append(rest, Hypothesis{Text: t, Posterior: prob[t] / sum})
		}
	}
	// Stable sort by posterior, highest first.
	for i := 1; i < len(rest); i++ {
		for j := i; j > 0 && rest[j].Posterior > rest[j-1].Posterior; j-- {
			rest[j], rest[j-1] = rest[j-1], rest[j]
		}
	}
	return append(out, rest...)
}

// decoderRate is the acoustic model's sample rate.
const decoderRate = 16000

// cleanHyp drops fillers and anything not a vocabulary word.
func cleanHyp(h string, words map[string]bool) string {
	if h == "" {
		return ""
	}
	f := strings.Fields(h)
	out := f[:0]
	for _, w := range f {
		if i := strings.IndexByte(w, '('); i > 0 {
			w = w[:i]
		}
		if words[w] {
			out = append(out, w)
		}
	}
	return strings.Join(out, " ")
}
