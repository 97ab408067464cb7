package faq

import (
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/koelvoice/koel/ivr"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"Where's my ORDER??", []string{"where", "is", "my", "order"}},
		{"I can't log-in, it doesn’t work", []string{"i", "can", "not", "log", "in", "it", "does", "not", "work"}},
		{"order #B1234 status", []string{"order", "b1234", "status"}},
		{"\xff\xfeinvalid\xffbytes", []string{"invalid", "bytes"}},
		{"  ", nil},
		{"Café crème", []string{"café", "crème"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, normalize(tt.in)); diff != "" {
			t.Errorf("normalize(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
	if got := len(normalize(strings.Repeat("ab ", 10000))); got > maxQueryRunes {
		t.Errorf("normalize read %d words of a huge text, want at most %d", got, maxQueryRunes)
	}
}

func TestStem(t *testing.T) {
	groups := [][]string{
		{"order", "orders", "ordered", "ordering"},
		{"deliver", "delivery", "deliveries", "delivered", "delivering"},
		{"ship", "shipped", "shipping"},
		{"charge", "charges", "charged"},
		{"close", "closed", "closing"},
		{"refund", "refunds", "refunded"},
	}
	for _, g := range groups {
		want := stem(g[0])
		for _, w := range g[1:] {
			if got := stem(w); got != want {
				t.Errorf("stem(%q) = %q, want %q like stem(%q)", w, got, want, g[0])
			}
		}
	}
	// Short words and -ss/-us/-is endings are not plurals.
	for _, w := range []string{"bus", "is", "this", "address", "status", "analysis", "crème"} {
		if got := stem(w); got != w {
			t.Errorf("stem(%q) = %q, want it unchanged", w, got)
		}
	}
}

func TestMatcherMatch(t *testing.T) {
	nodes := []ivr.FAQNode{
		{Name: "hours", UserSays: []string{"what are your opening hours", "when are you open"}, BotSays: []string{"9 to 9"}, Active: true},
		{Name: "password", UserSays: []string{"reset my password", "i forgot my password"}, BotSays: []string{"Tap forgot."}, Active: true},
		{Name: "old", UserSays: []string{"tell me about the old promotion"}, BotSays: []string{"gone"}, Active: false},
		{Name: "empty", BotSays: []string{"never"}, Active: true},
		{Name: "talk_to_agent", UserSays: []string{"talk to an agent"}, BotSays: []string{"Connecting."}, Active: true},
	}
	m := NewMatcher(nodes, MatcherOptions{})
	tests := []struct {
		text    string
		node    string // "" for no match
		ok      bool
		handoff bool
	}{
		{"What are your opening hours?", "hours", true, false},
		{"um when are you guys open", "hours", true, false},
		{"i forgot my pasword", "password", true, false},   // typo: one deletion
		{"i forgot my passwordd", "password", true, false}, // typo: one insertion
		{"reset my passward", "password", true, false},     // typo: one substitution
		{"let me speak to an agent", "talk_to_agent", true, true},
		{"tell me about the old promotion", "", false, false}, // inactive node
		{"", "", false, false},
		{"?!", "", false, false},
		{"zebra giraffe", "", false, false},
	}
	for _, tt := range tests {
		got := m.Match(tt.text)
		name := ""
		if got.Node != nil {
			name = got.Node.Name
		}
		if tt.node != "" && name != tt.node || got.OK != tt.ok || got.Handoff != tt.handoff {
			t.Errorf("Match(%q) = node %q score %.3f ok %v handoff %v; want node %q ok %v handoff %v",
				tt.text, name, got.Score, got.OK, got.Handoff, tt.node, tt.ok, tt.handoff)
		}
		if got.Score < 0 || got.Score > 1 || math.IsNaN(got.Score) {
			t.Errorf("Match(%q) score %v outside [0, 1]", tt.text, got.Score)
		}
	}
	// An exact user-says scores 1.
	if got := m.Match("reset my password"); math.Abs(got.Score-1) > 1e-9 {
		t.Errorf("exact phrase score = %v, want 1", got.Score)
	}
	// A stricter threshold rejects what the default accepts.
	strict := NewMatcher(nodes, MatcherOptions{Threshold: 0.99})
	if got := strict.Match("um when are you guys open"); got.OK {
		t.Errorf("threshold 0.99 accepted score %.3f", got.Score)
	}
	// Custom handoff nodes replace the default.
	custom := NewMatcher(nodes, MatcherOptions{HandoffNodes: []string{"password"}})
	if got := custom.Match("reset my password"); !got.Handoff {
		t.Error("custom handoff node not flagged")
	}
	if got := custom.Match("talk to an agent"); got.Handoff {
		t.Error("default handoff node flagged although HandoffNodes was set")
	}
}

func TestMatcherEmpty(t *testing.T) {
	m := NewMatcher(nil, MatcherOptions{})
	if got := m.Match("hello"); got.OK || got.Node != nil {
		t.Errorf("empty matcher matched: %+v", got)
	}
}

func TestMatcherDoesNotAlias(t *testing.T) {
	nodes := []ivr.FAQNode{{Name: "a", UserSays: []string{"hello"}, BotSays: []string{"hi"}, Active: true}}
	m := NewMatcher(nodes, MatcherOptions{})
	nodes[0].BotSays[0] = "changed"
	if got := m.Match("hello"); got.Node.BotSays[0] != "hi" {
		t.Error("matcher shares the caller's slices")
	}
}

// FuzzMatch checks the matcher never panics and keeps scores in [0, 1].
func FuzzMatch(f *testing.F) {
	nodes := loadDemoFAQ(f)
	m := NewMatcher(nodes, MatcherOptions{})
	f.Add("where is my order")
	f.Add("i cant log in")
	f.Add("\xff\x00 ’’ log in sign up")
	f.Add(strings.Repeat("deliveries ", 100))
	f.Fuzz(func(t *testing.T, text string) {
		got := m.Match(text)
		if got.Score < 0 || got.Score > 1 || math.IsNaN(got.Score) {
			t.Fatalf("score %v", got.Score)
		}
		if got.OK && got.Node == nil {
			t.Fatal("OK without node")
		}
	})
}

// BenchmarkMatch measures one query against the demo FAQ, cycling through
// the paraphrase and off-topic test sentences.
func BenchmarkMatch(b *testing.B) {
	nodes := loadDemoFAQ(b)
	para, off := loadQualityData(b)
	texts := make([]string, 0, len(para)+len(off))
	for _, p := range append(para, off...) {
		texts = append(texts, p.text)
	}
	m := NewMatcher(nodes, MatcherOptions{})
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		m.Match(texts[i%len(texts)])
		i++
	}
}

// BenchmarkMatchParallel measures throughput with every core matching.
func BenchmarkMatchParallel(b *testing.B) {
	nodes := loadDemoFAQ(b)
	para, _ := loadQualityData(b)
	m := NewMatcher(nodes, MatcherOptions{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.Match(para[i%len(para)].text)
			i++
		}
	})
}

// BenchmarkNewMatcher measures building the demo FAQ's index (done once per
// FAQ version).
func BenchmarkNewMatcher(b *testing.B) {
	nodes := loadDemoFAQ(b)
	b.ReportAllocs()
	for b.Loop() {
		NewMatcher(nodes, MatcherOptions{})
	}
}

func TestMatcherMatchAlternatives(t *testing.T) {
	nodes := []ivr.FAQNode{
		{Name: "hours", UserSays: []string{"what are your opening hours", "when are you open"}, BotSays: []string{"9 to 9"}, Active: true},
		{Name: "password", UserSays: []string{"reset my password", "i forgot my password"}, BotSays: []string{"Tap forgot."}, Active: true},
		{Name: "refund", UserSays: []string{"where is my refund"}, BotSays: []string{"Soon."}, Active: true},
	}
	m := NewMatcher(nodes, MatcherOptions{})
	// One alternative of weight 1 is Match itself.
	one := m.MatchAlternatives([]Weighted{{Text: "when are you open", Weight: 1}})
	if want := m.Match("when are you open"); one.Node == nil || one.Node.Name != want.Node.Name || math.Abs(one.Score-want.Score) > 1e-12 {
		t.Fatalf("single alternative %+v, Match %+v", one, want)
	}
	// Two likely hypotheses naming the password node outweigh a slightly
	// better best string naming the refund node.
	got := m.MatchAlternatives([]Weighted{
		{Text: "where is my refund", Weight: 0.4},
		{Text: "i forgot my password", Weight: 0.35},
		{Text: "reset my password", Weight: 0.25},
	})
	if got.Node == nil || got.Node.Name != "password" || !got.OK {
		t.Errorf("N-best vote: %+v", got)
	}
	// Hypotheses that match nothing pull the score down, under the
	// threshold.
	got = m.MatchAlternatives([]Weighted{{Text: "when are you open", Weight: 0.3}, {Text: "zebra crossing", Weight: 0.7}})
	if got.OK {
		t.Errorf("scattered hypotheses accepted: %+v", got)
	}
	for _, bad := range [][]Weighted{nil, {{Text: "when are you open", Weight: 0}}, {{Text: "when are you open", Weight: math.NaN()}}} {
		if got := m.MatchAlternatives(bad); got.Node != nil {
			t.Errorf("MatchAlternatives(%v) = %+v", bad, got)
		}
	}
}
