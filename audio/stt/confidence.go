package stt

import "strings"

// segment is one word of a recognised utterance.
type segment struct {
	Word       string
	Start, End int // frames (10 ms)
	Ascr       int // acoustic score (log domain, sphinx units)
}

// scoreResult turns a cleaned hypothesis and its segmentation into a
// Result. The confidence is the share of the utterance's speech frames
// that the decoder explained with vocabulary words rather than with the
// garbage phone loop (silence and noise fillers do not count): speech the
// vocabulary covers scores near 1, off-topic speech falls under
// DefaultMinConfidence.
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
	conf := 1.0
	if inVocab+garbage > 0 {
		conf = float64(inVocab) / float64(inVocab+garbage)
	}
	return Result{Text: text, Confidence: conf, Words: len(strings.Fields(text))}
}
