package main

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/sim/loadgen"
)

// TestReportDrawsStoredTurns plays KooKoo calls through pocketsphinx (and a
// recording that cannot be fetched), then draws koel report from the store:
// a valid PNG with three panels — latency, end reasons, understanding
// bands — whose counts add up to the stored turns, each panel drawn.
func TestReportDrawsStoredTurns(t *testing.T) {
	utts, err := loadgen.RenderUtterances(context.Background(), 4, t.TempDir())
	if err != nil {
		t.Skipf("espeak-ng unavailable: %v (make test installs it)", err)
	}
	cfg := voiceConfig(t, "")
	srv := startServer(t, cfg)
	if srv.voice.sttState != "ok" {
		t.Skipf("pocketsphinx unavailable (%s); make test installs it", srv.voice.sttState)
	}
	ctx := context.Background()
	start := time.Now().Add(-time.Second)
	rep, err := loadgen.Run(ctx, loadgen.Config{Scenario: loadgen.ScenarioKooKoo, Target: srv.URL(), Sessions: 2, Concurrency: 2, Turns: 2,
		Utterances: utts, Duration: time.Minute, Timeout: 30 * time.Second})
	if err != nil || rep.SessionsOK != 2 {
		t.Fatalf("kookoo load: %+v %v", rep, err)
	}
	for _, st := range []string{"NewCall", "Record", "Hangup"} {
		p := ev("6201", st, "cid", "09876543210", "called_number", "918065740671", "data", srv.URL()+"/gone.wav", "status", "silence",
			"process", "record", "total_call_duration", "7")
		if code, body := kookooGet(t, srv.URL(), p); code != http.StatusOK {
			t.Fatalf("%s: %d %s", st, code, body)
		}
	}

	r, err := buildTurnReport(ctx, srv.store, start, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r.Turns < 5 {
		t.Fatalf("%d turns in the report, want the 4 answered and the broken one", r.Turns)
	}
	if len(r.LatencySec) < 4 {
		t.Errorf("%d latencies, want one per answered turn", len(r.LatencySec))
	}
	wantTitles := []string{"Turn latency (utterance to answer)", "Turn end reasons", "Understanding bands"}
	for i, p := range r.Panels {
		if p.Title != wantTitles[i] {
			t.Errorf("panel %d is %q, want %q", i, p.Title, wantTitles[i])
		}
		if i == 0 {
			continue
		}
		sum := 0.0
		for _, v := range p.Values {
			sum += v
		}
		if int(sum) != r.Turns || len(p.Labels) != len(p.Values) || len(p.Labels) == 0 {
			t.Errorf("%s: %v %v, want counts summing to %d", p.Title, p.Labels, p.Values, r.Turns)
		}
	}
	// The broken recording is always the failed band; the load's espeak-ng
	// questions land in whatever band recognition gives them (answered,
	// confirm, reprompt, menu), which must be drawn too.
	bands := r.Panels[2].Labels
	if !slices.Contains(bands, "failed") {
		t.Errorf("understanding bands %v lack failed (the broken recording)", bands)
	}
	if !slices.ContainsFunc(bands, func(b string) bool {
		return b == "answered" || b == "confirm" || b == "reprompt" || b == "menu"
	}) {
		t.Errorf("understanding bands %v lack the recognised turns' bands", bands)
	}

	var buf bytes.Buffer
	if err := r.render(&buf); err != nil {
		t.Fatal(err)
	}
	if keep := os.Getenv("KOEL_REPORT_KEEP"); keep != "" { // to look at it
		if err := os.WriteFile(keep, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img, err := png.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	b := img.Bounds()
	if d := b.Dx() - 3*b.Dy(); b.Dx() < 1000 || d < -3 || d > 3 {
		t.Fatalf("image %v, want three square-ish panels side by side (3:1)", b)
	}
	// Each third of the picture has ink: every panel was drawn.
	for i := range 3 {
		ink := 0
		for x := b.Min.X + i*b.Dx()/3; x < b.Min.X+(i+1)*b.Dx()/3; x += 2 {
			for y := b.Min.Y; y < b.Max.Y; y += 2 {
				if r, g, bl, _ := img.At(x, y).RGBA(); r < 0x8000 && g < 0x8000 && bl < 0x8000 {
					ink++
				}
			}
		}
		if ink < 200 {
			t.Errorf("panel %d has %d dark pixels: not drawn", i, ink)
		}
	}

	// The command writes the same picture to --out.
	out := filepath.Join(t.TempDir(), "report.png")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"report", "--since", "1h", "--out", out, "--data-dir", cfg.DataDir}, &stdout, &stderr, env(nil)); code != 0 {
		t.Fatalf("koel report: exit %d: %s", code, stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if !strings.Contains(stdout.String(), "turns since") {
		t.Errorf("stdout %q", stdout.String())
	}
}

func TestReportRefusesEmptyWindowAndBadFlags(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir(), "", ""))
	r, err := buildTurnReport(context.Background(), srv.store, time.Now(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.render(&bytes.Buffer{}); !errors.Is(err, errNoTurns) {
		t.Fatalf("empty window: %v, want errNoTurns", err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"report", "--since", "1h"}, &stdout, &stderr, env(nil)); code != 2 {
		t.Fatalf("no --out: exit %d, want 2", code)
	}
	out := filepath.Join(t.TempDir(), "r.png")
	if code := run([]string{"report", "--out", out, "--data-dir", t.TempDir()}, &stdout, &stderr, env(nil)); code != 1 {
		t.Fatalf("no turns: exit %d, want 1: %s", code, stderr.String())
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a failed report left %s behind (%v)", out, err)
	}
}
