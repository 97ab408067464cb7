package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/koelvoice/koel/sim"
)

// callCommand runs the CLI softphone (`koel call`).
func callCommand(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return sim.RunCLI(ctx, args, stdout, stderr)
}
