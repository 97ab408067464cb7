package faq

import (
	"math"
	"strings"
	"testing"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot"
)

func latticeNodes() []ivr.FAQNode {
	return []ivr.FAQNode{
		{Name: "repair", UserSays: []string{"my phone screen is broken", "how do i get my phone repaired"}, BotSays: []string{"Bring it in."}, Active: true},
		{Name: "delivery", UserSays: []string{"do you deliver to chennai", "how long does delivery take"}, BotSays: []string{"Two days."}, Active: true},
		{Name: "hours", UserSays: []string{"when are you open on sunday", "what are your opening hours"}, BotSays: []string{"9 to 9"}, Active: true},
	}
}

// bagOf is text as a lattice that doubts nothing: every word counted once.
func bagOf(text string) []WordCount {
	var out []WordCount
	for _, w := range strings.Fields(text) {
		out = append(out, WordCount{Word: w, Count: 1})
	}
	return out
}

// TestScoreBagMatchesText: a bag of counts 1 scores exactly like the text
// it came from (no word repeated, no multi-word rewrite), so the lattice
// evidence is on the matcher's own scale.
func TestScoreBagMatchesText(t *testing.T) {
	m := NewMatcher(latticeNodes(), MatcherOptions{})
	for _, text := range []string{
		"my phone screen is broken", "do you deliver to chennai", "when are you open",
		"what is the capital of france", "my phone three broken", "zebra",
	} {
		want := m.Match(text)
		got := m.MatchLattice(nil, bagOf(text), 1)
		if math.Abs(got.Score-want.Score) > 1e-12 || got.OK != want.OK || (got.Node == nil) != (want.Node == nil) ||
			got.Node != nil && got.Node.Name != want.Node.Name {
			t.Errorf("%q: bag %+v, text %+v", text, got, want)
		}
	}
}

func TestMatchLattice(t *testing.T) {
	m := NewMatcher(latticeNodes(), MatcherOptions{})
	// The recogniser's N-best list heard "three" where the caller said
	// "screen"; the lattice has "screen" under it at 0.4.
	alts := []Weighted{{Text: "my phone three broken", Weight: 0.7}, {Text: "my phone free broken", Weight: 0.3}}
	screen := []WordCount{{"broken", 1}, {"my", 0.9}, {"phone", 0.8}, {"three", 0.5}, {"screen", 0.4}, {"free", 0.1}}
	nbest := m.MatchAlternatives(alts)
	tests := []struct {
		name   string
		alts   []Weighted
		words  []WordCount
		weight float64
		// want: "same" as MatchAlternatives, "higher" for the same node
		// at a higher score, "lower" for a lower score.
		want string
		node string
	}{
		{"weight 0 is MatchAlternatives", alts, screen, 0, "same", "repair"},
		{"no words is MatchAlternatives", alts, nil, 0.5, "same", "repair"},
		{"negative weight is 0", alts, screen, -1, "same", "repair"},
		{"a lattice word the N-best list lacks raises its node", alts, screen, 0.5, "higher", "repair"},
		{"weight above 1 is 1", alts, screen, 7, "higher", "repair"},
		{"faint unrelated words lower the score", alts, []WordCount{{"broken", 1}, {"my", 0.9}, {"phone", 0.8}, {"zebra", 0.9}, {"giraffe", 0.9}}, 0.5, "lower", "repair"},
		{"bad counts are ignored", alts, []WordCount{{"screen", math.NaN()}, {"screen", -3}, {"screen", math.Inf(1)}}, 0.5, "lower", "repair"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := m.MatchLattice(tt.alts, tt.words, tt.weight)
			if got.Node == nil || got.Node.Name != tt.node {
				t.Fatalf("node %+v, want %s", got.Node, tt.node)
			}
			if got.Score < 0 || got.Score > 1 || math.IsNaN(got.Score) {
				t.Errorf("score %v outside [0, 1]", got.Score)
			}
			switch tt.want {
			case "same":
				if got.Score != nbest.Score || got.OK != nbest.OK {
					t.Errorf("score %.4f ok %v, MatchAlternatives %.4f ok %v", got.Score, got.OK, nbest.Score, nbest.OK)
				}
			case "higher":
				if !(got.Score > nbest.Score+0.02) {
					t.Errorf("score %.4f, not above MatchAlternatives' %.4f", got.Score, nbest.Score)
				}
			case "lower":
				if !(got.Score < nbest.Score) {
					t.Errorf("score %.4f, not below MatchAlternatives' %.4f", got.Score, nbest.Score)
				}
			}
		})
	}
	// The mix is linear in the weight: halfway between the N-best score
	// and the bag's own score.
	bag := m.MatchLattice(nil, screen, 1)
	half := m.MatchLattice(alts, screen, 0.5)
	if want := (nbest.Score + bag.Score) / 2; math.Abs(half.Score-want) > 1e-12 {
		t.Errorf("weight 0.5 score %.6f, want %.6f (N-best %.6f, bag %.6f)", half.Score, want, nbest.Score, bag.Score)
	}
	if got := NewMatcher(nil, MatcherOptions{}).MatchLattice(alts, screen, 0.5); got.Node != nil {
		t.Errorf("empty FAQ matched %+v", got)
	}
}

// TestBotVoiceLattice: a voice request's lattice moves the bot's answer
// only when Options.LatticeWeight is set, and never for text.
func TestBotVoiceLattice(t *testing.T) {
	s := newFakeStore(ivr.Business{ID: 1})
	s.nodes[1] = latticeNodes()
	req := bot.Request{BusinessID: 1, Text: "my phone three", Voice: true,
		Lattice: []bot.WordCount{{Word: "my", Count: 1}, {Word: "phone", Count: 0.9}, {Word: "screen", Count: 0.6}, {Word: "broken", Count: 0.6}, {Word: "three", Count: 0.4}}}
	without, err := New(s, Options{}).Reply(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	with, err := New(s, Options{LatticeWeight: 0.5}).Reply(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if with.Node != "repair" || !(with.Confidence > without.Confidence) {
		t.Errorf("with the lattice %+v, without %+v", with, without)
	}
	req.Voice = false
	text, err := New(s, Options{LatticeWeight: 0.5}).Reply(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if text.Confidence != without.Confidence {
		t.Errorf("text request used the lattice: %+v, want %+v", text, without)
	}
}
