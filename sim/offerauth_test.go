package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// postOfferAuth posts an offer with an optional bearer token and returns
// the status and the error_message.
func postOfferAuth(t *testing.T, ts *testServer, token string, body offerRequest) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, ts.srv.URL+"/sim/offer", strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != http.StatusOK && e["error_message"] == "" {
		t.Errorf("status %d without an error_message: %v", resp.StatusCode, e)
	}
	return resp.StatusCode, e["error_message"]
}

// idleApp keeps a call open: it records for a long time.
func idleApp() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("event") == "NewCall" {
			xmlResponse(w, `<response><record silence="30" maxduration="60">x</record></response>`)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
}

// TestOfferNeedsATokenOutsideDevelopmentMode: outside development mode an
// offer without the token, with a wrong one, or on a server with no token
// configured is refused with 401 before it takes a slot.
func TestOfferNeedsATokenOutsideDevelopmentMode(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	app := idleApp()
	defer app.Close()
	ts := startSim(t, func(c *Config) { c.Open, c.Token, c.OffersPerMinute = false, "s3cret-sim-token", 1000 })
	good, pc := realOffer(t)
	defer pc.Close()
	for _, tc := range []struct{ name, token, want string }{
		{"no token", "", "Authorization: Bearer"},
		{"wrong token", "guess", "invalid token"},
		{"forged link", "v1.eyJ4IjoxfQ.AAAA", "invalid token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := postOfferAuth(t, ts, tc.token, offerRequest{SDP: good, AppURL: app.URL})
			if code != http.StatusUnauthorized || !strings.Contains(msg, tc.want) {
				t.Errorf("got %d %q, want 401 containing %q", code, msg, tc.want)
			}
		})
	}
	if n := ts.sim.ActiveCalls(); n != 0 {
		t.Errorf("ActiveCalls = %d after refused offers", n)
	}
	// The right token gets a call.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	api, _ := newAPI(testLogger(t))
	c, err := dialSim(ctx, api, clientConfig{Server: ts.srv.URL, AppURL: app.URL, Token: "s3cret-sim-token"})
	if err != nil {
		t.Fatalf("call with the token: %v", err)
	}
	_ = c.hangup()

	// No token configured: every offer is refused, and the message says why.
	closed := startSim(t, func(c *Config) { c.Open = false })
	code, msg := postOfferAuth(t, closed, "anything", offerRequest{SDP: good, AppURL: app.URL})
	if code != http.StatusUnauthorized || !strings.Contains(msg, "development mode") {
		t.Errorf("server without a token: %d %q", code, msg)
	}
}

// TestOfferRateLimitPerClient: 100 quick offers from one address (the
// attack that filled every slot) get 429 past the burst, and take no slot.
func TestOfferRateLimitPerClient(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ts := startSim(t, func(c *Config) { c.Open, c.Token, c.OffersPerMinute = false, "tok", 10 })
	limited := 0
	for i := 0; i < 100; i++ {
		code, _ := postOfferAuth(t, ts, "tok", offerRequest{SDP: "v=0", AppURL: "http://127.0.0.1:9/app"})
		if code == http.StatusTooManyRequests {
			limited++
		}
	}
	// A burst of 5 (half of 10 a minute) passes; the rest wait.
	if limited < 94 {
		t.Errorf("%d of 100 offers limited, want at least 94", limited)
	}
	if n := ts.sim.ActiveCalls(); n != 0 {
		t.Errorf("ActiveCalls = %d", n)
	}
	// Development mode has no limit (a developer's own tests).
	dev := startSim(t, nil)
	for i := 0; i < 20; i++ {
		if code, _ := postOfferAuth(t, dev, "", offerRequest{SDP: "v=0", AppURL: "http://127.0.0.1:9/app"}); code == http.StatusTooManyRequests {
			t.Fatalf("offer %d limited in development mode", i)
		}
	}
}

func TestOfferLimitsRefill(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newOfferLimits(60, func() time.Time { return now })
	n := 0
	for l.allow("a") {
		n++
	}
	if n != 30 {
		t.Errorf("burst %d, want 30", n)
	}
	if !l.allow("b") {
		t.Error("another address shares a's bucket")
	}
	now = now.Add(2 * time.Second)
	if !l.allow("a") || !l.allow("a") || l.allow("a") {
		t.Error("60 a minute should refill 2 offers in 2 s")
	}
}

