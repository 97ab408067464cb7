//go:build cgo && !nopocketsphinx

package stt

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestThreadCPUCountsOwnWorkOnly: threadCPU counts the work done in f on
// its thread, not time spent waiting for another goroutine's work.
func TestThreadCPUCountsOwnWorkOnly(t *testing.T) {
	spin := func() {
		x := 1.0
		for i := range 20_000_000 {
			x = math.Sqrt(x + float64(i))
		}
		if x < 0 {
			t.Log(x)
		}
	}
	done := make(chan time.Duration, 1)
	var worked time.Duration
	waited := threadCPU(func() {
		go func() { done <- threadCPU(spin) }()
		worked = <-done
	})
	if worked <= 0 {
		t.Fatalf("spinning thread used %v", worked)
	}
	if waited >= worked/2 {
		t.Errorf("waiting thread used %v, the spinning one %v: waiting counted as work", waited, worked)
	}
}

// TestSphinxCPU: the recogniser adds each stream's thread CPU time to CPU
// and to koel_stt_cpu_seconds_total. One stream runs on one thread at a
// time, so its CPU time cannot exceed its wall time.
func TestSphinxCPU(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	s := newTestSphinx(t, SphinxConfig{PoolSize: 1, Registerer: reg})
	v := demoVocabulary(t)
	pcm := phoneLine(t, "when are you open on sunday", "en-us")
	if _, err := Transcribe(t.Context(), s, v, pcm); err != nil { // decoder created
		t.Fatal(err)
	}
	for i := range 2 {
		before := s.CPU()
		start := time.Now()
		res, err := Transcribe(t.Context(), s, v, pcm)
		wall := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if res.Text == "" {
			t.Fatalf("decode %d heard nothing", i)
		}
		used := s.CPU() - before
		if used <= 0 || used > wall {
			t.Errorf("decode %d: CPU %v, wall %v; want 0 < CPU <= wall", i, used, wall)
		}
	}
	got := testutil.ToFloat64(s.metrics.cpu)
	if want := s.CPU().Seconds(); math.Abs(got-want) > 1e-6 {
		t.Errorf("koel_stt_cpu_seconds_total = %g, CPU = %g s", got, want)
	}
	if n, err := testutil.GatherAndCount(reg, "koel_stt_cpu_seconds_total"); err != nil || n != 1 {
		t.Errorf("koel_stt_cpu_seconds_total exported %d times: %v", n, err)
	}
}
