package outbox_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/koelvoice/koel/channels/webhook"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// blackHole is a TCP listener that accepts connections and never reads or
// answers: a webhook behind a dead load balancer. It reports each accepted
// connection and each one the client gave up on.
type blackHole struct {
	close    func()
	ln       net.Listener
	accepted chan struct{}
	gaveUp   chan struct{}
}

func newBlackHole(t testing.TB) *blackHole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &blackHole{ln: ln, accepted: make(chan struct{}, 1024), gaveUp: make(chan struct{}, 1024)}
	var conns sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	var once sync.Once
	h.close = func() {
		once.Do(func() {
			ln.Close()
			mu.Lock()
			for _, c := range open {
				c.Close() // end the attempts still hanging
			}
			mu.Unlock()
			conns.Wait()
		})
	}
	t.Cleanup(h.close)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			h.accepted <- struct{}{}
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer c.Close()
				// Never read the request: block until the client closes.
				var one [1]byte
				_ = c.(*net.TCPConn).SetReadBuffer(1)
				for {
					if _, err := c.Read(one[:]); err != nil {
						break
					}
					// Swallow the request bytes without answering.
				}
				h.gaveUp <- struct{}{}
			}()
		}
	}()
	return h
}

func (h *blackHole) URL() string { return "http://" + h.ln.Addr().String() + "/hook" }

// tenants is two businesses with a webhook connection each, on one store.
type tenants struct {
	st    store.Store
	conns [2]ivr.Connection
}

func newTenants(t testing.TB, st store.Store, urls [2]string) *tenants {
	t.Helper()
	ctx := context.Background()
	tn := &tenants{st: st}
	for i := range tn.conns {
		b := ivr.Business{Name: fmt.Sprint("tenant-", i), Active: true}
		if err := st.CreateBusiness(ctx, &b); err != nil {
			t.Fatal(err)
		}
		tn.conns[i] = ivr.Connection{BusinessID: b.ID, Channel: ivr.ChannelWebhook, Identifier: fmt.Sprint("t", i), Active: true,
			Settings: ivr.ConnectionSettings{WebhookURL: urls[i], SecretKey: "k"}}
		if err := st.CreateConnection(ctx, &tn.conns[i]); err != nil {
			t.Fatal(err)
		}
	}
	return tn
}

