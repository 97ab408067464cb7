//go:build cgo && !nopocketsphinx

package stt

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestSphinxClosedVocabulariesHaveTheirOwnDecoders: the closed-vocabulary
// passes (yes/no, digits) get decoders of their own, so the FAQ's decoder
// is never reloaded for them and back. Reloading in place kept C memory in
// pocketsphinx: koel serve's memory outside the Go heap grew 28.6 -> 68 MB
// over 1,000 KooKoo utterances with a pool of 4 switching, and 1.5 MB over
// 900 with a decoder per vocabulary. Past maxDedicatedVocabularies closed
// vocabularies share the pool again, so the decoders stay bounded.
func TestSphinxClosedVocabulariesHaveTheirOwnDecoders(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	s := newTestSphinx(t, SphinxConfig{PoolSize: 1, Registerer: reg})
	faq := demoVocabulary(t)
	yesNo := Vocabulary{Key: "yesno-pool", Closed: true, Phrases: []string{"yes", "no"}}
	idleFor := func(key string) *decoder {
		t.Helper()
		s.mu.Lock()
		defer s.mu.Unlock()
		var found *decoder
		for _, p := range s.idle {
			if strings.Contains(p.d.key, key) {
				if found != nil {
					t.Fatalf("two idle decoders for %s", key)
				}
				found = p.d
			}
		}
		if found == nil {
			t.Fatalf("no idle decoder for %s", key)
		}
		return found
	}
	steps := []struct {
		v         Vocabulary
		say, want string
	}{
		{faq, "where is my order", "order"},
		{yesNo, "yes", "yes"},
		{faq, "where is my order", "order"},
		{yesNo, "no", "no"},
	}
	first := map[string]*decoder{}
	for i, st := range steps {
		r, err := Transcribe(t.Context(), s, st.v, phoneLine(t, st.say, "en-us"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(strings.Fields(r.Text), st.want) {
			t.Errorf("step %d (%s): heard %q, want %q in it", i, st.v.Key, r.Text, st.want)
		}
		d := idleFor(st.v.Key)
		if prev, ok := first[st.v.Key]; ok && prev != d {
			t.Errorf("step %d: %s got another decoder, want the one it had", i, st.v.Key)
		}
		first[st.v.Key] = d
	}
	if got := testutil.ToFloat64(s.metrics.switches); got != 0 {
		t.Errorf("vocabulary switches = %v, want 0", got)
	}
	if got := testutil.ToFloat64(s.metrics.decoders); got != 2 {
		t.Errorf("decoders = %v, want 2 (the shared one and yes/no's)", got)
	}

	// Closed vocabularies past the bound share the pool: one more decoder
	// at most per dedicated vocabulary, none for the rest.
	for i := range maxDedicatedVocabularies + 2 {
		v := Vocabulary{Key: fmt.Sprintf("closed-%d", i), Closed: true, Phrases: []string{"yes", "no"}}
		if _, err := Transcribe(t.Context(), s, v, phoneLine(t, "yes", "en-us")); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := testutil.ToFloat64(s.metrics.decoders), float64(1+maxDedicatedVocabularies); got != want {
		t.Errorf("decoders = %v after %d more closed vocabularies, want %v (bounded)", got, maxDedicatedVocabularies+2, want)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("metrics lint: %v %v", err, problems)
	}
}
