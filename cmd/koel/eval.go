package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/sim/voiceeval"
)

// evalCommand runs `koel eval voice`: the spoken-corpus evaluation of the
// voice stack (see package voiceeval).
func evalCommand(args []string, stdout, stderr io.Writer) error {
	const use = "koel eval voice [-split tune|test|all] [-json] [-synth LIST] [-variants ulaw,noise] [-per-kind N] [-workers N] [-cache DIR] [-misses] [-path kookoo|direct|text] [-sphinx-args \"-opt value ...\"]"
	if len(args) == 0 || args[0] != "voice" {
		return fmt.Errorf("%w: %s", errUsage, use)
	}
	fs := flag.NewFlagSet("koel eval voice", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	split := fs.String("split", voiceeval.SplitTest, "corpus split: tune, test or all")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	synths := fs.String("synth", "", "comma-separated engines or engine/voice pairs (default: every default voice)")
	variants := fs.String("variants", "", "comma-separated telephone variants: ulaw, noise (default both)")
	perKind := fs.Int("per-kind", 0, "keep only N utterances of each kind (0 = all)")
	workers := fs.Int("workers", 2, "calls in flight")
	cache := fs.String("cache", "", "rendered-audio cache directory (default "+voiceeval.DefaultCacheDir()+")")
	misses := fs.Bool("misses", false, "also list every miss (for tuning; use with -split tune)")
	path := fs.String("path", voiceeval.PathKooKoo, "kookoo (Record events through the call), direct (recogniser and bot, bands simulated) or text (the call with the corpus text heard perfectly: the understanding ceiling)")
	cmn := fs.String("cmn", "", "cepstral mean per utterance: prior, batch or carry (default prior)")
	bandFill := fs.Float64("band-fill", 0, "level in dBFS of the fill above 4 kHz (default -60)")
	noBandFill := fs.Bool("no-band-fill", false, "leave the band above 4 kHz empty")
	nbest := fs.Int("nbest", 0, "recogniser hypotheses passed on (default 10; -1 = only the best)")
	nbestScale := fs.Float64("nbest-scale", 0, "score scale of the N-best posteriors (default 0.1)")
	genWords := fs.Int("general-words", 0, "general-English words added to the vocabulary (default the tuning's; -1 = none)")
	genWeight := fs.Float64("general-weight", 0, "their share of the unigram mass (default the tuning's)")
	botThreshold := fs.Float64("bot-threshold", 0, "FAQ match threshold (default the bot's)")
	minSTT := fs.Float64("min-stt", 0, "transcript confidence asked again under (default the recogniser's)")
	sphinxArgs := fs.String("sphinx-args", "", "extra pocketsphinx decoder options, \"-name value\" pairs (for measuring decoder levers)")
	lattice := fs.Float64("lattice", 0, "share of the recogniser's word-lattice posteriors in the FAQ match (0 = off)")
	latticeScale := fs.Float64("lattice-scale", 0, "acoustic scale of the lattice posteriors (default the decoder's best-path pass, 1/20)")
	answer := fs.Float64("answer", 0, "direct path: bot confidence answered without confirming (default 0.6; above 1 confirms every match and prints a threshold sweep)")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %v (%s)", errUsage, err, use)
	}
	cfg := voiceeval.Config{Split: *split, PerKind: *perKind, Workers: *workers, CacheDir: *cache, Progress: stderr, Path: *path}
	cfg.Stack.Sphinx = stt.SphinxConfig{BandFillDBFS: *bandFill, NoBandFill: *noBandFill, NBest: *nbest, NBestScale: *nbestScale, GeneralWords: *genWords, GeneralWeight: *genWeight,
		DecoderArgs: strings.Fields(*sphinxArgs), Lattice: *lattice > 0, LatticeScale: *latticeScale}
	cfg.Stack.LatticeWeight = *lattice
	if *cmn != "" {
		m, ok := stt.ParseCMNMode(*cmn)
		if !ok {
			return fmt.Errorf("%w: -cmn %q, want prior, batch or carry", errUsage, *cmn)
		}
		cfg.Stack.Sphinx.CMN = m
	}
	cfg.Stack.BotThreshold, cfg.Stack.MinConfidence = *botThreshold, *minSTT
	cfg.Bands = voiceeval.Bands{MinSTT: *minSTT, Answer: *answer}
	if cfg.Bands.Answer == 0 {
		cfg.Bands.Answer = 0.6
	}
	if cfg.Bands.MinSTT == 0 {
		cfg.Bands.MinSTT = stt.DefaultMinConfidence
	}
	if *synths != "" {
		s, err := voiceeval.ParseSynths(*synths)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		cfg.Synths = s
	}
	if *variants != "" {
		for _, v := range strings.Split(*variants, ",") {
			cfg.Variants = append(cfg.Variants, voiceeval.Variant(strings.TrimSpace(v)))
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := voiceeval.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *misses {
		if err := rep.WriteMisses(stdout); err != nil {
			return err
		}
	}
	if *path == voiceeval.PathDirect && *answer > 1 {
		fmt.Fprintln(stdout, "answer-threshold sweep (direct path):")
		if err := rep.WriteSweep(stdout, []float64{0.42, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01}); err != nil {
			return err
		}
	}
	if *asJSON {
		return rep.WriteJSON(stdout)
	}
	return rep.WriteTable(stdout)
}
