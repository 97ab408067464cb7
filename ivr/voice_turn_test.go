package ivr

import "testing"

func TestThinMatch(t *testing.T) {
	tests := []struct {
		name   string
		reply  Reply
		unsure bool
		want   bool
	}{
		{"one word of an unsure transcript", Reply{Node: "offers", Support: 1, Words: 1}, true, true},                 // "no promos for" at 0.45
		{"one word among others the node does not use", Reply{Node: "greeting", Support: 1, Words: 2}, false, true},   // "can i hey my mobile hi" at 1.0
		{"only function words in common", Reply{Node: "opening_hours", Support: 0, Words: 2}, false, true},            // "what are your my refund"
		{"the caller said just that word, heard surely", Reply{Node: "greeting", Support: 1, Words: 1}, false, false}, // "hello"
		{"two words of the node, unsure", Reply{Node: "order_status", Support: 2, Words: 3}, true, false},
		{"a bot that does not count words", Reply{Node: "order_status_api", Support: 0, Words: 0}, true, false},
		{"the fallback", Reply{Fallback: true, Words: 3}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := thinMatch(tt.reply, tt.unsure); got != tt.want {
				t.Errorf("thinMatch(%+v, unsure %t) = %t, want %t", tt.reply, tt.unsure, got, tt.want)
			}
		})
	}
}
