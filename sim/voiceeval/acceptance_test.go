package voiceeval

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koelvoice/koel/audio/stt"
)

// Issue 8's acceptance targets, per synthesizer, on the test split.
const (
	targetWithinOne        = 0.85
	targetConfidentlyWrong = 0.03
	targetOffTopicRejected = 0.90
)

// floors are the figures this subset reached when the current recogniser
// and matcher were committed, less a margin of a few utterances; the test
// fails below them so the figures cannot regress. README ("Voice
// understanding: measured") has the full test-split figures and the gap
// to the targets.
//
// Reached at commit (48 questions and 48 off-topic utterances per
// synthesizer): espeak-ng first 2.1 %, within one confirmation 18.8 %
// (39.6 % answering with key 1), confidently wrong 4.2 %, off-topic
// rejected 89.6 %; flite 14.6 %, 20.8 % (33.3 %), 0.0 %, 100 %. Floors are
// two utterances (4.2 points) under, ceilings two over.
//
// Since unsure words scale the bot's confidence by the square of their
// shortfall (instead of forcing a confirmation): espeak-ng first 14.6 %,
// within one 18.8 % (31.2 % with key 1), confidently wrong 8.3 %,
// off-topic rejected 85.4 %; flite 18.8 %, 25.0 % (29.2 %), 2.1 %, 95.8 %.
// More questions are answered at once and fewer are confirmed, so fewer
// are saved by a keyed yes: espeak-ng's key-1 floor moved to two
// utterances under its new figure.
//
// Since the yes/no-only decoder pass in the confirming state (spoken yes
// heard in a closed yes/no vocabulary): espeak-ng first 10.4 %, within one
// 25.0 % (27.1 % with key 1), confidently wrong 4.2 %, off-topic rejected
// 91.7 %; flite 20.8 %, 27.1 % (31.2 %), 2.1 %, 100 %. Floors and ceilings
// moved to two utterances from these figures where that tightens them;
// none was loosened.
//
// YesHeard (of the confirmations naming the expected topic, the share whose
// spoken yes got the answer), since the yes/no pass takes a yes at 0.3:
// espeak-ng 87.5 % (7 of 8), flite 60 % (3 of 5; rms and awb are not
// heard). Its floor is two utterances under; a build without the yes/no
// pass gives 0 % (session 4 measured such a build as "the pass's gain
// lost").
//
// Since the pass also runs on an unsure yes or no of the open pass, with
// the shorter phrase list (flite rms's yes: "no" at 0.28 in the open pass,
// "yes" at 1.0 in the closed one): flite within one 31.2 %, yes heard
// 100 % (5 of 5); espeak-ng unchanged.
//
// Since an answer resting on one content word of an unsure or longer
// transcript is confirmed instead of spoken (the thin-match guard, sixth
// session), with the matcher's session-6 lexicon: espeak-ng first 12.5 %,
// within one 27.1 % (29.2 % with key 1), confidently wrong 2.1 %,
// off-topic rejected 93.8 %; flite 18.8 %, 33.3 % (33.3 %), 0.0 %, 100 %.
// The confidently-wrong ceilings and the within-one floors moved to two
// utterances from these figures.
var floors = map[string]Figures{
	EngineEspeak: {FirstRight: 0.10, WithinOne: 0.22, WithinOneKey: 0.27, YesHeard: 0.6, ConfidentlyWrong: 0.065, OffTopicRejected: 0.87},
	EngineFlite:  {FirstRight: 0.16, WithinOne: 0.29, WithinOneKey: 0.29, YesHeard: 0.6, ConfidentlyWrong: 0.045, OffTopicRejected: 0.95},
}

// acceptancePerKind is the subset size: the first utterances of each kind
// of the test split, spread over it, in every default voice and both
// telephone variants. The full split is `koel eval voice -split test`.
const acceptancePerKind = 6

// TestAcceptance plays the test split's subset to a real stack as KooKoo
// Record events and asserts the floors per synthesizer.
func TestAcceptance(t *testing.T) {
	if testing.Short() {
		t.Skip("voice acceptance decodes a few hundred recordings")
	}
	for _, e := range []string{EngineEspeak, EngineFlite} {
		if err := Available(e); err != nil {
			t.Skipf("%v; make test installs it", err)
		}
	}
	if _, err := os.Stat(filepath.Join(stt.DefaultModelDir, "en-us", "mdef")); err != nil {
		t.Skip("pocketsphinx-en-us model not installed (make test installs it)")
	}
	rep, err := Run(t.Context(), Config{
		Split:    SplitTest,
		PerKind:  acceptancePerKind,
		CacheDir: t.TempDir(),
		Stack:    StackConfig{DataDir: t.TempDir()},
	})
	if errors.Is(err, stt.ErrUnavailable) {
		t.Skipf("pocketsphinx unavailable: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	_ = rep.WriteTable(&b)
	t.Log("\n" + b.String())
	for _, f := range rep.Engines {
		floor, ok := floors[f.Name]
		if !ok {
			t.Fatalf("no floor for %s", f.Name)
		}
		if f.Questions == 0 || f.OffTopic == 0 {
			t.Fatalf("%s: no questions or off-topic utterances played", f.Name)
		}
		if f.FirstRight < floor.FirstRight {
			t.Errorf("%s: right on the first reply %.1f%%, floor %.1f%%", f.Name, 100*f.FirstRight, 100*floor.FirstRight)
		}
		if f.WithinOne < floor.WithinOne {
			t.Errorf("%s: right within one confirmation %.1f%%, floor %.1f%%", f.Name, 100*f.WithinOne, 100*floor.WithinOne)
		}
		if f.WithinOneKey < floor.WithinOneKey {
			t.Errorf("%s: right within one confirmation answered with key 1 %.1f%%, floor %.1f%%", f.Name, 100*f.WithinOneKey, 100*floor.WithinOneKey)
		}
		if f.YesHeard < floor.YesHeard {
			t.Errorf("%s: spoken yes heard in %.1f%% of the confirmations naming the expected topic, floor %.1f%%", f.Name, 100*f.YesHeard, 100*floor.YesHeard)
		}
		if f.ConfidentlyWrong > floor.ConfidentlyWrong {
			t.Errorf("%s: confidently wrong %.1f%%, ceiling %.1f%%", f.Name, 100*f.ConfidentlyWrong, 100*floor.ConfidentlyWrong)
		}
		if f.OffTopicRejected < floor.OffTopicRejected {
			t.Errorf("%s: off-topic rejected %.1f%%, floor %.1f%%", f.Name, 100*f.OffTopicRejected, 100*floor.OffTopicRejected)
		}
		if f.WithinOne < targetWithinOne || f.ConfidentlyWrong > targetConfidentlyWrong || f.OffTopicRejected < targetOffTopicRejected {
			t.Logf("%s BELOW TARGET: within one confirmation %.1f%% (target %.0f%%), confidently wrong %.1f%% (target ≤ %.0f%%), off-topic rejected %.1f%% (target %.0f%%)",
				f.Name, 100*f.WithinOne, 100*targetWithinOne, 100*f.ConfidentlyWrong, 100*targetConfidentlyWrong, 100*f.OffTopicRejected, 100*targetOffTopicRejected)
		}
	}
}
