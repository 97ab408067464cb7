package faq

import "testing"

// TestMatcherSupport: the content words a match rests on, against the
// content words of the text (function words and fillers never count;
// synonyms and typos count as the FAQ's words).
func TestMatcherSupport(t *testing.T) {
	m := NewMatcher(loadDemoFAQ(t), MatcherOptions{})
	tests := []struct {
		text        string
		used, words int
	}{
		{"I forgot my password", 2, 2},
		{"um sir kindly tell me where is your shop", 2, 2}, // "where" and "shop" (= store),
		{"where is my parcel", 2, 2},
		{"what is the about human shipment", 1, 3}, // "human" (= agent) of about, human, shipment,
		{"please please please", 0, 0},
		{"my pasword zzzz qqqq", 1, 3},
	}
	for _, tt := range tests {
		got := m.Match(tt.text)
		used, words := m.Support(tt.text, got.Node)
		name := "<nil>"
		if got.Node != nil {
			name = got.Node.Name
		}
		if used != tt.used || words != tt.words {
			t.Errorf("Support(%q, %s) = %d of %d, want %d of %d", tt.text, name, used, words, tt.used, tt.words)
		}
	}
	if used, words := m.Support("where is my order", nil); used != 0 || words != 2 {
		t.Errorf("Support with no node = %d of %d, want 0 of 2", used, words)
	}
}
