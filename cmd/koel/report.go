package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/store"
)

// maxReportTurns caps the turns one report reads.
const maxReportTurns = 100000

// turnSource is what koel report reads.
type turnSource interface {
	ListTurnsSince(ctx context.Context, since time.Time, limit int) ([]ivr.Turn, error)
}

// reportPanel is one panel of the report: its title and the counts it draws.
type reportPanel struct {
	Title  string
	Labels []string
	Values []float64
}

// turnReport is what koel report draws: the latency distribution of voice
// turns, their record end reasons and their understanding bands.
type turnReport struct {
	Since, Until time.Time
	Turns        int
	LatencySec   []float64
	Panels       []reportPanel
}

// countBy counts turns by key, sorted by label; empty keys count as "none".
func countBy(turns []ivr.Turn, key func(ivr.Turn) string) ([]string, []float64) {
	n := map[string]float64{}
	for _, t := range turns {
		k := key(t)
		if k == "" {
			k = "none"
		}
		n[k]++
	}
	labels := make([]string, 0, len(n))
	for k := range n {
		labels = append(labels, k)
	}
	sort.Strings(labels)
	values := make([]float64, len(labels))
	for i, l := range labels {
		values[i] = n[l]
	}
	return labels, values
}

func buildTurnReport(ctx context.Context, src turnSource, since, until time.Time) (turnReport, error) {
	turns, err := src.ListTurnsSince(ctx, since, maxReportTurns)
	if err != nil {
		return turnReport{}, fmt.Errorf("read turns: %w", err)
	}
	r := turnReport{Since: since, Until: until, Turns: len(turns)}
	for _, t := range turns {
		if t.TotalMS > 0 {
			r.LatencySec = append(r.LatencySec, float64(t.TotalMS)/1000)
		}
	}
	ends, endN := countBy(turns, func(t ivr.Turn) string { return t.EndReason })
	bands, bandN := countBy(turns, func(t ivr.Turn) string { return t.Understanding })
	r.Panels = []reportPanel{
		{Title: "Turn latency (utterance to answer)"},
		{Title: "Turn end reasons", Labels: ends, Values: endN},
		{Title: "Understanding bands", Labels: bands, Values: bandN},
	}
	return r, nil
}

// errNoTurns is returned when the window holds no voice turns to draw.
var errNoTurns = errors.New("no voice turns in the window")

// render draws the report as a PNG of three panels side by side.
func (r turnReport) render(w io.Writer) error {
	if r.Turns == 0 {
		return errNoTurns
	}
	var plots []*plot.Plot
	lat := plot.New()
	lat.Title.Text = fmt.Sprintf("%s — %d turns", r.Panels[0].Title, len(r.LatencySec))
	lat.X.Label.Text = "seconds"
	lat.Y.Label.Text = "turns"
	if len(r.LatencySec) > 0 {
		h, err := plotter.NewHist(plotter.Values(r.LatencySec), 20)
		if err != nil {
			return fmt.Errorf("latency histogram: %w", err)
		}
		lat.Add(h)
	}
	plots = append(plots, lat)
	for _, p := range r.Panels[1:] {
		bp := plot.New()
		bp.Title.Text = p.Title
		bp.Y.Label.Text = "turns"
		bars, err := plotter.NewBarChart(plotter.Values(p.Values), vg.Points(18))
		if err != nil {
			return fmt.Errorf("%s: %w", p.Title, err)
		}
		bp.Add(bars)
		bp.NominalX(p.Labels...)
		plots = append(plots, bp)
	}
	img := vgimg.New(vg.Points(1200), vg.Points(400))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Points(12), PadTop: vg.Points(8), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(8)}
	canvases := plot.Align([][]*plot.Plot{plots}, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[0][i])
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		return fmt.Errorf("write png: %w", err)
	}
	return nil
}

const reportUsage = `koel report [--since 1h] --out report.png [--data-dir ./data] [--database-url URL]`

// reportCommand runs `koel report`: a PNG of the voice turns stored in the
// last --since (latency, end reasons, understanding bands).
func reportCommand(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("koel report", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	since := fs.Duration("since", time.Hour, "how far back to read turns")
	out := fs.String("out", "", "PNG file to write")
	dataDir := fs.String("data-dir", "", "data directory (default $KOEL_DATA_DIR or ./data)")
	dbURL := fs.String("database-url", "", "PostgreSQL URL (default $KOEL_DATABASE_URL or SQLite)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v\n%s", errUsage, err, reportUsage)
	}
	if *out == "" || fs.NArg() != 0 || *since <= 0 {
		return fmt.Errorf("%w: need --out and a positive --since\n%s", errUsage, reportUsage)
	}
	if *dataDir == "" {
		*dataDir = getenv("KOEL_DATA_DIR")
	}
	if *dataDir == "" {
		*dataDir = "./data"
	}
	if *dbURL == "" {
		*dbURL = getenv("KOEL_DATABASE_URL")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	st, err := store.Open(ctx, *dbURL, *dataDir, newLogger(stderr, "warn", "text"))
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	now := time.Now()
	r, err := buildTurnReport(ctx, st, now.Add(-*since), now)
	if err != nil {
		return err
	}
	// Render fully before touching the file: nothing half-written.
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".koel-report-*.png")
	if err != nil {
		return fmt.Errorf("create report: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := r.render(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s: %d turns since %s\n", *out, r.Turns, r.Since.UTC().Format(time.RFC3339))
	return nil
}
