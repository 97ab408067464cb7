package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/koelvoice/koel/sim/loadgen"
)

const loadUsage = `koel load kookoo|softphone|echo|bot|webhook [flags]
  -target URL          koel base URL (http://127.0.0.1:8080)
  -app URL             kookoo: any KooKoo application URL instead of <target>/kookoo/<identifier>
  -sessions N          calls or conversations in all (10); -c N at once (1); -turns N each (3)
  -duration D          bound of the run (1m)
  -pace                kookoo: pace as a real call (prompt, think time, speech, silence period) (true)
  -think D -silence D  kookoo pacing (700ms, 1s)
  -burst N -ramp R     echo: of the -c calls (all at once; -sessions defaults to -c), N arrive at once
                       when the others are up; those arrive R a second (25); each streams to -duration
  -utterances N        kookoo: corpus recordings to render with espeak-ng (40; 0 = all)
  -token T             text: the business API token ($KOEL_DEMO_TOKEN); -business ID (1); -client-id (demo)
                       softphone: the softphone token outside development mode ($KOEL_SIM_TOKEN)
  -webhook-listen ADDR webhook: receive the replies here and measure message -> delivered
  -webhook-secret S    webhook: verify their signatures
  -allow-remote        allow a target off loopback
  -json                print the report as JSON`

// loadCommand runs `koel load` (see package loadgen).
func loadCommand(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		return fmt.Errorf("%w:\n%s", errUsage, loadUsage)
	}
	cfg := loadgen.Config{Scenario: args[0]}
	switch cfg.Scenario {
	case loadgen.ScenarioKooKoo, loadgen.ScenarioSoftphone, loadgen.ScenarioEcho, loadgen.ScenarioBot, loadgen.ScenarioWebhook:
	default:
		return fmt.Errorf("%w: unknown scenario %q\n%s", errUsage, args[0], loadUsage)
	}
	fs := flag.NewFlagSet("koel load", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.Target, "target", "http://127.0.0.1:8080", "koel base URL")
	fs.StringVar(&cfg.AppURL, "app", "", "KooKoo application URL")
	fs.StringVar(&cfg.Identifier, "identifier", "demo", "KooKoo connection identifier")
	fs.IntVar(&cfg.Sessions, "sessions", 10, "sessions in all")
	fs.IntVar(&cfg.Concurrency, "c", 1, "sessions at once")
	fs.IntVar(&cfg.Turns, "turns", 3, "turns per session")
	fs.DurationVar(&cfg.Duration, "duration", time.Minute, "bound of the run")
	fs.IntVar(&cfg.Burst, "burst", 0, "echo: calls arriving at once")
	fs.Float64Var(&cfg.RampRate, "ramp", 0, "echo: calls a second before the burst")
	fs.BoolVar(&cfg.Pace, "pace", true, "pace calls as real ones")
	fs.DurationVar(&cfg.ThinkTime, "think", 0, "think time")
	fs.DurationVar(&cfg.SilencePeriod, "silence", 0, "silence period")
	fs.DurationVar(&cfg.Timeout, "timeout", 15*time.Second, "bound of one request")
	fs.StringVar(&cfg.Token, "token", "", "business API token")
	fs.Int64Var(&cfg.BusinessID, "business", 1, "business id")
	fs.StringVar(&cfg.ClientID, "client-id", "demo", "client-id header")
	fs.StringVar(&cfg.WebhookListen, "webhook-listen", "", "reply receiver address")
	fs.StringVar(&cfg.WebhookSecret, "webhook-secret", "", "reply signature secret")
	fs.StringVar(&cfg.RecordListen, "record-listen", "127.0.0.1:0", "recording host address")
	fs.StringVar(&cfg.RecordURL, "record-url", "", "recording host URL as the target reaches it")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow a target off loopback")
	utterances := fs.Int("utterances", 40, "recordings to render")
	cache := fs.String("cache", "", "rendered-audio cache directory")
	asJSON := fs.Bool("json", false, "JSON report")
	quiet := fs.Bool("quiet", false, "no progress lines")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %v\n%s", errUsage, err, loadUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if cfg.Scenario == loadgen.ScenarioEcho {
		sessionsSet := false
		fs.Visit(func(f *flag.Flag) { sessionsSet = sessionsSet || f.Name == "sessions" })
		if !sessionsSet {
			cfg.Sessions = cfg.Concurrency
		}
	}
	if cfg.Token == "" && (cfg.Scenario == loadgen.ScenarioSoftphone || cfg.Scenario == loadgen.ScenarioEcho) {
		cfg.Token = getenv("KOEL_SIM_TOKEN")
	} else if cfg.Token == "" {
		cfg.Token = getenv("KOEL_DEMO_TOKEN")
	}
	if cfg.WebhookSecret == "" {
		cfg.WebhookSecret = getenv("KOEL_DEMO_WEBHOOK_SECRET")
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if cfg.Scenario == loadgen.ScenarioKooKoo || cfg.Scenario == loadgen.ScenarioSoftphone {
		if *utterances < 0 {
			return fmt.Errorf("%w: -utterances must not be negative", errUsage)
		}
		if cfg.Utterances, err = loadgen.RenderUtterances(ctx, *utterances, *cache); err != nil {
			return err
		}
	} else if cfg.Scenario == loadgen.ScenarioBot || cfg.Scenario == loadgen.ScenarioWebhook {
		if cfg.Texts, err = loadgen.Texts(); err != nil {
			return err
		}
	}
	rep, err := loadgen.Run(ctx, cfg)
	if errors.Is(err, loadgen.ErrNotLoopback) {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return rep.WriteJSON(stdout)
	}
	return rep.WriteText(stdout)
}
