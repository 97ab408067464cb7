package faq

import (
	"testing"

	"github.com/koelvoice/koel/ivr"
)

// TestMatcherNumberWords: a digit name the FAQ never uses, as telephone
// recognisers insert them into questions, weighs as a function word, so it
// no longer sinks the match; off-topic text stays rejected, and an FAQ that
// uses a number word scores it as content.
func TestMatcherNumberWords(t *testing.T) {
	demo := NewMatcher(loadDemoFAQ(t), MatcherOptions{})
	node := func(name string, says ...string) ivr.FAQNode {
		return ivr.FAQNode{Name: name, UserSays: says, BotSays: []string{name}, Active: true}
	}
	plans := NewMatcher([]ivr.FAQNode{
		node("plan_one", "tell me about plan one"),
		node("plan_two", "tell me about plan two"),
		node("hours", "what are your opening hours"),
	}, MatcherOptions{})
	tests := []struct {
		name string
		m    *Matcher
		text string
		node string // "" = no match above the threshold
	}{
		// Issue 8's "do you deliver to chennai", heard by pocketsphinx
		// with flite slt's voice (scored 0.28 when "nine" weighed as an
		// unknown content word).
		{"inserted digit", demo, "do you deliver to to nine", "delivery_time"},
		{"inserted digit among content words", demo, "my phone three broken", "repair"},
		{"two inserted digits", demo, "where is my order one two", "order_status"},
		{"digits alone", demo, "nine three", ""},
		{"off-topic with digits", demo, "what is nine plus three", ""},
		{"off-topic with a digit", demo, "is it going to rain at nine", ""},
		// Numbers the FAQ uses are its words: they tell plans apart.
		{"a number the FAQ uses", plans, "plan two please", "plan_two"},
		{"the other number", plans, "about plan one", "plan_one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.m.Match(tt.text)
			name := ""
			if got.OK {
				name = got.Node.Name
			}
			if name != tt.node {
				t.Errorf("Match(%q) = %q (score %.3f, ok %v), want %q", tt.text, name, got.Score, got.OK, tt.node)
			}
		})
	}
	// The inserted digit costs little: the score stays close to the
	// question without it.
	with, without := demo.Match("do you deliver to to nine"), demo.Match("do you deliver to")
	if without.Score-with.Score > 0.1 {
		t.Errorf("an inserted \"nine\" lowers the score from %.3f to %.3f", without.Score, with.Score)
	}
}