// TestOfferForUnknownConnectionIs404: the connection is checked before an
// offer takes a slot (old code: 200 and a slot used).
func TestOfferForUnknownConnectionIs404(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ts := startSim(t, func(c *Config) {
		c.App = http.NotFoundHandler()
		c.CheckConnection = func(_ context.Context, id string) error {
			if id == "demo" {
				return nil
			}
			return fmt.Errorf("%w: %q", ErrUnknownConnection, id)
		}
	})
	good, pc := realOffer(t)
	defer pc.Close()
	code, msg := postOfferAuth(t, ts, "", offerRequest{SDP: good, Connection: "nosuch"})
	if code != http.StatusNotFound || !strings.Contains(msg, `unknown connection: "nosuch"`) {
		t.Errorf("got %d %q, want 404 unknown connection", code, msg)
	}
	if n := ts.sim.ActiveCalls(); n != 0 {
		t.Errorf("ActiveCalls = %d after an unknown connection", n)
	}
}

// TestSignedLinkAuthorizesOneConnection: GET /sim/link with the sim token
// gives a short-lived link for one connection; it authorizes offers for
// that connection only, until it expires.
func TestSignedLinkAuthorizesOneConnection(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ts := startSim(t, func(c *Config) {
		c.Open, c.Token, c.OffersPerMinute = false, "tok", 1000
		c.App = http.NotFoundHandler()
	})
	get := func(token, query string) (int, map[string]string) {
		req, _ := http.NewRequest(http.MethodGet, ts.srv.URL+"/sim/link?"+query, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if code, _ := get("", "connection=demo"); code != http.StatusUnauthorized {
		t.Errorf("link without the token: %d", code)
	}
	if code, _ := get("tok", "connection=../x"); code != http.StatusBadRequest {
		t.Errorf("link for a bad connection: %d", code)
	}
	code, m := get("tok", "connection=demo&ttl=5m")
	if code != http.StatusOK || m["token"] == "" || !strings.HasPrefix(m["url"], ts.srv.URL+"/sim/?") {
		t.Fatalf("link: %d %v", code, m)
	}
	u, _ := url.Parse(m["url"])
	if u.Query().Get("t") != m["token"] || u.Query().Get("connection") != "demo" {
		t.Errorf("link URL %q does not carry the token and connection", m["url"])
	}
	link := m["token"]
	// The link passes authorization for demo (the SDP then fails: 400).
	if code, msg := postOfferAuth(t, ts, link, offerRequest{SDP: "v=0", Connection: "demo"}); code != http.StatusBadRequest {
		t.Errorf("offer with the link: %d %q, want past auth (400 for the SDP)", code, msg)
	}
	if code, msg := postOfferAuth(t, ts, link, offerRequest{SDP: "v=0", Connection: "other"}); code != http.StatusUnauthorized || !strings.Contains(msg, "another connection") {
		t.Errorf("link used for another connection: %d %q", code, msg)
	}
	if code, _ := postOfferAuth(t, ts, link, offerRequest{SDP: "v=0", AppURL: "http://127.0.0.1:9/"}); code != http.StatusUnauthorized {
		t.Errorf("link used for an app URL: %d", code)
	}
	tampered := link[:len(link)-2] + "AA"
	if code, _ := postOfferAuth(t, ts, tampered, offerRequest{SDP: "v=0", Connection: "demo"}); code != http.StatusUnauthorized {
		t.Errorf("tampered link: %d", code)
	}
	expired, _, _ := ts.sim.SignLink("demo", time.Minute, time.Now().Add(-2*time.Minute))
	if code, msg := postOfferAuth(t, ts, expired, offerRequest{SDP: "v=0", Connection: "demo"}); code != http.StatusUnauthorized || !strings.Contains(msg, "expired") {
		t.Errorf("expired link: %d %q", code, msg)
	}
	if _, err := ts.sim.verifyLink(link, time.Now().Add(6*time.Minute)); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("link still valid after its 5 minute ttl: %v", err)
	}
}

// TestDrainRefusesNewCallsKeepsOldOnes: after Drain a new offer gets 503
// while the call in progress goes on (old code accepted until Close).
func TestDrainRefusesNewCallsKeepsOldOnes(t *testing.T) {
	needEspeak(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	app := idleApp()
	defer app.Close()
	ts := startSim(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	api, _ := newAPI(testLogger(t))
	c, err := dialSim(ctx, api, clientConfig{Server: ts.srv.URL, AppURL: app.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.hangup()
	ts.sim.Drain()
	good, pc := realOffer(t)
	defer pc.Close()
	code, msg := postOfferAuth(t, ts, "", offerRequest{SDP: good, AppURL: app.URL})
	if code != http.StatusServiceUnavailable || !strings.Contains(msg, "draining") {
		t.Errorf("offer during drain: %d %q, want 503 draining", code, msg)
	}
	if n := ts.sim.ActiveCalls(); n != 1 {
		t.Errorf("ActiveCalls = %d during drain, want the call in progress", n)
	}
}
