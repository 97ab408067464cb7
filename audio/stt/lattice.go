package stt

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

// WordPosterior is the evidence a recogniser's word lattice gives for one
// vocabulary word: how many times the caller said it, in expectation over
// every path of the lattice. A word on the best path that no competing
// path doubts counts 1; a word only some paths carry (often one no N-best
// string has, such as "screen" under "three") counts its share of the
// probability.
type WordPosterior struct {
	// Word is a vocabulary word, lower case.
	Word string
	// Count is the word's expected count: the sum of the posteriors of the
	// lattice links carrying it, so it may exceed 1 for a word said twice.
	Count float64
}

// DefaultLatticeFloor is the smallest expected count kept in
// [Result.Lattice]; rarer words are dropped.
const DefaultLatticeFloor = 0.01

// wordPosteriors sums the link posteriors of links per vocabulary word
// (fillers, garbage phones and words outside words dropped; pronunciation
// variants "word(2)" count as the word), drops counts under floor, rounds
// them to four decimals, and orders them by count, highest first, then by
// word, so one lattice always gives the same list.
func wordPosteriors(links []latticeLink, words map[string]bool, floor float64) []WordPosterior {
	sum := map[string]float64{}
	for _, l := range links {
		w := l.Word
		if i := strings.IndexByte(w, '('); i > 0 {
			w = w[:i]
		}
		if !words[w] || !(l.Posterior > 0) {
			continue
		}
		sum[w] += l.Posterior
	}
	out := make([]WordPosterior, 0, len(sum))
	for w, c := range sum {
		c = math.Round(c*1e4) / 1e4
		if c < floor {
			continue
		}
		out = append(out, WordPosterior{Word: w, Count: c})
	}
	slices.SortFunc(out, func(a, b WordPosterior) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Word, b.Word)
	})
	if len(out) == 0 {
		return nil
	}
	return out
}

// latticeLink is one link of a word lattice: the word it carries, its
// frames and its posterior probability.
type latticeLink struct {
	Word       string
	Start, End int     // frames (10 ms)
	Posterior  float64 // in [0, 1]
}
