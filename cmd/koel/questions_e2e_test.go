package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/sim"
	"github.com/koelvoice/koel/sim/voiceeval"
)

// minAnswered is the fewest of the 8 calls (4 questions, 2 voices) that
// must be answered directly or after one yes. Since the matcher weighs
// inserted digit names as function words, runs gave 5, 5 and 4 (3 and 3
// before): the Sunday question for both voices and flite slt's Chennai
// (heard "do you deliver to to nine", confirmed) and Paytm questions every
// time; espeak-ng's Chennai ("do you deliver to can i") sits at the
// confirm threshold and comes and goes (README, "The four questions").
const minAnswered = 4

// fourQuestions are issue 8's acceptance questions, as a new user asked
// them with koel call, the node that answers each (its answer contains
// answer), and whether every voice must already get it answered. The
// others are asserted never to be answered wrongly without a confirmation,
// and their outcome is logged: see README, "The four questions".
var fourQuestions = []struct {
	text, answer string
	must         bool
}{
	{"when are you open on sunday", "from ten to six on Sunday", true},
	{"do you deliver to chennai", "Chennai", false},
	{"my phone screen is broken what do i do", "You can book a repair", false},
	{"can i pay with paytm", "Paytm", false},
}

// TestDemoFourQuestionsOverSoftphone is issue 8's acceptance test of the
// four questions: each is synthesized by real voices (espeak-ng and flite)
// and asked over the path koel call takes (a WebRTC caller on the real
// softphone, its fast-path transcript and handed audio, the voice service,
// the demo FAQ bot), and a confirmation is answered with a spoken yes.
// Each must be answered directly or after one confirmation where marked
// must; none may be answered with another node's answer unconfirmed. The
// test logs, per call, what was heard and how it was treated, and the
// count answered (the acceptance figure).
func TestDemoFourQuestionsOverSoftphone(t *testing.T) {
	if testing.Short() {
		t.Skip("real softphone calls")
	}
	cfg := testConfig(t, t.TempDir(), "", "")
	srv := startVoiceServer(t, cfg)
	renderer, err := voiceeval.NewRenderer("")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wav := func(t *testing.T, s voiceeval.Synth, name, text string) string {
		t.Helper()
		pcm, err := renderer.Speech(t.Context(), s, text)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := audio.EncodeWAV(&b, pcm, audio.EncodingPCM16); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, strings.NewReplacer("/", "_", "+", "_").Replace(s.String())+"-"+name+".wav")
		if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	synths := []voiceeval.Synth{
		{Engine: voiceeval.EngineEspeak, Voice: "en-us"},
		{Engine: voiceeval.EngineFlite, Voice: "slt"},
	}
	var (
		mu       sync.Mutex
		answered int
		asked    int
	)
	t.Cleanup(func() {
		if asked > 0 {
			t.Logf("FIGURE: %d of %d questions answered directly or after one spoken yes (%d voices)", answered, asked, len(synths))
		}
		if asked == len(synths)*len(fourQuestions) && answered < minAnswered {
			t.Errorf("%d of %d questions answered directly or after one spoken yes, floor %d", answered, asked, minAnswered)
		}
	})
	for _, s := range synths {
		for qi, q := range fourQuestions {
			t.Run(fmt.Sprintf("%s/%d", s, qi+1), func(t *testing.T) {
				if err := voiceeval.Available(s.Engine); err != nil {
					t.Skip(err)
				}
				t.Parallel()
				question, yes := wav(t, s, fmt.Sprintf("q%d", qi+1), q.text), wav(t, s, "yes", "yes")
				ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
				defer cancel()
				var stdout, stderr bytes.Buffer
				args := []string{"--server", srv.URL(), "--connection", "demo", "--timeout", "80s", "--wav", question, "--wav", yes}
				if err := sim.RunCLI(ctx, args, &stdout, &stderr); err != nil {
					t.Fatalf("koel call: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
				}
				out := stdout.String()
				verdict, heard := judgeAnswer(out, q.answer)
				ok := verdict == verdictAnswered || verdict == verdictConfirmed
				mu.Lock()
				asked++
				if ok {
					answered++
				}
				mu.Unlock()
				t.Logf("%s %q: heard %q: %s", s, q.text, heard, verdict)
				switch {
				case strings.HasPrefix(verdict, verdictWrong):
					t.Errorf("%s asked %q (heard %q): %s, want the answer (%q), a confirmation or a repair prompt\n%s", s, q.text, heard, verdict, q.answer, out)
				case !ok && q.must:
					t.Errorf("%s asked %q (heard %q): %s, want it answered (%q) directly or after one yes\n%s", s, q.text, heard, verdict, q.answer, out)
				case !ok:
					t.Logf("BELOW ACCEPTANCE: %s %q not answered\n%s", s, q.text, out)
				}
			})
		}
	}
}

// How a call treated a question.
const (
	verdictAnswered  = "answered"
	verdictConfirmed = "answered after one confirmation"
	// verdictWrong prefixes another node's answer given without a
	// confirmation, or after the caller's yes.
	verdictWrong = "answered wrongly"
)

// repairPrompts are what the call says when it did not understand: never
// an FAQ answer.
var repairPrompts = []string{
	ivr.NotUnderstoodMessage, ivr.SayAgainMessage, ivr.ConfirmKeysMessage, ivr.DeclinedMessage,
	ivr.DefaultRepromptMessage, ivr.MenuHint, "Sorry, I did not hear you", "Press 1 for ",
	"Sorry, something went wrong", // the break message: a failure, not an answer
}

// judgeAnswer reads koel call's output: what the bot said after the
// welcome to the question (directly the answer, a confirmation then the
// answer after the caller's yes, or something else), and what the
// softphone heard.
func judgeAnswer(out, answer string) (verdict string, heard []string) {
	var bot []string
	for _, l := range strings.Split(out, "\n") {
		if s, ok := strings.CutPrefix(l, "bot: "); ok {
			bot = append(bot, s)
		}
		if s, ok := strings.CutPrefix(l, "event: heard "); ok {
			heard = append(heard, s)
		}
	}
	if len(bot) < 2 {
		return fmt.Sprintf("no reply (the bot said %q)", bot), heard
	}
	first := bot[1]
	switch {
	case strings.Contains(first, answer):
		return verdictAnswered, heard
	case strings.HasPrefix(first, strings.SplitN(ivr.ConfirmTemplate, "%s", 2)[0]):
		if len(bot) > 2 && strings.Contains(bot[2], answer) {
			return verdictConfirmed, heard
		}
		if len(bot) > 2 && !repairPrompt(bot[2]) {
			return fmt.Sprintf("%s: confirmed %q, then said %q", verdictWrong, first, bot[2]), heard
		}
		if len(bot) > 2 {
			return fmt.Sprintf("confirmed %q, then said %q", first, bot[2]), heard
		}
		return fmt.Sprintf("confirmed %q, then the keys", first), heard
	case !repairPrompt(first):
		return fmt.Sprintf("%s: said %q", verdictWrong, first), heard
	}
	return fmt.Sprintf("said %q", first), heard
}

// repairPrompt reports whether the call said text because it did not
// understand.
func repairPrompt(text string) bool {
	for _, p := range repairPrompts {
		if strings.Contains(text, p) {
			return true
		}
	}
	return false
}
