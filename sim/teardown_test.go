package sim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// listeningApp answers NewCall with a long <record> so calls stay up.
func listeningApp(log *appLog) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := log.add(r)
		if q["event"] == "NewCall" {
			xmlResponse(w, `<response><record silence="9" maxduration="60">x</record></response>`)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
}

// dialAndListen calls the app and returns once the emulator listens.
func dialAndListen(t *testing.T, ts *testServer, appURL string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api, err := newAPI(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := dialSim(ctx, api, clientConfig{Server: ts.srv.URL, AppURL: appURL})
	if err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev := <-c.events:
			if ev.Type == EventListen {
				return c
			}
		case <-ctx.Done():
			t.Fatal("the emulator never listened")
		}
	}
}

// TestPageCloseHangsUp closes the caller's peer connection without a word
// (a closed tab): the app gets Hangup and nothing leaks.
func TestPageCloseHangsUp(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	log := newAppLog()
	app := listeningApp(log)
	defer app.Close()
	ts := startSim(t, nil)
	c := dialAndListen(t, ts, app.URL)
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	if got := log.waitEvents(t, 2); !slices.Equal(got, []string{"NewCall", "Hangup"}) {
		t.Errorf("app saw %v", got)
	}
	if p := log.all()[1]["process"]; p != "record" {
		t.Errorf("Hangup process = %q, want record", p)
	}
}

// TestCloseHangsUpEveryCall closes the Sim with calls up: each call's app
// hears Disconnect with a message, Close waits for every goroutine, and
// later offers get 503.
func TestCloseHangsUpEveryCall(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	log := newAppLog()
	app := listeningApp(log)
	defer app.Close()
	ts := startSim(t, nil)
	var clients []*client
	for range 3 {
		clients = append(clients, dialAndListen(t, ts, app.URL))
	}
	if n := ts.sim.ActiveCalls(); n != 3 {
		t.Fatalf("ActiveCalls = %d, want 3", n)
	}
	if err := ts.sim.Close(); err != nil {
		t.Fatal(err)
	}
	if n := ts.sim.ActiveCalls(); n != 0 {
		t.Errorf("ActiveCalls after Close = %d", n)
	}
	if err := ts.sim.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	var disconnects int
	for _, q := range log.all() {
		if q["event"] == "Disconnect" && q["message"] != "" {
			disconnects++
		}
	}
	if disconnects != 3 {
		t.Errorf("%d Disconnect requests with a message, want 3: %v", disconnects, log.events())
	}
	for _, c := range clients {
		_ = c.close()
	}
	good, _ := realOffer(t)
	if code, msg := postOffer(t, ts, offerRequest{SDP: good, AppURL: app.URL}); code != http.StatusServiceUnavailable {
		t.Errorf("offer after Close: %d %q, want 503", code, msg)
	}
}
