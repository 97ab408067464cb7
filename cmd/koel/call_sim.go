package main

import (
	"context"
	"errors"
	"io"
)

func simRunCLI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("koel call: the softphone is not wired yet")
}
