package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/schollz/progressbar/v3"

	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/store"
)

// faqCommand runs `koel faq import FILE.csv --business ID`.
func faqCommand(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "import" {
		return fmt.Errorf("%w: koel faq import FILE.csv --business ID", errUsage)
	}
	fs := flag.NewFlagSet("koel faq import", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	business := fs.Int64("business", 0, "business id")
	dataDir := fs.String("data-dir", "", "data directory (default $KOEL_DATA_DIR or ./data)")
	dbURL := fs.String("database-url", "", "PostgreSQL URL (default $KOEL_DATABASE_URL or SQLite)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	// Accept the file before or after the flags.
	rest := args[1:]
	var file string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		file, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return fmt.Errorf("%w: %v (koel faq import FILE.csv --business ID)", errUsage, err)
	}
	if file == "" && fs.NArg() > 0 {
		file = fs.Arg(0)
	}
	if file == "" || *business <= 0 {
		return fmt.Errorf("%w: koel faq import FILE.csv --business ID", errUsage)
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

	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	logger := newLogger(stderr, "warn", "text")
	st, err := store.Open(ctx, *dbURL, *dataDir, logger)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	if _, err := st.GetBusiness(ctx, *business); err != nil {
		return fmt.Errorf("business %d: %w", *business, err)
	}

	var bar *progressbar.ProgressBar
	opts := faq.ImportOptions{}
	if !*quiet {
		opts.Progress = func(done, total int) {
			if bar == nil {
				bar = progressbar.NewOptions(total,
					progressbar.OptionSetWriter(stderr),
					progressbar.OptionSetDescription("importing "+info.Name()),
					progressbar.OptionShowCount(),
					progressbar.OptionClearOnFinish())
			}
			_ = bar.Set(done)
		}
	}
	res, err := faq.Import(ctx, st, *business, f, opts)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		var pe *faq.ParseError
		if errors.As(err, &pe) {
			for _, row := range pe.Rows {
				fmt.Fprintf(stderr, "%s:%d: %s\n", file, row.Line, row.Msg)
			}
			return fmt.Errorf("import failed: %d bad rows; the previous FAQ is unchanged", len(pe.Rows))
		}
		return fmt.Errorf("import failed; the previous FAQ is unchanged: %w", err)
	}
	fmt.Fprintf(stdout, "imported %d FAQ nodes into business %d (FAQ version %d)\n", res.Nodes, *business, res.Version)
	return nil
}
