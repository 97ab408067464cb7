package sim

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/koelvoice/koel/audio"
)

// TestEchoFrameNumbers: a numbered frame survives µ-law both ways (the
// path an echo takes) with its number; silence, other audio and a frame
// with a flipped bit are not read as numbers.
func TestEchoFrameNumbers(t *testing.T) {
	ulaw := make([]byte, audio.FrameSamples)
	back := make([]int16, audio.FrameSamples)
	for _, n := range []uint32{0, 1, 2, 255, 256, 65535, 1 << 20, 0xFFFFFF} {
		// Caller → server (decoded) → caller (decoded), as an echo goes.
		audio.EncodeUlaw(ulaw, echoFrame(n))
		audio.DecodeUlaw(back, ulaw)
		audio.EncodeUlaw(ulaw, back)
		audio.DecodeUlaw(back, ulaw)
		got, ok := readEchoFrame(back)
		if !ok || got != n {
			t.Errorf("frame %d read back as %d, %v", n, got, ok)
		}
		flipped := echoFrame(n)
		for j := range echoRepeat { // bit 12: inside the number
			flipped[12*echoRepeat+j] = -flipped[12*echoRepeat+j]
		}
		if got, ok := readEchoFrame(flipped); ok {
			t.Errorf("frame %d with a flipped bit read as %d", n, got)
		}
	}
	tone := make([]int16, audio.FrameSamples)
	for i := range tone {
		tone[i] = int16((i%20 - 10) * 800)
	}
	for name, f := range map[string][]int16{"silence": make([]int16, audio.FrameSamples), "tone": tone, "short": echoFrame(7)[:80]} {
		if n, ok := readEchoFrame(f); ok {
			t.Errorf("%s read as frame %d", name, n)
		}
	}
}

