package faq

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/koelvoice/koel/ivr"
)

// TestCanonicalSession6 covers the lexicon entries added on the voice
// corpus's tune split: question pairs, not wanting, ways to pay, days,
// arriving, dues, another; rewrites map through the synonym groups.
func TestCanonicalSession6(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"how long does it take", []string{"howlong", "does", "it", "take"}},
		{"how soon will it ship", []string{"howlong", "will", "it", "deliver"}},
		{"how much is it", []string{"howmuch", "is", "it"}},
		{"i don't want it", []string{"i", "cancel", "it"}},
		{"i no longer need the order", []string{"i", "cancel", "the", "order"}},
		{"a debit card", []string{"a", "creditcard"}},
		{"net banking or paytm", []string{"creditcard", "or", "creditcard"}},
		{"open on weekends", []string{"open", "on", "sunday"}},
		{"it has not come", []string{"it", "has", "not", "arrive"}},
		{"i never received it", []string{"i", "never", "arrive", "it"}},
		{"my dues", []string{"my", "bill"}},
		{"another address", []string{"different", "address"}},
		{"does it come in another color", []string{"does", "it", "arrive", "in", "another", "color"}},
		{"do you sell gift cards", []string{"do", "you", "sell", "gift", "cards"}},
		{"well that is it then", []string{"well", "that", "is", "all", "then"}},
		{"the amount due on my card", []string{"the", "balance", "on", "my", "card"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, canonical(normalize(tt.in))); diff != "" {
			t.Errorf("canonical(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

// lexiconNodes is a small FAQ with the demo FAQ's related nodes (returns
// and refunds, ways to pay and paying a bill, delivery time and charges).
func lexiconNodes() []ivr.FAQNode {
	node := func(name string, says ...string) ivr.FAQNode {
		return ivr.FAQNode{Name: name, UserSays: says, BotSays: []string{name}, Active: true}
	}
	return []ivr.FAQNode{
		node("greeting", "hello", "good morning"),
		node("hours", "what are your opening hours", "are you open on sunday"),
		node("order_status", "where is my order", "when will my order arrive"),
		node("cancel", "cancel my order"),
		node("return", "how do i return an item", "return policy"),
		node("refund", "where is my refund", "i have not received my refund"),
		node("payment_methods", "can i pay with a credit card", "do you accept upi"),
		node("pay_bill", "pay my bill"),
		node("delivery_time", "how long does delivery take"),
		node("delivery_charges", "how much is delivery", "delivery charges"),
		node("balance", "how much do i owe", "account balance"),
		node("change_address", "deliver to a different address"),
		node("warranty", "how long is the warranty"),
	}
}

// TestMatcherSession6 asserts the node and the lowest score each case
// reaches (0.6 is the voice turn's answer band): with the entries of
// TestCanonicalSession6 and the clause after "but" weighing more.
func TestMatcherSession6(t *testing.T) {
	m := NewMatcher(lexiconNodes(), MatcherOptions{})
	tests := []struct {
		text     string
		node     string // "" = no match at the threshold
		minScore float64
	}{
		{"i followed your return policy for the item but no refund", "refund", 0.5},
		{"are you open on weekends", "hours", 0.9},
		{"my parcel has not come", "order_status", 0.6},
		{"i do not want my order", "cancel", 0.9},
		{"is net banking accepted", "payment_methods", 0.6},
		{"can i use a debit card", "payment_methods", 0.55},
		{"i want to pay my dues", "pay_bill", 0.9},
		{"how soon does delivery happen", "delivery_time", 0.5},
		{"deliver it to another address", "change_address", 0.9},
		{"sir kindly tell me your opening hours", "hours", 0.7},
		// Off-topic text stays under the threshold.
		{"what time is it in london", "", 0},
		{"do you sell gift cards", "", 0},
	}
	for _, tt := range tests {
		got := m.Match(tt.text)
		name := ""
		if got.OK {
			name = got.Node.Name
		}
		if name != tt.node || got.Score < tt.minScore {
			t.Errorf("Match(%q) = %q at %.2f (ok %v), want %q at %.2f or more", tt.text, name, got.Score, got.OK, tt.node, tt.minScore)
		}
	}
}

// TestMatcherClauseAfterBut: the words before "but" weigh half, so the
// clause after it decides; without that the earlier clause's node wins.
// A greeting opening a longer question weighs half too.
func TestMatcherClauseAfterBut(t *testing.T) {
	nodes := lexiconNodes()
	flat := defaultParams
	flat.butWeight = 1
	tests := []struct {
		name string
		p    params
		text string
		want string
	}{
		{"after but decides", defaultParams, "i followed your return policy for the item but no refund", "refund"},
		{"all words alike", flat, "i followed your return policy for the item but no refund", "return"},
		{"a final but is no turn", defaultParams, "i want to return an item but", "return"},
		{"no but", defaultParams, "i returned the item and want a refund", "return"},
		{"a greeting opening a question", defaultParams, "hey there i would like to know your hours on saturday", "hours"},
		{"a greeting alike", flat, "hey there i would like to know your hours on saturday", "greeting"},
		{"a short greeting", defaultParams, "hi how are you", "greeting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newMatcher(nodes, MatcherOptions{}, tt.p).Match(tt.text)
			if got.Node == nil || got.Node.Name != tt.want {
				t.Errorf("Match(%q) = %+v, want node %q", tt.text, got.Node, tt.want)
			}
		})
	}
}
