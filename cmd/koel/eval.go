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

	"github.com/koelvoice/koel/sim/voiceeval"
)

// evalCommand runs `koel eval voice`: the spoken-corpus evaluation of the
// voice stack (see package voiceeval).
func evalCommand(args []string, stdout, stderr io.Writer) error {
	const use = "koel eval voice [-split tune|test|all] [-json] [-synth LIST] [-variants ulaw,noise] [-per-kind N] [-workers N] [-cache DIR] [-misses]"
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
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %v (%s)", errUsage, err, use)
	}
	cfg := voiceeval.Config{Split: *split, PerKind: *perKind, Workers: *workers, CacheDir: *cache, Progress: stderr}
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
	if *asJSON {
		return rep.WriteJSON(stdout)
	}
	return rep.WriteTable(stdout)
}
