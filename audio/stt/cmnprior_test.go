//go:build cgo && !nopocketsphinx

package stt

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestMeasureCMNPrior is the tool behind the telephone cepstral priors: it
// decodes the acceptance utterances with batch CMN and prints the mean of
// their cepstral means (with the band fill on, or off with STT_NOFILL=1).
// It only runs with STT_TUNE=1.
func TestMeasureCMNPrior(t *testing.T) {
	if os.Getenv("STT_TUNE") == "" {
		t.Skip("tuning tool: set STT_TUNE=1")
	}
	s := newTestSphinx(t, SphinxConfig{PoolSize: 1, CMN: CMNBatch, NoBandFill: os.Getenv("STT_NOFILL") != ""})
	v := demoVocabulary(t)
	var sum []float64
	n := 0
	for _, u := range readUtterances(t, "utterances.tsv") {
		for _, voice := range testVoices {
			if _, err := Transcribe(t.Context(), s, v, phoneLine(t, u.text, voice)); err != nil {
				t.Fatal(err)
			}
			s.mu.Lock()
			p := s.idle[0]
			s.mu.Unlock()
			m := p.d.cmnMean()
			if sum == nil {
				sum = make([]float64, len(m))
			}
			for i, x := range m {
				sum[i] += float64(x)
			}
			n++
		}
	}
	f := make([]string, len(sum))
	for i := range sum {
		f[i] = fmt.Sprintf("%.1f", sum[i]/float64(n))
	}
	t.Logf("%d utterances; mean cepstrum: %s", n, strings.Join(f, ","))
}
