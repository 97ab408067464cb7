package stt

import "strings"

// segment is one word of a recognised utterance.
type segment struct {
	Word       string
	Start, End int // frames (10 ms)
	Ascr       int // acoustic score (log domain, sphinx units)
}

// garbageShareAtThreshold is the share of speech frames explained by
// vocabulary words that maps to DefaultMinConfidence. Measured on the
// acceptance set: correctly recognised questions score 0.96-1, off-topic
// speech mostly under 0.95 (threshold chosen on offtopic.tsv, checked on
// offtopic-holdout.tsv).
const garbageShareAtThreshold = 0.95

// scoreResult turns a cleaned hypothesis and its segmentation into a
// Result. The confidence is built from the share of the utterance's speech
// frames that the decoder explained with vocabulary words rather than with
// the garbage phone loop (silence and noise fillers do not count), mapped
// piecewise linearly so that garbageShareAtThreshold lands on
// DefaultMinConfidence: speech the vocabulary covers scores near 1,
// off-topic speech falls under DefaultMinConfidence.
func scoreResult(text string, segs []segment, words map[string]bool) Result {
	if text == "" {
		return Result{}
	}
	var inVocab, garbage int
	for _, s := range segs {
		w := s.Word
		if i := strings.IndexByte(w, '('); i > 0 {
			w = w[:i]
		}
		n := s.End - s.Start + 1
		switch {
		case strings.HasPrefix(w, garbagePrefix):
			garbage += n
		case words[w]:
			inVocab += n
		}
	}
	share := 1.0
	if inVocab+garbage > 0 {
		share = float64(inVocab) / float64(inVocab+garbage)
	}
	return Result{Text: text, Confidence: calibrate(share), Words: len(strings.Fields(text))}
}

// calibrate maps a vocabulary share in [0, 1] to a confidence in [0, 1]:
// linear on each side of garbageShareAtThreshold, which maps to
// DefaultMinConfidence.
func calibrate(share float64) float64 {
	const t, m = garbageShareAtThreshold, DefaultMinConfidence
	switch {
	case share <= 0:
		return 0
	case share >= 1:
		return 1
	case share < t:
		return m * share / t
	default:
		return m + (1-m)*(share-t)/(1-t)
	}
}
