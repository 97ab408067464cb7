package sim

import (
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/koelvoice/koel/ivr"
)

// Dialogue repair over the real softphone path: the pion CLI client speaks
// with espeak-ng, pocketsphinx transcribes on the fast path, the demo FAQ
// bot and the voice service decide, and keys travel as RFC 4733 events.

const (
	repairQuestion = "my screen is broken"
	repairAnswer   = "You can book a repair at any store or from the Service page. Bring your invoice and the product."
	storeAnswer    = "Our main store is at 42 Residency Road, Bangalore."
)

// requestLines returns the "event: <KooKoo request>" lines of CLI output
// for the events the app received, in order.
func requestLines(out string) []string {
	var r []string
	for _, l := range strings.Split(out, "\n") {
		for _, ev := range []string{"NewCall", "Record", "GotDTMF", "Dial", "Disconnect", "Hangup"} {
			if l == "event: "+ev || strings.HasPrefix(l, "event: "+ev+" ") {
				r = append(r, ev)
			}
		}
	}
	return r
}

// TestSoftphoneConfirmation: an unsure question is confirmed ("Do you want
// to know about repair? Say yes or no."); key 1 gives the answer, key 2
// asks again, and silence offers the keys. (A spoken yes is not tested
// here: pocketsphinx on the fast path hears espeak-ng's "yes" and "yes
// please" as nothing, so the call offers the keys.)
func TestSoftphoneConfirmation(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ds := startDemo(t, true)
	question := "Do you want to know about repair? Say yes or no."
	for _, tc := range []struct {
		name     string
		steps    []step
		bot      []string
		requests []string
	}{
		{"key 1", []step{{"say", repairQuestion}, {"dtmf", "1"}},
			[]string{question, repairAnswer},
			[]string{"NewCall", "Record", "GotDTMF"}},
		{"silence then key 1", []step{{"say", repairQuestion}, {"none", ""}, {"dtmf", "1"}},
			[]string{question, ivr.ConfirmKeysMessage, repairAnswer},
			[]string{"NewCall", "Record", "Record", "GotDTMF"}},
		{"key 2 asks again", []step{{"say", repairQuestion}, {"dtmf", "2"}},
			[]string{question, ivr.DeclinedMessage},
			[]string{"NewCall", "Record", "GotDTMF"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := callWith(t, ds.testServer, clientConfig{Connection: "demo"}, tc.steps)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			bot := botLines(out)
			if len(bot) < 1+len(tc.bot) || !slices.Equal(bot[1:1+len(tc.bot)], tc.bot) {
				t.Errorf("after the welcome the caller heard %q, want %q", bot, tc.bot)
			}
			if got := requestLines(out); !slices.Equal(got[:min(len(got), len(tc.requests))], tc.requests) {
				t.Errorf("requests %v, want %v first", got, tc.requests)
			}
			// pocketsphinx hears the question as "… broken" (the words it is
			// unsure of are what gets it confirmed rather than answered).
			if !strings.Contains(out, `event: heard "`) || !strings.Contains(out, ` broken" confidence=`) {
				t.Errorf("the fast-path transcript of the question is missing")
			}
		})
	}
}

// TestSoftphoneTopicMenu: two misses in a row (a declined confirmation,
// then silence) give the DTMF topic menu built from the FAQ; key 2 speaks
// that topic's answer and the bot listens again.
func TestSoftphoneTopicMenu(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ds := startDemo(t, true)
	out, _, err := callWith(t, ds.testServer, clientConfig{Connection: "demo"},
		[]step{{"say", repairQuestion}, {"dtmf", "2"}, {"none", ""}, {"dtmf", "2"}})
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	bot := botLines(out)
	if len(bot) < 5 {
		t.Fatalf("the caller heard only %q", bot)
	}
	want := []string{"Do you want to know about repair? Say yes or no.", ivr.DeclinedMessage}
	if !slices.Equal(bot[1:3], want) {
		t.Errorf("the caller heard %q, want %q after the welcome", bot[1:3], want)
	}
	menu := bot[3]
	if !strings.HasPrefix(menu, ivr.TopicMenuNoSpeech+" Press 1 for ") || !strings.Contains(menu, ", 2 for ") || !strings.HasSuffix(menu, ".") {
		t.Errorf("the topic menu is %q", menu)
	}
	if !strings.Contains(menu, "2 for store location") {
		t.Fatalf("key 2 of the menu %q is not store location; the test's expectation is stale", menu)
	}
	if bot[4] != storeAnswer {
		t.Errorf("key 2 gave %q, want %q", bot[4], storeAnswer)
	}
	wantReq := []string{"NewCall", "Record", "GotDTMF", "Record", "GotDTMF"}
	if got := requestLines(out); !slices.Equal(got[:min(len(got), len(wantReq))], wantReq) {
		t.Errorf("requests %v, want %v first", got, wantReq)
	}
	if !strings.Contains(out, "event: listening (dtmf)") {
		t.Errorf("the menu did not wait for keys")
	}
}
