// Command koel is the koel voice-first bot server.
//
//	koel serve [--config FILE] [--addr :8080] [--data-dir ./data] [--database-url URL] [--dev]
//	koel call [--server URL] (--connection ID | --app URL) (--say TEXT | --wav FILE)... [--dtmf DIGITS] [--out bot.wav]
//	koel faq import FILE.csv --business ID
//	koel version
//
// Configuration is described in README.md; main only parses the command
// line and hands over to the packages that do the work.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/koelvoice/koel/audio/stt"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

const usage = `koel — a voice-first bot server

usage:
  koel serve [--config FILE] [--addr :8080] [--data-dir ./data] [--database-url URL] [--dev]
  koel call [--server URL] (--connection ID | --app URL) (--say TEXT | --wav FILE)... [--dtmf DIGITS] [--out bot.wav]
  koel faq import FILE.csv --business ID [--data-dir ./data] [--database-url URL]
  koel eval voice [-split tune|test] [-json]
  koel load kookoo|softphone|bot|webhook [-target URL] [-sessions N] [-c N] [-turns N] [-duration D] [-json]
  koel outbox list|redeliver|purge [--id 1,2 | --connection ID | --all] [--data-dir ./data] [--database-url URL]
  koel report [--since 1h] --out report.png [--data-dir ./data] [--database-url URL]
  koel top [--server URL] [--admin-token TOKEN] [--interval 1s]
  koel version
`

// errUsage marks errors whose message already explains the usage.
var errUsage = errors.New("usage")

// run executes one koel command and returns the process exit code.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serveCommand(args[1:], stdout, stderr, getenv)
	case "call":
		err = callCommand(args[1:], stdout, stderr)
	case "faq":
		err = faqCommand(args[1:], stdout, stderr, getenv)
	case "outbox":
		err = outboxCommand(args[1:], stdout, stderr, getenv)
	case "report":
		err = reportCommand(args[1:], stdout, stderr, getenv)
	case "top":
		err = topCommand(args[1:], stdout, stderr, getenv)
	case "load":
		err = loadCommand(args[1:], stdout, stderr, getenv)
	case "eval":
		err = evalCommand(args[1:], stdout, stderr)
	case "sherpa-probe": // hidden: koel serve's check of sherpa models, in a child process
		err = stt.RunSherpaProbe(context.Background(), os.Stdin, stdout)
	case "version", "--version":
		fmt.Fprintln(stdout, "koel", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "koel: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "koel:", err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

// serveCommand runs the server until SIGINT or SIGTERM, then drains.
func serveCommand(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, err := parseServeConfig(args, getenv)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	srv, err := newServer(ctx, cfg, logger, getenv)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		_ = srv.Shutdown(context.Background())
		return err
	}
	if srv.DemoToken != "" && cfg.Demo.Token == "" {
		// Printed once, on stdout, never logged: the token is a secret.
		fmt.Fprintf(stdout, "demo business 1 API token (shown once; set KOEL_DEMO_TOKEN to choose it): %s\n", srv.DemoToken)
	}
	fmt.Fprintf(stdout, "koel is listening on %s — talk to the demo bot at %s/sim/\n", srv.Addr(), srv.URL())

	<-ctx.Done()
	stop()
	// A second signal skips the rest of the drain delay; a third kills.
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-again; ok {
			signal.Stop(again)
			srv.SkipDrainDelay()
		}
	}()
	logger.Info("draining", "timeout", cfg.DrainTimeout.String(), "delay", cfg.DrainDelay.String())
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	err = srv.Shutdown(drainCtx)
	signal.Stop(again)
	close(again)
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}
