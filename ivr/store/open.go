package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
)

// migrations holds the schema, one directory per dialect (types differ).
//
//go:embed migrations
var migrations embed.FS

// Option configures a store opened by [Open], [OpenSQLite] or [OpenPostgres].
type Option func(*options) error

type options struct {
	now     func() time.Time
	metrics *storeMetrics
}

// WithClock sets the clock the store stamps rows with and measures call
// lock leases against (default time.Now). Tests use it to expire leases
// without waiting.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalid)
		}
		o.now = now
		return nil
	}
}

func buildOptions(opts []Option) (options, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return options{}, err
		}
	}
	return o, nil
}

// SQLiteFile is the name of the SQLite database inside the data directory.
const SQLiteFile = "koel.db"

// Open opens the store koel is configured with and applies pending
// migrations. An empty databaseURL selects SQLite in dataDir/koel.db
// (the directory is created); a postgres:// or postgresql:// URL selects
// PostgreSQL. The URL is never logged nor put in errors (it may hold a
// password).
func Open(ctx context.Context, databaseURL, dataDir string, logger *slog.Logger, opts ...Option) (Store, error) {
	switch kind, err := databaseKind(databaseURL); {
	case err != nil:
		return nil, err
	case kind == "sqlite":
		if dataDir == "" {
			return nil, fmt.Errorf("store: %w: no database URL and no data directory", ErrInvalid)
		}
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return nil, fmt.Errorf("store: create data directory: %w", err)
		}
		return OpenSQLite(ctx, filepath.Join(dataDir, SQLiteFile), logger, opts...)
	default:
		return OpenPostgres(ctx, databaseURL, logger, opts...)
	}
}

// databaseKind classifies a database URL as "sqlite" (empty) or
// "postgres".
func databaseKind(databaseURL string) (string, error) {
	if databaseURL == "" {
		return "sqlite", nil
	}
	scheme, _, ok := strings.Cut(databaseURL, "://")
	if ok {
		switch strings.ToLower(scheme) {
		case "postgres", "postgresql":
			return "postgres", nil
		}
	}
	if !ok || len(scheme) > 32 {
		return "", fmt.Errorf("%w: database URL is not a postgres:// or postgresql:// URL", ErrInvalid)
	}
	return "", fmt.Errorf("%w: unsupported database URL scheme %q (want postgres:// or postgresql://; empty selects SQLite)",
		ErrInvalid, scheme)
}

func orDiscard(logger *slog.Logger) *slog.Logger {
	if logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return logger
}

// migrate applies the dialect's pending migrations with goose's provider.
func migrate(ctx context.Context, p *goose.Provider, logger *slog.Logger, dialectName string) error {
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate %s: %w", dialectName, err)
	}
	for _, r := range results {
		logger.InfoContext(ctx, "store: migration applied", "dialect", dialectName,
			"version", r.Source.Version, "duration", r.Duration)
	}
	return nil
}

func migrationsFS(dir string) (fs.FS, error) {
	sub, err := fs.Sub(migrations, "migrations/"+dir)
	if err != nil {
		return nil, fmt.Errorf("store: migrations for %s: %w", dir, err)
	}
	return sub, nil
}
