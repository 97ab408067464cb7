package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite tuning. The single writer connection never meets SQLITE_BUSY from
// this process; busyTimeoutMS covers other processes (a CLI import) on the
// same file.
const (
	busyTimeoutMS = 10000
	// sqliteReaders is the most concurrent read connections.
	sqliteReaders = 8
)

// OpenSQLite opens (creating if needed) the SQLite database at path and
// applies pending migrations.
//
// Writes go through one connection whose transactions start with BEGIN
// IMMEDIATE, so concurrent writers queue in the pool instead of failing
// with SQLITE_BUSY; reads use a separate pool of query-only connections
// that WAL lets run alongside the writer.
func OpenSQLite(ctx context.Context, path string, logger *slog.Logger, opts ...Option) (Store, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	logger = orDiscard(logger)
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("store: open sqlite: %w: path %q is empty or holds '?' or '#'", ErrInvalid, path)
	}
	base := "file:" + path + "?" + url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS),
			"foreign_keys(1)",
			"synchronous(NORMAL)",
		},
		"_txlock": {"immediate"},
	}.Encode()

	// The writer never checkpoints on its own below walSafetyPages: a
	// background checkpointer on its own connection copies the WAL into the
	// database, so commits do not stall behind a checkpoint's writes and
	// fsync (it was the tail of the API latency). The safety net bounds the
	// WAL if the checkpointer falls behind.
	write, err := openSQLitePool(ctx, base+"&_pragma=journal_mode(WAL)"+fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)", walSafetyPages), 1)
	if err != nil {
		return nil, err
	}
	src, err := migrationsFS("sqlite")
	if err != nil {
		return nil, errors.Join(err, write.Close())
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, write, src, goose.WithSlog(logger.With("component", "migrations")))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("store: sqlite migrations: %w", err), write.Close())
	}
	if err := migrate(ctx, p, logger, "sqlite"); err != nil {
		return nil, errors.Join(err, write.Close())
	}
	readers := min(sqliteReaders, max(2, runtime.GOMAXPROCS(0)))
	read, err := openSQLitePool(ctx, base+"&_pragma=query_only(1)", readers)
	if err != nil {
		return nil, errors.Join(err, write.Close())
	}
	ckpt, err := openSQLitePool(ctx, base, 1)
	if err != nil {
		return nil, errors.Join(err, read.Close(), write.Close())
	}
	st := &sqlStore{
		d:       sqliteDialect(),
		read:    read,
		write:   write,
		prepare: true,
		log:     logger,
		now:     o.now,
		metrics: o.metrics,
	}
	st.stopBackground = startCheckpointer(ckpt, checkpointInterval, logger)
	return st, nil
}

// Checkpointing of the SQLite WAL.
const (
	// checkpointInterval is how often the background checkpointer runs.
	checkpointInterval = time.Second
	// walSafetyPages is the WAL size (pages of 4 KiB) at which the writer
	// checkpoints by itself after all.
	walSafetyPages = 16384
)

// startCheckpointer runs PRAGMA wal_checkpoint(PASSIVE) on db every
// interval until the returned stop function is called; stop waits for it
// and closes db. A passive checkpoint never blocks the writer or readers.
func startCheckpointer(db *sql.DB, interval time.Duration, logger *slog.Logger) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
			if _, err := db.ExecContext(cctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil && ctx.Err() == nil {
				logger.Warn("store: sqlite checkpoint failed", "error", err)
			}
			ccancel()
		}
	}()
	return func() error {
		cancel()
		<-done
		return db.Close()
	}
}

func openSQLitePool(ctx context.Context, dsn string, conns int) (*sql.DB, error) {
	connector, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("store: open sqlite: %w", err), db.Close())
	}
	return db, nil
}

func sqliteDialect() *dialect {
	code := func(err error) int {
		var se *sqlite.Error
		if errors.As(err, &se) {
			return se.Code()
		}
		return 0
	}
	return &dialect{
		name: "sqlite",
		isUnique: func(err error) bool {
			c := code(err)
			return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
		},
		isForeignKey: func(err error) bool { return code(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY },
	}
}

var _ Store = (*sqlStore)(nil)
