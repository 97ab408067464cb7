package sim

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/koelvoice/koel/audio"
)

// echoApp is a KooKoo app whose "bot" answers with the length of what it
// heard: welcome + record, reply + record, ..., goodbye + hangup after
// turns recordings.
func echoApp(log *appLog, turns int) http.Handler {
	n := 0
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := log.add(r)
		sid := q["sid"]
		switch q["event"] {
		case "NewCall":
			xmlResponse(w, `<response sid="`+sid+`"><playtext>Welcome to the echo line.</playtext><record format="wav" silence="1" maxduration="10">`+sid+`-1</record></response>`)
		case "Record":
			n++
			if n >= turns {
				xmlResponse(w, `<response sid="`+sid+`"><playtext>Reply number `+fmt.Sprint(n)+`. Goodbye.</playtext><hangup/></response>`)
				return
			}
			xmlResponse(w, fmt.Sprintf(`<response sid="%s"><playtext>Reply number %d.</playtext><record format="wav" silence="1" maxduration="10">%s-%d</record></response>`, sid, n, sid, n+1))
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
}

func TestLoopbackEchoApp(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	log := newAppLog()
	app := httptest.NewServer(echoApp(log, 2))
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
	var out strings.Builder
	sc := &script{steps: []step{{"say", "what are your opening hours"}, {"say", "thank you very much"}}, clips: make([]audio.PCM, 2), tts: testTTS(t), out: &out}
	runErr := sc.run(ctx, c)
	if err := c.hangup(); err != nil {
		t.Errorf("hangup: %v", err)
	}
	t.Log("\n" + out.String())
	if runErr != nil {
		t.Fatalf("script: %v", runErr)
	}
	got := log.waitEvents(t, 4)
	want := []string{"NewCall", "Record", "Record", "Disconnect"}
	if !slices.Equal(got, want) {
		t.Errorf("app saw events %v, want %v", got, want)
	}
	for _, want := range []string{"bot: Welcome to the echo line.", "bot: Reply number 1.", "event: turn end=silence", "bot: Reply number 2. Goodbye.", "event: hangup by app"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
