package stt

import (
	"fmt"
	"strconv"
	"strings"
)

// tuning holds the recogniser's measured settings: decoder options,
// front-end overrides written into the telephone model's feat.params, the
// garbage-model penalty and the language-model recipe. The values in
// defaultTuning were chosen on the acceptance set (sphinx_test.go); the
// package's tests can try others without touching shared state.
type tuning struct {
	// args are decoder options beyond model and vocabulary files.
	args []string
	// lmArgs apply to language-model search only.
	lmArgs []string
	// feat overrides lines of the model's feat.params ("-upperf", "3800").
	// feat.params overrides command-line options, so front-end settings
	// must go there.
	feat [][2]string
	// batchCMN makes whole-buffer transcription (Transcribe) normalise the
	// cepstral mean over the whole utterance; streams always use live CMN.
	batchCMN bool
	// resetCMN starts every utterance from the telephone cepstral mean
	// instead of the mean the decoder carried over from earlier callers.
	resetCMN bool
	// cmnInit is the initial cepstral mean, written into feat.params and
	// used by resetCMN.
	cmnInit string
	// bandExtGain is the level of the folded high band added to upsampled
	// audio (see bandExtender); 0 disables it.
	bandExtGain float64
	// posterior folds the best path's posterior probability (ps_get_prob,
	// needs -bestpath yes) into the confidence; posteriorOnly uses it
	// alone.
	posterior, posteriorOnly bool
	// garbageLogProb is the unigram log10 probability of each garbage
	// phone word; 0 leaves the garbage model out.
	garbageLogProb float64
	// lm is the language-model recipe.
	lm lmTuning
}

// lmTuning is how the domain language model is built.
type lmTuning struct {
	// discount is the absolute discount of seen bigrams and trigrams.
	discount float64
	// botWeight is how many times each bot phrase counts on its own.
	botWeight int
	// carriers wraps bot phrases in carrier prefixes and suffixes.
	carriers bool
}

// parseFloats parses a comma-separated list of numbers.
func parseFloats(s string) ([]float32, error) {
	var out []float32
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 32)
		if err != nil {
			return nil, fmt.Errorf("stt: bad number %q: %w", f, err)
		}
		out = append(out, float32(v))
	}
	return out, nil
}

// String renders the parts of t that shape built files, for cache keys.
func (l lmTuning) String() string {
	return fmt.Sprintf("d=%g,b=%d,c=%t", l.discount, l.botWeight, l.carriers)
}

// defaultTuning returns the settings measured best on the acceptance set.
func defaultTuning() tuning {
	return tuning{
		// -remove_noise is off: spectral subtraction hurts band-limited,
		// upsampled audio (measured: +3 points of word accuracy without).
		args:           []string{"-logfn", "/dev/null", "-remove_noise", "no"},
		lmArgs:         []string{"-lw", "10"},
		cmnInit:        telephoneCMNInit,
		garbageLogProb: -1.0,
		lm:             lmTuning{discount: 0.5, botWeight: 2, carriers: true},
	}
}

// vocabKey is the part of t that changes the files built for a
// vocabulary.
func (t tuning) vocabKey() string {
	return fmt.Sprintf("g=%g,%s", t.garbageLogProb, t.lm)
}

// featString renders the feat overrides, for logs and cache keys.
func (t tuning) featString() string {
	var b strings.Builder
	for _, kv := range t.feat {
		b.WriteString(kv[0] + " " + kv[1] + "\n")
	}
	return b.String()
}
