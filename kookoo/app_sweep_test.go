package kookoo

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// testClock is a clock the test moves.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// TestAbandonedCallsAreSwept starts 3,000 calls that never send another
// event (issue 9 defect 6): once they are idle past the limit, one sweep
// ends them all as abandoned and koel_calls_active is back to 0, while a
// call with a recent event stays live.
func TestAbandonedCallsAreSwept(t *testing.T) {
	clock := &testClock{}
	h := newHarness(t, harnessOptions{store: storetest.NewSQLite(t, store.WithClock(clock.now)), now: clock.now})
	const calls = 3000
	for i := range calls {
		if code, body := h.get("demo", fmt.Sprintf("sid=77%014d&event=NewCall&%s", i, caller)); code != http.StatusOK {
			t.Fatalf("NewCall %d: %d %s", i, code, body)
		}
	}
	if got := gatheredValue(t, h.reg, "koel_calls_active", "", ""); got != calls {
		t.Fatalf("koel_calls_active = %v after %d NewCalls", got, calls)
	}
	if n, err := h.app.Voice().SweepIdleCalls(context.Background()); err != nil || n != 0 {
		t.Fatalf("sweep before the idle limit ended %d calls (%v)", n, err)
	}
	clock.advance(ivr.DefaultIdleLimit + time.Minute)
	// A call that started after the others went idle is not abandoned.
	const fresh = "7800000000000001"
	h.get("demo", "sid="+fresh+"&event=NewCall&"+caller)

	n, err := h.app.Voice().SweepIdleCalls(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != calls {
		t.Errorf("sweep ended %d calls, want %d", n, calls)
	}
	if got := gatheredValue(t, h.reg, "koel_calls_active", "", ""); got != 1 {
		t.Errorf("koel_calls_active = %v after the sweep, want 1 (the fresh call)", got)
	}
	if got := gatheredValue(t, h.reg, "koel_calls_total", "outcome", ivr.OutcomeAbandoned); got != calls {
		t.Errorf("abandoned calls counted = %v, want %d", got, calls)
	}
	c := h.call("7700000000000042")
	if c.State != ivr.CallStateEnded || c.Outcome != ivr.OutcomeAbandoned || c.EndedAt.IsZero() {
		t.Errorf("swept call = state %q outcome %q ended %v", c.State, c.Outcome, c.EndedAt)
	}
	if f := h.call(fresh); !f.Live() {
		t.Errorf("the fresh call was swept: %+v", f)
	}
	// A late event of an abandoned call is hung up, not revived.
	if code, body := h.get("demo", "sid=7700000000000042&event=GotDTMF&data=1"); code != http.StatusOK || body != `<response sid="7700000000000042"><hangup/></response>` {
		t.Errorf("late event answered %d %s", code, body)
	}
	if n, err := h.app.Voice().SweepIdleCalls(context.Background()); err != nil || n != 0 {
		t.Errorf("a second sweep ended %d calls (%v)", n, err)
	}
}

// TestSweepAcrossNodes has two nodes on one PostgreSQL sweep the same idle
// calls at once: every call is ended exactly once, and the nodes' gauges
// sum to zero.
func TestSweepAcrossNodes(t *testing.T) {
	clock := &testClock{}
	st := storetest.NewPostgres(t, store.WithClock(clock.now))
	n1 := newHarness(t, harnessOptions{store: st, nodeID: "node-a", now: clock.now})
	n2 := newHarness(t, harnessOptions{store: st, nodeID: "node-b", noSetup: true, pre: n1.pre, now: clock.now})
	const calls = 400
	for i := range calls {
		n1.get("demo", fmt.Sprintf("sid=79%014d&event=NewCall&%s", i, caller))
	}
	clock.advance(ivr.DefaultIdleLimit + time.Minute)
	var wg sync.WaitGroup
	ended := make([]int, 2)
	for i, h := range []*harness{n1, n2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := h.app.Voice().SweepIdleCalls(context.Background())
			if err != nil {
				t.Errorf("node %d sweep: %v", i, err)
			}
			ended[i] = n
		}()
	}
	wg.Wait()
	if ended[0]+ended[1] != calls {
		t.Errorf("nodes ended %d + %d calls, want %d in all", ended[0], ended[1], calls)
	}
	active := gatheredValue(t, n1.reg, "koel_calls_active", "", "") + gatheredValue(t, n2.reg, "koel_calls_active", "", "")
	if active != 0 {
		t.Errorf("koel_calls_active summed over the nodes = %v, want 0", active)
	}
	abandoned := gatheredValue(t, n1.reg, "koel_calls_total", "outcome", ivr.OutcomeAbandoned) +
		gatheredValue(t, n2.reg, "koel_calls_total", "outcome", ivr.OutcomeAbandoned)
	if abandoned != calls {
		t.Errorf("abandoned counted %v times, want %d", abandoned, calls)
	}
}
