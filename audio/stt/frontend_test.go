package stt

import (
	"math"
	"reflect"
	"testing"
)

func TestBandFillLevelAndBand(t *testing.T) {
	f := bandFill(-60)
	if len(f) != bandFillSamples {
		t.Fatalf("%d samples", len(f))
	}
	var e float64
	for _, s := range f {
		e += float64(s) * float64(s)
	}
	rms := math.Sqrt(e / float64(len(f)))
	if db := 20 * math.Log10(rms/32768); math.Abs(db+60) > 0.5 {
		t.Errorf("level %.2f dBFS, want -60", db)
	}
	// Energy at 1 kHz and 2.5 kHz (in the telephone band) must be far
	// below the energy at 5 and 7 kHz (the band it fills).
	power := func(hz float64) float64 {
		var re, im float64
		for i, s := range f {
			a := 2 * math.Pi * hz * float64(i) / decoderRate
			re += float64(s) * math.Cos(a)
			im += float64(s) * math.Sin(a)
		}
		return re*re + im*im
	}
	low := power(1000) + power(2500)
	high := power(5000) + power(7000)
	if high < 100*low {
		t.Errorf("fill not confined above 4 kHz: power below %.3g, above %.3g", low, high)
	}
	if !reflect.DeepEqual(f, bandFill(-60)) {
		t.Error("band fill differs between builds: not deterministic")
	}
}

func TestAddFillLoopsAndSaturates(t *testing.T) {
	fill := []int16{1, 2, 3}
	pcm := []int16{10, 10, 10, 10, 32767}
	pos := addFill(pcm, fill, 1)
	if want := []int16{12, 13, 11, 12, 32767}; !reflect.DeepEqual(pcm, want) {
		t.Errorf("got %v, want %v", pcm, want)
	}
	if pos != 0 {
		t.Errorf("next position %d, want 0", pos)
	}
	if got := addFill(pcm, nil, 2); got != 2 {
		t.Errorf("empty fill moved the position to %d", got)
	}
}

func TestAlternatives(t *testing.T) {
	words := map[string]bool{"where": true, "is": true, "my": true, "order": true, "refund": true}
	raw := []rawHyp{
		{"<s> where is my order </s>", -1000},
		{"<s> where is my order(2) [NOISE] </s>", -1100},
		{"where is my refund", -2000},
		{"gbg_ah gbg_t", -2500},
	}
	got := alternatives(raw, "where is my order", words, 1, 0.01)
	if len(got) != 2 || got[0].Text != "where is my order" || got[1].Text != "where is my refund" {
		t.Fatalf("alternatives %+v", got)
	}
	// exp(0)+exp(-1) against exp(-10).
	p0 := (1 + math.Exp(-1)) / (1 + math.Exp(-1) + math.Exp(-10))
	if math.Abs(got[0].Posterior-p0) > 1e-9 || math.Abs(got[0].Posterior+got[1].Posterior-1) > 1e-9 {
		t.Errorf("posteriors %+v, want %.6f first", got, p0)
	}
	// The final hypothesis comes first even when the N-best list lacks it.
	got = alternatives(raw[2:3], "where is my order", words, 1, 0.01)
	if len(got) != 2 || got[0].Text != "where is my order" {
		t.Errorf("best missing from the list: %+v", got)
	}
	if got := alternatives(nil, "where is my order", words, 1, 0.01); len(got) != 1 || got[0].Posterior != 1 {
		t.Errorf("no list: %+v", got)
	}
	if got := alternatives(raw, "", words, 1, 0.01); got != nil {
		t.Errorf("empty best: %+v", got)
	}
}

func TestConfigFrontEndDefaultsAndLimits(t *testing.T) {
	c, err := (&SphinxConfig{DataDir: "x"}).withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.CMN != CMNPrior || c.BandFillDBFS != DefaultBandFillDBFS || c.NBest != DefaultNBest || c.NBestScale != DefaultNBestScale {
		t.Errorf("defaults %+v", c)
	}
	for _, bad := range []SphinxConfig{
		{DataDir: "x", CMN: CMNMode(9)}, {DataDir: "x", BandFillDBFS: -3}, {DataDir: "x", NBest: 1000},
		{DataDir: "x", NBestScale: -1}, {DataDir: "x", BandFillDBFS: math.NaN()},
		{DataDir: "x", LatticeScale: -0.05}, {DataDir: "x", LatticeScale: math.NaN()},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	for _, m := range []CMNMode{CMNPrior, CMNBatch, CMNCarry} {
		if got, ok := ParseCMNMode(m.String()); !ok || got != m {
			t.Errorf("ParseCMNMode(%q) = %v, %v", m.String(), got, ok)
		}
	}
}
