package faq

import "github.com/koelvoice/koel/ivr/bot"

// voiceAlternatives returns a voice request's N-best hypotheses as
// weighted texts; a request without them gives its text at weight 1.
func voiceAlternatives(req bot.Request) []Weighted {
	if len(req.Alternatives) == 0 {
		return []Weighted{{Text: req.Text, Weight: 1}}
	}
	alts := make([]Weighted, len(req.Alternatives))
	for i, a := range req.Alternatives {
		alts[i] = Weighted{Text: a.Text, Weight: a.Weight}
	}
	return alts
}

// latticeWords converts a request's lattice evidence for the matcher.
func latticeWords(in []bot.WordCount) []WordCount {
	out := make([]WordCount, len(in))
	for i, w := range in {
		out[i] = WordCount{Word: w.Word, Count: w.Count}
	}
	return out
}