// enqueue stores one reply of tenant i for recipient and returns it.
func (tn *tenants) enqueue(t testing.TB, i int, recipient string, seq int64, now time.Time) *ivr.OutboxItem {
	t.Helper()
	c := tn.conns[i]
	it, err := outbox.NewReplyItem(outbox.Reply{Connection: c, BusinessID: c.BusinessID, Recipient: recipient, URL: c.Settings.WebhookURL,
		Message: &ivr.Message{ID: seq, Sender: ivr.SenderBot, Text: "answer " + strconv.FormatInt(seq, 10), CreatedAt: now}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.st.AppendMessages(context.Background(), nil, []*ivr.OutboxItem{it}); err != nil {
		t.Fatal(err)
	}
	return it
}

// arrivals is a webhook receiver that reports each delivery's message id.
type arrivals struct {
	srv *httptest.Server
	got chan int64
}

func newArrivals(t testing.TB, delay func() time.Duration) *arrivals {
	t.Helper()
	a := &arrivals{got: make(chan int64, 4096)}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if delay != nil {
			time.Sleep(delay())
		}
		m, err := outbox.DecodeMessage(ivr.OutboxItem{Body: b})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.got <- m.Message.ID
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func startDispatcher(t testing.TB, cfg outbox.Config) *outbox.Dispatcher {
	t.Helper()
	d, err := outbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.Register(ivr.ChannelWebhook, webhook.NewSender(nil, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return d
}

// TestBlackHoledTenantDoesNotStallOthers is the regression test of issue 9
// defect 1: with one business's webhook a TCP black hole holding six
// pending replies (stored first), every reply of another business is
// delivered before the black hole's first attempt times out. The old
// dispatcher POSTed one item at a time, so the other business waited six
// attempt timeouts.
func TestBlackHoledTenantDoesNotStallOthers(t *testing.T) {
	hole := newBlackHole(t)
	fast := newArrivals(t, nil)
	st := storetest.NewSQLite(t)
	tn := newTenants(t, st, [2]string{hole.URL(), fast.srv.URL})
	now := time.Now()
	for i := range 6 {
		tn.enqueue(t, 0, fmt.Sprint("caller-", i), int64(100+i), now)
	}
	const others = 6
	for i := range others {
		tn.enqueue(t, 1, fmt.Sprint("user-", i), int64(i+1), now)
	}
	d := startDispatcher(t, outbox.Config{Store: st, AttemptTimeout: 30 * time.Second})
	t.Cleanup(hole.close)
	d.Notify()

	delivered := 0
	for delivered < others {
		select {
		case <-fast.got:
			delivered++
		case <-hole.gaveUp:
			t.Fatalf("the black hole's first attempt timed out after only %d of %d other-tenant replies arrived", delivered, others)
		case <-time.After(time.Minute):
			t.Fatal("no progress in a minute")
		}
	}
	// And the black hole was being tried meanwhile, concurrently: all six
	// of its replies are in flight at once (per-connection concurrency).
	for range 6 {
		select {
		case <-hole.accepted:
		case <-hole.gaveUp:
			t.Fatal("an attempt to the black hole timed out before all six were in flight")
		case <-time.After(time.Minute):
			t.Fatal("the black hole's items were not attempted")
		}
	}
}

func p99(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)*99+99)/100-1]
}

// TestBlackHoleAddsLittleToOthersP99 measures a tenant's delivery latency
// (store → received) next to a second tenant with the same traffic, once
// with that tenant's webhook healthy and once black-holed, with more
// pending replies than its per-connection limit, and asserts the
// target of issue 9: the black hole adds < 50 ms to the other tenant's p99.
// The two setups run side by side, one delivery each in turn, so load from
// elsewhere on the machine falls on both alike.
//
// Under the race detector every step is ten times slower and the machine's
// noise swamps a 50 ms difference, so the test then only runs the
// scenario; BenchmarkBlackHoleNeighbourP99 (make bench) measures it too.
func TestBlackHoleAddsLittleToOthersP99(t *testing.T) {
	if testing.Short() {
		t.Skip("measures 2 x 150 deliveries")
	}
	n := 150
	if raceEnabled {
		n = 40
	}
	base, hole := neighbourP99(t, n)
	t.Logf("other tenant's p99 delivery latency: %v with its neighbour healthy, %v with it black-holed", base, hole)
	if raceEnabled {
		return
	}
	if hole-base >= 50*time.Millisecond {
		t.Fatalf("the black hole added %v to the other tenant's p99 (want < 50ms)", hole-base)
	}
}

// BenchmarkBlackHoleNeighbourP99 reports what a black-holed tenant adds to
// its neighbour's p99 delivery latency (target < 50 ms), over b.N
// deliveries per setup.
func BenchmarkBlackHoleNeighbourP99(b *testing.B) {
	base, hole := neighbourP99(b, max(b.N, 100))
	b.ReportMetric(float64(base.Microseconds())/1000, "p99-healthy-ms")
	b.ReportMetric(float64(hole.Microseconds())/1000, "p99-blackholed-ms")
	b.ReportMetric(float64((hole-base).Microseconds())/1000, "p99-added-ms")
}

// neighbourP99 runs the two setups side by side, n deliveries each, and
// returns the second tenant's p99 with the first healthy and black-holed.
func neighbourP99(t testing.TB, n int) (base, hole time.Duration) {
	t.Helper()
	type setup struct {
		tn   *tenants
		d    *outbox.Dispatcher
		fast *arrivals
		hole bool
		lat  []time.Duration
	}
	newSetup := func(withHole bool) *setup {
		hole := newBlackHole(t)
		fast := newArrivals(t, nil)
		// Without the black hole the first tenant's webhook answers at once
		// (its arrivals are not waited for).
		first := newArrivals(t, nil)
		first.got = make(chan int64, 2*n)
		firstURL := first.srv.URL
		if withHole {
			firstURL = hole.URL()
		}
		st := storetest.NewSQLite(t)
		tn := newTenants(t, st, [2]string{firstURL, fast.srv.URL})
		d := startDispatcher(t, outbox.Config{Store: st, AttemptTimeout: time.Minute, Workers: 32, PerConnection: 8})
		t.Cleanup(hole.close) // before the dispatcher waits for its attempts
		return &setup{tn: tn, d: d, fast: fast, hole: withHole}
	}
	setups := []*setup{newSetup(false), newSetup(true)}
	for i := range n {
		for _, s := range setups {
			// The first business keeps answering its users too, in both.
			s.tn.enqueue(t, 0, fmt.Sprint("caller-", i%40), int64(10_000+i), time.Now())
			s.d.Notify()
			start := time.Now()
			s.tn.enqueue(t, 1, fmt.Sprint("user-", i%20), int64(i+1), start)
			s.d.Notify()
			select {
			case id := <-s.fast.got:
				if id != int64(i+1) {
					t.Fatalf("got message %d, want %d", id, i+1)
				}
			case <-time.After(time.Minute):
				t.Fatalf("delivery %d never arrived", i)
			}
			s.lat = append(s.lat, time.Since(start))
		}
	}
	return p99(setups[0].lat), p99(setups[1].lat)
}

// TestConversationOrderUnderConcurrency: many conversations delivered at
// once to a receiver that is slow and fails at random; within each
// conversation the accepted deliveries are in the order the replies were
// stored, and every reply is accepted exactly once.
func TestConversationOrderUnderConcurrency(t *testing.T) {
	var mu sync.Mutex
	accepted := map[string][]int64{}
	rng := rand.New(rand.NewPCG(1, 2))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		m, err := outbox.DecodeMessage(ivr.OutboxItem{Body: b})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		fail := rng.IntN(4) == 0
		d := time.Duration(rng.IntN(3)) * time.Millisecond
		mu.Unlock()
		time.Sleep(d)
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		accepted[m.User.AuthID] = append(accepted[m.User.AuthID], m.Message.ID)
		mu.Unlock()
	}))
	defer srv.Close()
	clock := storetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	st := storetest.NewSQLite(t, store.WithClock(clock.Now))
	tn := newTenants(t, st, [2]string{srv.URL, srv.URL})
	const users, perUser = 12, 6
	seq := int64(0)
	for k := range perUser {
		for u := range users {
			seq++
			tn.enqueue(t, u%2, fmt.Sprint("user-", u), seq, clock.Now())
			_ = k
		}
	}
	d, err := outbox.New(outbox.Config{Store: st, Now: clock.Now, BaseBackoff: time.Second, MaxBackoff: time.Second, Lease: time.Minute,
		BreakerThreshold: 1000})
	if err != nil {
		t.Fatal(err)
	}
	d.Register(ivr.ChannelWebhook, webhook.NewSender(nil, clock.Now))
	for pass := 0; ; pass++ {
		if pass > 500 {
			t.Fatal("not delivered after 500 passes")
		}
		n, err := d.DeliverDue(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pending, err := st.ListOutbox(context.Background(), ivr.OutboxPending, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) == 0 {
			break
		}
		if n == 0 {
			clock.Advance(2 * time.Second)
		}
	}
	total := 0
	for u, ids := range accepted {
		if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
			t.Errorf("%s: accepted %v, want increasing, each once", u, ids)
		}
		total += len(ids)
	}
	if total != users*perUser {
		t.Errorf("accepted %d deliveries, want %d", total, users*perUser)
	}
}

