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
// asks again, silence offers the keys, and a spoken yes (which the fast
// path's own transcript misses) is heard by the yes/no pass on the audio
// the softphone hands over.
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
		// The softphone's own transcript misses the lone "yes"; the yes/no
		// pass on the audio it hands over hears it.
		{"spoken yes", []step{{"say", repairQuestion}, {"say", "yes"}},
			[]string{question, repairAnswer},
			[]string{"NewCall", "Record", "Record"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The confirmation needs pocketsphinx to be unsure of the
			// question; on a loaded machine (-race beside other builds) the
			// caller's frames arrive late and the words heard vary, so a call
			// whose question was answered or missed outright is tried again,
			// up to three times. What is under test comes after the question.
			var out string
			for attempt := 1; ; attempt++ {
				var err error
				out, _, err = callWith(t, ds.testServer, clientConfig{Connection: "demo"}, tc.steps)
				if err != nil {
					t.Fatalf("call: %v", err)
				}
				if bot := botLines(out); len(bot) > 1 && bot[1] == question {
					break
				}
				if attempt == 3 {
					t.Fatalf("the question was never confirmed in %d calls", attempt)
				}
				t.Logf("attempt %d: the recogniser was not unsure of the question; calling again", attempt)
			}
			bot := botLines(out)
			if len(bot) < 1+len(tc.bot) || !slices.Equal(bot[1:1+len(tc.bot)], tc.bot) {
				t.Errorf("after the welcome the caller heard %q, want %q", bot, tc.bot)
			}
			if got := requestLines(out); !slices.Equal(got[:min(len(got), len(tc.requests))], tc.requests) {
				t.Errorf("requests %v, want %v first", got, tc.requests)
			}
		})
	}
}

// TestSoftphoneTopicMenu: two misses in a row give the DTMF topic menu
// built from the FAQ; key 2 speaks that topic's answer and the bot listens
// again. The misses are silences (no speech recognition involved): the
// first offers the agent key menu, where 2 is not an option; the second
// gives the topic menu.
func TestSoftphoneTopicMenu(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ds := startDemo(t, true)
	out, _, err := callWith(t, ds.testServer, clientConfig{Connection: "demo"},
		[]step{{"none", ""}, {"dtmf", "2"}, {"none", ""}, {"dtmf", "2"}})
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	bot := botLines(out)
	if len(bot) < 5 {
		t.Fatalf("the caller heard only %q", bot)
	}
	menu := bot[3]
	if !strings.HasPrefix(menu, ivr.TopicMenuNoSpeech+" Press 1 for ") || !strings.Contains(menu, ", 2 for ") || !strings.HasSuffix(menu, ", or 0 for an agent.") {
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
	if !strings.Contains(out, "event: Record data=") || strings.Count(out, "status=no_input") != 2 {
		t.Errorf("want two silent recordings before the menu")
	}
}
