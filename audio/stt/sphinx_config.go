package stt

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultModelDir is where Debian's pocketsphinx-en-us installs its model.
const DefaultModelDir = "/usr/share/pocketsphinx/model/en-us"

// SearchMode selects how recognition is restricted to a vocabulary.
type SearchMode int

const (
	// SearchDefault is the zero value: SearchLM.
	SearchDefault SearchMode = iota
	// SearchLM decodes with a trigram language model trained on the
	// vocabulary's phrases and carrier words: callers may phrase a
	// question their own way.
	SearchLM
	// SearchGrammar decodes with a JSGF grammar: one phrase, optionally
	// wrapped in a carrier prefix/suffix. Strict; best for menus.
	SearchGrammar
)

// String names the mode.
func (m SearchMode) String() string {
	switch m {
	case SearchLM, SearchDefault:
		return "lm"
	case SearchGrammar:
		return "grammar"
	default:
		return fmt.Sprintf("SearchMode(%d)", int(m))
	}
}

// SphinxConfig configures the pocketsphinx backend. Zero values take the
// documented defaults.
type SphinxConfig struct {
	// ModelDir holds the en-us acoustic model directory "en-us" and
	// "cmudict-en-us.dict". Default DefaultModelDir.
	ModelDir string
	// DataDir is where the telephone model directory and the vocabulary
	// builds go. Required.
	DataDir string
	// PoolSize bounds the number of decoders (about 30 MB each). Default 4.
	PoolSize int
	// Search selects language model or grammar decoding. Default SearchLM.
	Search SearchMode
	// Logger receives warnings and debug lines. Default: discard.
	Logger *slog.Logger
	// Registerer, if set, receives the backend's metrics.
	Registerer prometheus.Registerer

	// Front-end and N-best options. The zero values are the measured
	// defaults (README, "Voice understanding: measured"); the others exist
	// to measure the levers again.

	// CMN selects how cepstral mean normalisation is estimated per
	// utterance. Default CMNPrior.
	CMN CMNMode
	// BandFillDBFS is the RMS level of the noise fill above 4 kHz mixed
	// into the upsampled audio. Default DefaultBandFillDBFS.
	BandFillDBFS float64
	// NoBandFill leaves the band above 4 kHz empty.
	NoBandFill bool
	// NBest is how many recogniser hypotheses go into Result.Alternatives.
	// Default DefaultNBest; negative gives only the best one.
	NBest int
	// GeneralWords is how many of the most frequent general-English words
	// join every vocabulary (a way out for words the bot's phrases lack).
	// Default the measured tuning; negative adds none.
	GeneralWords int
	// GeneralWeight is the general words' share of the language model's
	// unigram mass. Default the measured tuning.
	GeneralWeight float64
	// NBestScale scales hypothesis path scores (natural log) before they
	// are normalised into posteriors. Default DefaultNBestScale.
	NBestScale float64
	// Lattice fills Result.Lattice with the word posteriors of the
	// decoder's word lattice. Off by default (measured in README, "Voice
	// understanding: measured").
	Lattice bool
	// LatticeScale is the acoustic score scale of the lattice posteriors.
	// Zero reuses the posteriors of the decoder's own best-path pass
	// (scale 1/20, at no extra cost); another value computes them again.
	LatticeScale float64
	// DecoderArgs are pocketsphinx options ("-maxwpf", "10") applied over
	// the measured decoder options: one already set takes the new value.
	// For measuring decoder levers; empty in production.
	DecoderArgs []string
}

// Measured defaults of the front-end options of [SphinxConfig].
const (
	// DefaultBandFillDBFS is the level of the fill above 4 kHz.
	DefaultBandFillDBFS = -60
	// DefaultNBest is the number of hypotheses kept.
	DefaultNBest = 10
	// DefaultNBestScale turns path scores into posteriors.
	DefaultNBestScale = 0.1
)

// telephoneCMNInit is the initial cepstral mean for band-limited telephone
// audio upsampled to 16 kHz (measured; see the feasibility notes). The
// model's own feat.params has a wide-band value that makes the first
// utterance of a fresh decoder come back empty.
const telephoneCMNInit = "55.9,32.5,-36.7,44.0,-29.7,-4.6,2.2,-36.5,14.2,-8.2,15.6,-1.9,-18.0"

// telephoneFilledCMNInit is the cepstral mean of telephone audio upsampled
// to 16 kHz with the default band fill (DefaultBandFillDBFS) added,
// measured over the acceptance utterances with batch CMN
// (TestMeasureCMNPrior). CMNPrior resets to it when the fill is on.
const telephoneFilledCMNInit = "52.1,-2.0,-1.3,10.7,-0.5,-13.2,4.7,-16.7,-5.6,3.5,-6.4,4.0,-6.1"

// modelFiles are the acoustic model files linked into the telephone model.
var modelFiles = []string{"mdef", "means", "variances", "sendump", "transition_matrices", "noisedict"}

