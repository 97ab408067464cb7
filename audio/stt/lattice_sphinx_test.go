//go:build cgo && !nopocketsphinx

package stt

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio/audiotest"
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
			// A warm decoder gives what the fresh one gave, lattice
			// included (TestSphinxLatticeHistoryFree tries other
			// histories).
			second, err := Transcribe(t.Context(), s, v, pcm)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(second, r) {
				t.Errorf("warm decode %+v, fresh %+v", second, r)
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

// TestSphinxLatticeHistoryFree decodes one recording on a fresh decoder
// and again on the same decoder after other audio (another question,
// silence, loud noise, the recording itself) and wants the same result,
// lattice word posteriors included: the lattice is match evidence, so what
// an earlier caller said must not move it.
func TestSphinxLatticeHistoryFree(t *testing.T) {
	a := phoneLine(t, "my phone screen is broken what do i do", "en-us")
	others := []struct {
		name string
		pcm  []int16
	}{
		{"the same recording", a},
		{"another question", phoneLine(t, "i want to return a product", "en-gb")},
		{"silence", audiotest.ULawRoundTrip(audiotest.Silence(2 * time.Second)).Samples},
		{"loud noise", audiotest.ULawRoundTrip(audiotest.Noise(3*time.Second, -20, 5)).Samples},
	}
	for _, mode := range []CMNMode{CMNPrior, CMNBatch} {
		t.Run(mode.String(), func(t *testing.T) {
			s := newTestSphinx(t, SphinxConfig{PoolSize: 1, CMN: mode, Lattice: true})
			v := demoVocabulary(t)
			fresh, err := Transcribe(t.Context(), s, v, a)
			if err != nil {
				t.Fatal(err)
			}
			if len(fresh.Lattice) == 0 {
				t.Fatalf("no lattice: %+v", fresh)
			}
			for _, b := range others {
				if _, err := Transcribe(t.Context(), s, v, b.pcm); err != nil && !errors.Is(err, ErrEmptyAudio) {
					t.Fatalf("%s: %v", b.name, err)
				}
				warm, err := Transcribe(t.Context(), s, v, a)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(warm, fresh) {
					t.Errorf("after %s:\n got lattice %v\nfresh lattice %v", b.name, warm.Lattice, fresh.Lattice)
				}
			}
		})
	}
}