// TestBreakerOpensProbesAndCloses: after BreakerThreshold consecutive
// failures a connection gets no attempts until its cool-down passes, then
// one probe; a failed probe doubles the cool-down; a good one closes it.
func TestBreakerOpensProbesAndCloses(t *testing.T) {
	var mu sync.Mutex
	attempts, healthy := 0, false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if !healthy {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	clock := storetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	st := storetest.NewSQLite(t, store.WithClock(clock.Now))
	tn := newTenants(t, st, [2]string{srv.URL, srv.URL})
	for i := range 10 {
		tn.enqueue(t, 0, fmt.Sprint("u", i), int64(i+1), clock.Now())
	}
	d, err := outbox.New(outbox.Config{Store: st, Now: clock.Now, PerConnection: 2, BreakerThreshold: 3, BreakerCooldown: 10 * time.Second,
		BaseBackoff: time.Hour, MaxBackoff: time.Hour, Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	d.Register(ivr.ChannelWebhook, webhook.NewSender(nil, clock.Now))
	ctx := context.Background()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return attempts
	}
	drain := func() {
		for range 20 {
			if n, err := d.DeliverDue(ctx); err != nil {
				t.Fatal(err)
			} else if n == 0 {
				return
			}
		}
	}
	drain()
	// Two lanes run at once: the breaker opens at the third failure, with
	// at most one more attempt already under way.
	opened := count()
	if opened < 3 || opened > 4 {
		t.Fatalf("%d attempts before the breaker opened, want 3 or 4 (threshold 3, 2 lanes)", opened)
	}
	clock.Advance(9 * time.Second)
	drain()
	if got := count(); got != opened {
		t.Fatalf("%d attempts while the breaker is open, want %d", got, opened)
	}
	clock.Advance(time.Second)
	drain()
	if got := count(); got != opened+1 {
		t.Fatalf("%d attempts after the cool-down, want %d (one probe)", got, opened+1)
	}
	// The probe failed: the cool-down doubled to 20 s.
	clock.Advance(19 * time.Second)
	drain()
	if got := count(); got != opened+1 {
		t.Fatalf("%d attempts 19 s after a failed probe, want %d", got, opened+1)
	}
	mu.Lock()
	healthy = true
	mu.Unlock()
	clock.Advance(time.Second)
	drain()
	// The second probe (another item; the failed ones wait for their hour
	// of backoff) succeeded and closed the breaker; every item not yet tried
	// went out: each of the ten was attempted once.
	if got := count(); got != 10 {
		t.Fatalf("%d attempts after a good probe, want 10", got)
	}
	delivered, err := st.ListOutbox(ctx, ivr.OutboxDelivered, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := 10 - opened - 1; len(delivered) != want {
		t.Fatalf("%d delivered, want %d", len(delivered), want)
	}
}

// TestRetryAfterPausesTheConnection: a 429 with Retry-After holds back
// every item of that connection, not only the one that got it, while
// another connection goes on.
func TestRetryAfterPausesTheConnection(t *testing.T) {
	var mu sync.Mutex
	limited, got := 0, 0
	limiter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if limited == 0 {
			limited++
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		got++
	}))
	defer limiter.Close()
	other := newArrivals(t, nil)
	clock := storetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	st := storetest.NewSQLite(t, store.WithClock(clock.Now))
	tn := newTenants(t, st, [2]string{limiter.URL, other.srv.URL})
	tn.enqueue(t, 0, "u0", 1, clock.Now())
	d, err := outbox.New(outbox.Config{Store: st, Now: clock.Now, Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	d.Register(ivr.ChannelWebhook, webhook.NewSender(nil, clock.Now))
	ctx := context.Background()
	if _, err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		tn.enqueue(t, 0, fmt.Sprint("u", i+1), int64(i+2), clock.Now())
	}
	tn.enqueue(t, 1, "v", 9, clock.Now())
	clock.Advance(29 * time.Second)
	if n, err := d.DeliverDue(ctx); err != nil || n != 1 {
		t.Fatalf("during the pause: %d attempts (%v), want 1 (the other connection's)", n, err)
	}
	if id := <-other.got; id != 9 {
		t.Fatalf("other connection got %d", id)
	}
	clock.Advance(time.Second)
	for range 5 {
		if _, err := d.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got != 4 {
		t.Fatalf("after the pause %d deliveries, want 4", got)
	}
}

// TestConcurrencyPerConnectionIsBounded: deliveries to one receiver run
// PerConnection at once (the old dispatcher ran one), never more.
func TestConcurrencyPerConnectionIsBounded(t *testing.T) {
	const per = 16
	var mu sync.Mutex
	inFlight, peak := 0, 0
	full := make(chan struct{})
	var fullOnce sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		reached := inFlight == per
		mu.Unlock()
		if reached {
			fullOnce.Do(func() { close(full) })
		}
		select {
		case <-full: // hold every request until PerConnection are in flight
		case <-r.Context().Done():
		}
		mu.Lock()
		inFlight--
		mu.Unlock()
	}))
	defer srv.Close()
	st := storetest.NewSQLite(t)
	tn := newTenants(t, st, [2]string{srv.URL, srv.URL})
	for i := range 3 * per {
		tn.enqueue(t, 0, fmt.Sprint("u", i), int64(i+1), time.Now())
	}
	d, err := outbox.New(outbox.Config{Store: st, PerConnection: per, Batch: 3 * per})
	if err != nil {
		t.Fatal(err)
	}
	d.Register(ivr.ChannelWebhook, webhook.NewSender(nil, nil))
	n, err := d.DeliverDue(context.Background())
	if err != nil || n != 3*per {
		t.Fatalf("DeliverDue = %d, %v; want %d", n, err, 3*per)
	}
	mu.Lock()
	defer mu.Unlock()
	if peak != per {
		t.Fatalf("peak concurrency to one connection %d, want %d", peak, per)
	}
	delivered, err := st.ListOutbox(context.Background(), ivr.OutboxDelivered, 0)
	if err != nil || len(delivered) != 3*per {
		t.Fatalf("%d delivered (%v), want %d", len(delivered), err, 3*per)
	}
}