func (c *SphinxConfig) withDefaults() (SphinxConfig, error) {
	out := *c
	if out.ModelDir == "" {
		out.ModelDir = DefaultModelDir
	}
	if out.DataDir == "" {
		return out, fmt.Errorf("stt: SphinxConfig.DataDir is required")
	}
	if out.PoolSize == 0 {
		out.PoolSize = 4
	}
	if out.PoolSize < 0 || out.PoolSize > 256 {
		return out, fmt.Errorf("stt: SphinxConfig.PoolSize %d out of range 1..256", out.PoolSize)
	}
	if out.Search == SearchDefault {
		out.Search = SearchLM
	}
	if out.Search != SearchLM && out.Search != SearchGrammar {
		return out, fmt.Errorf("stt: unknown search mode %v", out.Search)
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	if out.CMN == CMNDefault {
		out.CMN = CMNPrior
	}
	if out.CMN < CMNPrior || out.CMN > CMNCarry {
		return out, fmt.Errorf("stt: unknown CMN mode %v", out.CMN)
	}
	if out.BandFillDBFS == 0 {
		out.BandFillDBFS = DefaultBandFillDBFS
	}
	if out.BandFillDBFS > -20 || math.IsNaN(out.BandFillDBFS) {
		return out, fmt.Errorf("stt: BandFillDBFS %g is not a faint level (want -20 or lower)", out.BandFillDBFS)
	}
	if out.NBest == 0 {
		out.NBest = DefaultNBest
	}
	if out.NBest > 100 {
		return out, fmt.Errorf("stt: NBest %d out of range (at most 100)", out.NBest)
	}
	if out.GeneralWords > 20000 {
		return out, fmt.Errorf("stt: GeneralWords %d out of range (at most 20000)", out.GeneralWords)
	}
	if out.GeneralWeight < 0 || out.GeneralWeight >= 1 || math.IsNaN(out.GeneralWeight) {
		return out, fmt.Errorf("stt: GeneralWeight %g out of range [0, 1)", out.GeneralWeight)
	}
	if out.NBestScale == 0 {
		out.NBestScale = DefaultNBestScale
	}
	if len(out.DecoderArgs)%2 != 0 {
		return out, fmt.Errorf("stt: DecoderArgs %q: want option/value pairs", out.DecoderArgs)
	}
	for i := 0; i < len(out.DecoderArgs); i += 2 {
		if !strings.HasPrefix(out.DecoderArgs[i], "-") {
			return out, fmt.Errorf("stt: DecoderArgs: %q is not an option name", out.DecoderArgs[i])
		}
	}
	out.DecoderArgs = slices.Clone(out.DecoderArgs)
	if out.NBestScale < 0 || math.IsNaN(out.NBestScale) || math.IsInf(out.NBestScale, 0) {
		return out, fmt.Errorf("stt: NBestScale %g must be positive", out.NBestScale)
	}
	if out.LatticeScale < 0 || math.IsNaN(out.LatticeScale) || math.IsInf(out.LatticeScale, 0) {
		return out, fmt.Errorf("stt: LatticeScale %g must be zero or positive", out.LatticeScale)
	}
	return out, nil
}

// prepareModel builds dataDir/model-telephone-<hash>: links to the acoustic
// model's files plus a feat.params whose -cmninit suits telephone audio
// (feat.params overrides command-line options, so it has to be rewritten).
// It returns the directory. A missing model is ErrUnavailable.
func prepareModel(modelDir, dataDir string, feat [][2]string) (string, error) {
	src := filepath.Join(modelDir, "en-us")
	params, err := os.ReadFile(filepath.Join(src, "feat.params"))
	if err != nil {
		return "", fmt.Errorf("%w: acoustic model: %w", ErrUnavailable, err)
	}
	for _, f := range modelFiles {
		if _, err := os.Stat(filepath.Join(src, f)); err != nil {
			return "", fmt.Errorf("%w: acoustic model: %w", ErrUnavailable, err)
		}
	}
	over := map[string]string{"-cmninit": telephoneCMNInit}
	order := []string{"-cmninit"}
	for _, kv := range feat {
		if _, ok := over[kv[0]]; !ok {
			order = append(order, kv[0])
		}
		over[kv[0]] = kv[1]
	}
	var b strings.Builder
	for _, line := range strings.Split(string(params), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if _, ok := over[f[0]]; ok {
			continue
		}
		b.WriteString(line + "\n")
	}
	for _, k := range order {
		b.WriteString(k + " " + over[k] + "\n")
	}

	// The directory name depends on the source and the parameters, so a
	// build is never modified once installed, only reused.
	sum := sha256.Sum256([]byte(src + "\x00" + b.String()))
	dir := filepath.Join(dataDir, "model-telephone-"+hex.EncodeToString(sum[:])[:12])
	if _, err := os.Stat(filepath.Join(dir, "feat.params")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", fmt.Errorf("stt: create data dir: %w", err)
	}
	tmp, err := os.MkdirTemp(dataDir, ".model-")
	if err != nil {
		return "", fmt.Errorf("stt: create model dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, f := range modelFiles {
		if err := os.Symlink(filepath.Join(src, f), filepath.Join(tmp, f)); err != nil {
			return "", fmt.Errorf("stt: link model file: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "feat.params"), []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("stt: write feat.params: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, "feat.params")); statErr == nil {
			return dir, nil // a concurrent start installed it
		}
		return "", fmt.Errorf("stt: install model dir: %w", err)
	}
	return dir, nil
}
