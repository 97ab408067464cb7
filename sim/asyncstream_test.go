package sim

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/stt"
)

// gatedStream is a recogniser stream whose writes wait at a gate, like a
// decoder slower than real time. It is as strict as the real streams:
// nothing is accepted after Close, and a second Close is ErrClosed.
type gatedStream struct {
	gate    chan struct{} // closed: writes proceed
	failAt  int           // a write that brings the total past this fails (0: never)
	mu      sync.Mutex
	got     []int16
	writes  int
	closed  bool
	closedC chan struct{}
}

func newGatedStream() *gatedStream {
	return &gatedStream{gate: make(chan struct{}), closedC: make(chan struct{})}
}

func (g *gatedStream) Write(pcm []int16) error {
	<-g.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return stt.ErrClosed
	}
	if g.failAt > 0 && len(g.got)+len(pcm) > g.failAt {
		return stt.ErrTooLong
	}
	g.got = append(g.got, pcm...)
	g.writes++
	return nil
}

func (g *gatedStream) Partial() string { return "partial" }

func (g *gatedStream) Close(context.Context) (stt.Result, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return stt.Result{}, stt.ErrClosed
	}
	g.closed = true
	close(g.closedC)
	return stt.Result{Text: "heard", Confidence: 1}, nil
}

func frames(n int) [][]int16 {
	out := make([][]int16, n)
	for i := range out {
		f := make([]int16, audio.FrameSamples)
		for j := range f {
			f[j] = int16(i)
		}
		out[i] = f
	}
	return out
}

// TestAsyncStreamNeverHoldsTheFrameLoop: with the recogniser stuck, every
// write returns at once; Close waits for the backlog, and the recogniser
// gets every sample in order.
func TestAsyncStreamNeverHoldsTheFrameLoop(t *testing.T) {
	l := &leg{}
	g := newGatedStream()
	st := l.newAsyncStream(g)
	in := frames(250) // 5 s of audio written while the recogniser is stuck
	for i, f := range in {
		if err := st.Write(f); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	close(g.gate)
	r, err := st.Close(context.Background())
	if err != nil || r.Text != "heard" {
		t.Fatalf("Close = %+v, %v", r, err)
	}
	if want := slices.Concat(in...); !slices.Equal(g.got, want) {
		t.Fatalf("recogniser got %d samples, want the %d written in order", len(g.got), len(want))
	}
	if g.writes >= len(in) {
		t.Errorf("%d recogniser writes for %d frames: the backlog was not batched", g.writes, len(in))
	}
	if p := st.Partial(); p != "partial" {
		t.Errorf("Partial = %q after %d frames", p, len(in))
	}
	if err := st.Write(in[0]); !errors.Is(err, stt.ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if _, err := st.Close(context.Background()); !errors.Is(err, stt.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	l.wg.Wait()
}

// TestAsyncStreamErrors: a recogniser error is sticky and reported by
// Close, which still releases the stream; a Close whose context ends before
// the backlog is through returns an error, and the stream is released once
// the recogniser catches up; a closing leg gets the stream itself.
func TestAsyncStreamErrors(t *testing.T) {
	t.Run("write error", func(t *testing.T) {
		l := &leg{}
		g := newGatedStream()
		g.failAt = 3 * audio.FrameSamples
		close(g.gate)
		st := l.newAsyncStream(g)
		var err error
		for _, f := range frames(50) {
			if err = st.Write(f); err != nil {
				break
			}
		}
		_, cerr := st.Close(context.Background())
		if !errors.Is(cerr, stt.ErrTooLong) && !errors.Is(err, stt.ErrTooLong) {
			t.Fatalf("write %v, Close %v: want ErrTooLong from one of them", err, cerr)
		}
		if !errors.Is(cerr, stt.ErrTooLong) {
			t.Errorf("Close = %v, want the write's ErrTooLong", cerr)
		}
		<-g.closedC // released
		l.wg.Wait()
	})
	t.Run("close gives up", func(t *testing.T) {
		l := &leg{}
		g := newGatedStream()
		st := l.newAsyncStream(g)
		for _, f := range frames(10) {
			if err := st.Write(f); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := st.Close(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Close with an ended context = %v, want context.Canceled", err)
		}
		select {
		case <-g.closedC:
			t.Fatal("the stream was closed while a write was in the recogniser")
		default:
		}
		close(g.gate)
		select {
		case <-g.closedC:
		case <-time.After(10 * time.Second):
			t.Fatal("the abandoned stream was never released")
		}
		l.wg.Wait()
	})
	t.Run("closing leg", func(t *testing.T) {
		l := &leg{closing: true}
		g := newGatedStream()
		if st := l.newAsyncStream(g); st != stt.Stream(g) {
			t.Fatalf("newAsyncStream on a closing leg = %T, want the stream itself", st)
		}
	})
}
