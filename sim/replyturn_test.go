package sim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/koelvoice/koel/audio"
)

// TestTurnAnsweredByMenuPrompt: a recorded turn whose reply is spoken as
// the prompt of a <collectdtmf> (how koel renders its menus: the topic menu,
// the yes/no keys, the digits of an order number) is answered, and its
// reply latency is measured from the prompt's first frame. It used to be
// reported as a turn with no audio reply (reply_ms -1), which made
// `koel load softphone` count 3 of 9 demo turns unanswered.
func TestTurnAnsweredByMenuPrompt(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	tests := []struct {
		name   string
		menu   string // the answer to the Record event
		answer bool   // whether the turn gets an audio reply
	}{
		{"prompt inside collectdtmf", `<collectdtmf l="1" o="300"><playtext>Press 1 for opening hours.</playtext></collectdtmf>`, true},
		{"playtext then collectdtmf", `<playtext>Sorry.</playtext><collectdtmf l="1" o="300"><playtext>Press 1.</playtext></collectdtmf>`, true},
		{"collectdtmf with no prompt", `<collectdtmf l="1" o="300"></collectdtmf>`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := newAppLog()
			app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				q := log.add(r)
				sid := q["sid"]
				switch q["event"] {
				case "NewCall":
					xmlResponse(w, `<response sid="`+sid+`"><playtext>Hello.</playtext><record format="wav" silence="1" maxduration="10">`+sid+`-1</record></response>`)
				case "Record":
					xmlResponse(w, `<response sid="`+sid+`">`+tt.menu+`</response>`)
				case "GotDTMF":
					xmlResponse(w, `<response sid="`+sid+`"><playtext>Goodbye.</playtext><hangup/></response>`)
				default:
					w.WriteHeader(http.StatusOK)
				}
			}))
			defer app.Close()
			ts := startSim(t, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			api, err := newAPI(testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			c, err := dialSim(ctx, api, clientConfig{Server: ts.srv.URL, AppURL: app.URL, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			var out discardWriter
			// Speak at the record; press nothing at the menu (it times out).
			sc := &script{steps: []step{{"say", "what are your opening hours"}, {"none", ""}}, clips: make([]audio.PCM, 2), tts: testTTS(t), out: out}
			runErr := sc.run(ctx, c)
			if err := c.hangup(); err != nil {
				t.Errorf("hangup: %v", err)
			}
			if runErr != nil {
				t.Fatalf("script: %v", runErr)
			}
			// The turn is emitted at the reply's first frame or when the
			// menu starts waiting; the script returns at the hang-up after
			// it, so it has been seen.
			var turns []Event
			for _, ev := range sc.seen {
				if ev.Type == EventTurn {
					turns = append(turns, ev)
				}
			}
			if len(turns) != 1 {
				t.Fatalf("%d turn events %+v, want 1", len(turns), turns)
			}
			if got := turns[0].ReplyMS >= 0; got != tt.answer {
				t.Errorf("turn reply_ms %d: answered %v, want %v", turns[0].ReplyMS, got, tt.answer)
			}
		})
	}
}