// TestStopFinishesOnlyAttemptsUnderWay: when Run's context ends, lanes
// queued behind a busy connection are given back to the store at once;
// only the attempts already running are finished and recorded.
func TestStopFinishesOnlyAttemptsUnderWay(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
	}))
	defer srv.Close()
	st := storetest.NewSQLite(t)
	tn := newTenants(t, st, [2]string{srv.URL, srv.URL})
	for i := range 10 {
		tn.enqueue(t, 0, fmt.Sprint("u", i), int64(i+1), time.Now())
	}
	d, err := outbox.New(outbox.Config{Store: st, PerConnection: 2, Batch: 10})
	if err != nil {
		t.Fatal(err)
	}
	d.Register(ivr.ChannelWebhook, webhook.NewSender(nil, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	<-started
	<-started // two running, eight queued
	cancel()
	close(release)
	if err := <-done; err == nil {
		t.Fatal("Run returned nil after its context ended")
	}
	delivered, err := st.ListOutbox(context.Background(), ivr.OutboxDelivered, 0)
	if err != nil {
		t.Fatal(err)
	}
	pending, err := st.ListOutbox(context.Background(), ivr.OutboxPending, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(delivered) < 2 || len(delivered)+len(pending) != 10 {
		t.Fatalf("%d delivered, %d pending; want the 2 under way delivered and the rest pending", len(delivered), len(pending))
	}
	for _, it := range pending {
		if !it.LeaseUntil.IsZero() {
			t.Fatalf("item %d still leased after the stop", it.ID)
		}
	}
}
