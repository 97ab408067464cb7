package stt

import "fmt"

// tuning holds the recogniser's measured settings: decoder options,
// front-end overrides written into the telephone model's feat.params, the
// garbage-model penalty and the language-model recipe. defaultTuning holds
// the values chosen on the acceptance set (TestAcceptance); the package's
// tests try others (TestTune) without touching shared state.
type tuning struct {
	// args are decoder options beyond model and vocabulary files.
	args []string
	// lmArgs apply to language-model search only.
	lmArgs []string
	// feat overrides lines of the model's feat.params ("-upperf", "3800").
	// feat.params overrides command-line options, so front-end settings
	// must go there.
	feat [][2]string
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
	// generalWords is how many of the most frequent general-English
	// words (from the model's en-us.lm.bin) join the vocabulary; 0 adds
	// none.
	generalWords int
	// generalWeight is their share of the unigram mass.
	generalWeight float64
}

// String renders l for cache keys.
func (l lmTuning) String() string {
	return fmt.Sprintf("d=%g,b=%d,c=%t,gw=%d,gl=%g", l.discount, l.botWeight, l.carriers, l.generalWords, l.generalWeight)
}

// defaultTuning returns the settings measured best on the acceptance set
// (G.711 espeak-ng speech, 3 voices; figures in TestAcceptance's doc).
func defaultTuning() tuning {
	return tuning{
		args: []string{
			// Spectral subtraction hurts band-limited, upsampled audio
			// (+3 points of word accuracy without it).
			"-remove_noise", "no",
			// Score the 12 best Gaussians of each mixture instead of 4:
			// +4 to +5 points of word accuracy (16 measured no better and
			// slower). It costs decoding time, which the next option pays
			// back.
			"-topn", "12",
			// No second (flat-lexicon) pass: as accurate or better on this
			// small vocabulary, and it keeps the real-time factor under
			// 0.05 (0.045 measured, against 0.07 with the pass).
			"-fwdflat", "no",
			// At most 10 distinct words may end in one frame. Without a
			// cap the garbage phone words end almost everywhere, and the
			// lattice that the best path and the N-best list search grows
			// with them: TestTune's decode CPU went from 447 to 180 ms per
			// utterance, word accuracy 64.0 -> 63.3 %, off-topic rejected
			// 97.2 / 91.7 -> 100 / 91.7 %. 5 costs 3 points of words; a
			// tighter -wbeam 1e-20 alone saves as much (187 ms, 63.7 %).
			"-maxwpf", "10",
		},
		// A heavier language weight than the default 6.5 keeps the small
		// domain model in charge; 8 measured best (7..10 within 2
		// points of word accuracy).
		lmArgs: []string{"-lw", "8"},
		// The garbage penalty trades word accuracy for off-topic
		// rejection: -0.8 rejects 97 % but costs 6 points of word
		// accuracy, -1.1 and weaker keep words but reject only 60-80 %.
		garbageLogProb: -1.0,
		lm:             lmTuning{discount: 0.5, botWeight: 2, carriers: true},
	}
}

// vocabKey is the part of t that changes the files built for a
// vocabulary.
func (t tuning) vocabKey() string {
	return fmt.Sprintf("g=%g,%s", t.garbageLogProb, t.lm)
}
