package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// callCommand runs the CLI softphone (`koel call`).
func callCommand(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return simRunCLI(ctx, args, stdout, stderr)
}
