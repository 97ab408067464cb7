package voiceeval

import (
	"strings"
	"testing"

	"github.com/koelvoice/koel/audio/stt"
)

// TestPerfectEar: each registered text comes back from its own stand-in
// recording at confidence 1, the same text keeps its recording, and a
// recording of no registered length is heard as nothing.
func TestPerfectEar(t *testing.T) {
	ear := newPerfectEar()
	a, b := ear.utterance("where is my order"), ear.utterance("yes")
	if again := ear.utterance("where is my order"); len(again.Samples) != len(a.Samples) {
		t.Fatalf("same text, recordings of %d and %d samples", len(a.Samples), len(again.Samples))
	}
	tests := []struct {
		name     string
		pcm      []int16
		wantText string
		wantConf float64
	}{
		{"first text", a.Samples, "where is my order", 1},
		{"second text", b.Samples, "yes", 1},
		{"unregistered length", make([]int16, 10), "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := stt.Transcribe(t.Context(), ear, stt.Vocabulary{Key: "k"}, tt.pcm)
			if err != nil {
				t.Fatal(err)
			}
			if res.Text != tt.wantText || res.Confidence != tt.wantConf || res.Words != len(strings.Fields(tt.wantText)) {
				t.Errorf("heard %q at %.2f (%d words), want %q at %.2f", res.Text, res.Confidence, res.Words, tt.wantText, tt.wantConf)
			}
		})
	}
}

// textFloors are the text path's figures per split (counts of
// utterances): the ceiling the FAQ matcher and the voice turn's bands set
// for any recogniser. Raise them as the matcher improves; the test split
// is measured, never tuned on. The first-reply floors fell (66 -> 55,
// 47 -> 44) with the thin-match guard: a longer question whose answer rests
// on one of its content words is confirmed, not spoken, even when it was
// heard perfectly; within one confirmation did not move.
var textFloors = map[string]struct {
	first, within, maxWrong, rejected int
}{
	SplitTune: {first: 55, within: 91, maxWrong: 1, rejected: 33},
	SplitTest: {first: 44, within: 58, maxWrong: 1, rejected: 22},
}

// TestTextCeiling sends both splits' text through the KooKoo call with a
// perfect recogniser (`koel eval voice -path text`) and asserts the
// floors: no synthesizer or pocketsphinx is needed.
func TestTextCeiling(t *testing.T) {
	for _, split := range []string{SplitTune, SplitTest} {
		t.Run(split, func(t *testing.T) {
			rep, err := Run(t.Context(), Config{Split: split, Path: PathText, Stack: StackConfig{DataDir: t.TempDir()}})
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			_ = rep.WriteTable(&b)
			t.Log("\n" + b.String())
			if len(rep.Engines) != 1 || rep.Engines[0].Name != EngineText {
				t.Fatalf("engines %+v, want one %q row", rep.Engines, EngineText)
			}
			f, floor := rep.Total, textFloors[split]
			count := func(r float64, n int) int { return int(r*float64(n) + 0.5) }
			if f.WordAccuracy != 1 {
				t.Errorf("word accuracy %.3f, want 1 (the text is the transcript)", f.WordAccuracy)
			}
			if got := count(f.FirstRight, f.Questions); got < floor.first {
				t.Errorf("right on the first reply %d/%d, floor %d", got, f.Questions, floor.first)
			}
			if got := count(f.WithinOne, f.Questions); got < floor.within {
				t.Errorf("right within one confirmation %d/%d, floor %d", got, f.Questions, floor.within)
			}
			if got := count(f.ConfidentlyWrong, f.Questions); got > floor.maxWrong {
				t.Errorf("confidently wrong %d/%d, ceiling %d", got, f.Questions, floor.maxWrong)
			}
			if got := count(f.OffTopicRejected, f.OffTopic); got < floor.rejected {
				t.Errorf("off-topic rejected %d/%d, floor %d", got, f.OffTopic, floor.rejected)
			}
			if got := count(f.AnswersUnderstood, f.Answers); got != f.Answers {
				t.Errorf("yes/no/cancel understood %d/%d, want all", got, f.Answers)
			}
		})
	}
}
