//go:build cgo && !nopocketsphinx

package stt

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestSphinxLattice decodes a synthesized question whose key word the
// recogniser gets wrong and checks the word posteriors read off
// pocketsphinx's lattice: every word of the best string is there with a
// real share of the probability, every word is a vocabulary word, the list
// is ordered, and it carries words that no N-best string has (what the
// matcher gains from it). It runs with the decoder's own best-path
// posteriors, with posteriors computed again at another scale, and with the
// best-path pass off (computed here).
func TestSphinxLattice(t *testing.T) {
	pcm := phoneLine(t, "my phone screen is broken what do i do", "en-us")
	for _, tt := range []struct {
		name string
		cfg  SphinxConfig
		// minBest is the least count of a best-string word: flatter
		// posteriors (a smaller scale, or a best string from the forward
		// pass alone) spread its mass over competitors.
		minBest float64
	}{
		{"decoder posteriors", SphinxConfig{PoolSize: 1, Lattice: true}, 0.3},
		{"scale 1/40", SphinxConfig{PoolSize: 1, Lattice: true, LatticeScale: 1.0 / 40}, 0.02},
		{"bestpath off", SphinxConfig{PoolSize: 1, Lattice: true, DecoderArgs: []string{"-bestpath", "no"}}, 0.02},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSphinx(t, tt.cfg)
			v := demoVocabulary(t)
			r, err := Transcribe(t.Context(), s, v, pcm)
			if err != nil {
				t.Fatal(err)
			}
			if r.Text == "" || len(r.Lattice) == 0 {
				t.Fatalf("no transcript or lattice: %+v", r)
			}
			t.Logf("%q, lattice %v", r.Text, r.Lattice)
			files, err := s.vocabulary(t.Context(), v)
			if err != nil {
				t.Fatal(err)
			}
			count := map[string]float64{}
			for i, w := range r.Lattice {
				if !(w.Count >= DefaultLatticeFloor) || w.Count > 10 {
					t.Errorf("%q: count %g", w.Word, w.Count)
				}
				if i > 0 && w.Count > r.Lattice[i-1].Count {
					t.Errorf("not ordered at %d: %v", i, r.Lattice)
				}
				if !files.Words[w.Word] {
					t.Errorf("%q is not a vocabulary word", w.Word)
				}
				count[w.Word] = w.Count
			}
			for _, w := range strings.Fields(r.Text) {
				if count[w] < tt.minBest {
					t.Errorf("best-path word %q has lattice count %g", w, count[w])
				}
			}
			var inAlts []string
			for _, a := range r.Alternatives {
				inAlts = append(inAlts, strings.Fields(a.Text)...)
			}
			var extra []string
			for _, w := range r.Lattice {
				if !slices.Contains(inAlts, w.Word) {
					extra = append(extra, w.Word)
				}
			}
			if len(extra) == 0 {
				t.Errorf("lattice %v has no word beyond the N-best list %v", r.Lattice, r.Alternatives)
			}
			// A fresh decoder and a warm one agree on the text, the
			// confidence and the N-best list, but not exactly on the
			// lattice: its first words' posteriors move by a few
			// hundredths (and more at other scales) with what the
			// decoder heard before, so the lattice is not part of the
			// same-recording-same-result guarantee. The same history gives
			// the same lattice.
			second, err := Transcribe(t.Context(), s, v, pcm)
			if err != nil {
				t.Fatal(err)
			}
			third, err := Transcribe(t.Context(), s, v, pcm)
			if err != nil {
				t.Fatal(err)
			}
			if second.Text != r.Text || second.Confidence != r.Confidence || !reflect.DeepEqual(second.Alternatives, r.Alternatives) {
				t.Errorf("warm decode %+v, fresh %+v", second, r)
			}
			if !reflect.DeepEqual(third, second) {
				t.Errorf("same history, different result: %+v, then %+v", second, third)
			}
		})
	}
	t.Run("off by default", func(t *testing.T) {
		s := newTestSphinx(t, SphinxConfig{PoolSize: 1})
		r, err := Transcribe(t.Context(), s, demoVocabulary(t), pcm)
		if err != nil {
			t.Fatal(err)
		}
		if r.Lattice != nil {
			t.Errorf("lattice without asking: %v", r.Lattice)
		}
	})
}
