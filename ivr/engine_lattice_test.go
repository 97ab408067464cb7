package ivr_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/koelvoice/koel/ivr/bot"
)

// TestEngineForwardsVoiceEvidence: a voice message's N-best alternatives
// and lattice word counts reach the bot as they came in.
func TestEngineForwardsVoiceEvidence(t *testing.T) {
	f := newFixture(t, time.Second)
	var got bot.Request
	f.bot.fn = func(ctx context.Context, req bot.Request) (bot.Response, error) {
		got = req
		return bot.Response{Messages: []bot.Message{{Text: "ok"}}}, nil
	}
	in := f.inbound("caller", "my phone three broken")
	in.Voice = true
	in.Alternatives = []bot.Alternative{{Text: "my phone three broken", Weight: 0.7}, {Text: "my phone free broken", Weight: 0.3}}
	in.Lattice = []bot.WordCount{{Word: "broken", Count: 1}, {Word: "screen", Count: 0.4}}
	if _, err := f.engine.Handle(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if !got.Voice || cmp.Diff(in.Alternatives, got.Alternatives) != "" || cmp.Diff(in.Lattice, got.Lattice) != "" {
		t.Errorf("bot got %+v, want the inbound's alternatives and lattice", got)
	}
}