// TestEchoCallOverLoopback: a real WebRTC call to the echo app hears its
// own numbered frames back, each once, in the time the call streamed.
func TestEchoCallOverLoopback(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ts := startSim(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := EchoCall(ctx, EchoConfig{Server: ts.srv.URL, Hold: time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("handshake %v, sent %d, echoed %d, lost %d, late %d, caller late %d", res.Handshake, res.Sent, res.Echoed, res.Lost, res.Late, res.CallerLate)
	if res.Sent < 45 || res.Sent > 50 || res.Echoed+res.Lost != res.Sent || res.Echoed < res.Sent/2 || len(res.RTT) != res.Echoed {
		t.Fatalf("sent %d, echoed %d, lost %d, %d round trips; want about 50 sent, most echoed", res.Sent, res.Echoed, res.Lost, len(res.RTT))
	}
	if res.Duplicates != 0 || res.Corrupt != 0 {
		t.Fatalf("%d duplicates, %d corrupt frames heard back", res.Duplicates, res.Corrupt)
	}
	for _, d := range res.RTT {
		if d <= 0 {
			t.Fatalf("round trip %v", d)
		}
	}
	waitGauge(t, ts.sim.m.callsActive, 0)
	if got := testutil.ToFloat64(ts.sim.m.calls.WithLabelValues(resultCallerHangup)); got != 1 {
		t.Errorf("koel_sim_calls_total{result=caller_hangup} = %v, want 1", got)
	}
}

// TestHandshakeSlotsQueueOffers: with one handshake slot taken, a new
// offer waits (counted in koel_sim_handshakes_queued_total) and connects
// once the slot is free; every slot is free again after.
func TestHandshakeSlotsQueueOffers(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ts := startSim(t, func(c *Config) { c.MaxHandshakes = 1 })
	release, err := ts.sim.hs.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type out struct {
		res EchoResult
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := EchoCall(ctx, EchoConfig{Server: ts.srv.URL, Hold: 200 * time.Millisecond})
		done <- out{r, err}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for testutil.ToFloat64(ts.sim.hs.queued) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the offer never queued for the taken slot")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case o := <-done:
		t.Fatalf("the call went on while the only handshake slot was taken: %+v %v", o.res, o.err)
	default:
	}
	release()
	o := <-done
	if o.err != nil || o.res.Echoed == 0 {
		t.Fatalf("queued call: %+v, %v", o.res, o.err)
	}
	waitGauge(t, ts.sim.hs.inFlight, 0)
	if n := len(ts.sim.hs.slots); n != 0 {
		t.Fatalf("%d handshake slots still taken", n)
	}
}

// TestHandshakeSlotsBoundAndTimeOut: n slots, the n+1st waits its bound
// and is refused as busy (503); a released slot is taken again, and a
// release called twice frees one slot.
func TestHandshakeSlotsBoundAndTimeOut(t *testing.T) {
	h, err := newHandshakes(2, 20*time.Millisecond, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r1, err1 := h.acquire(ctx)
	r2, err2 := h.acquire(ctx)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := h.acquire(ctx); !errors.Is(err, ErrTooManyCalls) {
		t.Fatalf("third acquire: %v, want ErrTooManyCalls", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := h.acquire(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire with a cancelled context: %v", err)
	}
	if q := testutil.ToFloat64(h.queued); q != 2 {
		t.Fatalf("queued %v, want 2", q)
	}
	r1()
	r1()
	if len(h.slots) != 1 || testutil.ToFloat64(h.inFlight) != 1 {
		t.Fatalf("after one release (twice): %d slots taken, in progress %v", len(h.slots), testutil.ToFloat64(h.inFlight))
	}
	r3, err := h.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r2()
	r3()
	if len(h.slots) != 0 || testutil.ToFloat64(h.inFlight) != 0 {
		t.Fatal("slots not all free")
	}
}

// TestEchoOfferRequest: an echo offer takes no connection or app URL.
func TestEchoOfferRequest(t *testing.T) {
	ts := startSim(t, nil)
	for _, tc := range []struct {
		req  offerRequest
		want string
	}{
		{offerRequest{Echo: true, Connection: "demo"}, "no connection or app_url"},
		{offerRequest{Echo: true, AppURL: "http://127.0.0.1:1/"}, "no connection or app_url"},
	} {
		if _, err := ts.sim.parseOfferRequest(tc.req); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v", tc.req, err)
		}
	}
	o, err := ts.sim.parseOfferRequest(offerRequest{Echo: true})
	if err != nil || !o.echo {
		t.Fatalf("echo offer: %+v, %v", o, err)
	}
}

// TestEchoBurstWithOneSlot: a burst of calls through a single handshake
// slot all connect and all hear their frames back.
func TestEchoBurstWithOneSlot(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ts := startSim(t, func(c *Config) { c.MaxHandshakes = 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const calls = 4
	var wg sync.WaitGroup
	results := make([]EchoResult, calls)
	errs := make([]error, calls)
	until := time.Now().Add(3 * time.Second)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = EchoCall(ctx, EchoConfig{Server: ts.srv.URL, Until: until, HTTPClient: &http.Client{Timeout: time.Minute}})
		}()
	}
	wg.Wait()
	for i := range calls {
		if errs[i] != nil || results[i].Echoed == 0 || results[i].Corrupt != 0 || results[i].Duplicates != 0 {
			t.Errorf("call %d: %+v, %v", i, results[i].Echoed, errs[i])
		}
	}
	if n := histogramCount(t, ts.reg, "koel_sim_handshake_seconds"); n != calls {
		t.Fatalf("koel_sim_handshake_seconds counted %d handshakes, want %d", n, calls)
	}
	waitGauge(t, ts.sim.hs.inFlight, 0)
}

// histogramCount is the sample count of a histogram in reg.
func histogramCount(t *testing.T, reg prometheus.Gatherer, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("no histogram %s", name)
	return 0
}

// waitGauge polls g until it reads want (a call's teardown runs after
// the caller has hung up).
func waitGauge(t *testing.T, g prometheus.Gauge, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for testutil.ToFloat64(g) != want {
		if time.Now().After(deadline) {
			t.Fatalf("gauge at %v, want %v", testutil.ToFloat64(g), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
