package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// PostgreSQL pool sizing for one koel process.
const (
	pgMaxConns     = 20
	pgMaxIdleConns = 10
	pgMaxIdleTime  = 5 * time.Minute
)

// PostgreSQL error codes (SQLSTATE).
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
)

// OpenPostgres connects to the PostgreSQL database at databaseURL and
// applies pending migrations. Several koel processes may open the same
// database at once: migrations run under a session advisory lock keyed by
// the schema. A search_path parameter in the URL selects the schema.
//
// The store uses pgx through its database/sql adapter: the queries and
// transaction code are shared with SQLite, goose needs a *sql.DB anyway, and
// pgx still caches prepared statements per connection.
func OpenPostgres(ctx context.Context, databaseURL string, logger *slog.Logger, opts ...Option) (Store, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	logger = orDiscard(logger)
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		// pgx masks the password in its parse errors.
		return nil, fmt.Errorf("store: open postgres: %w: %w", ErrInvalid, err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(pgMaxConns)
	db.SetMaxIdleConns(pgMaxIdleConns)
	db.SetConnMaxIdleTime(pgMaxIdleTime)
	if err := db.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("store: open postgres: %w", err), db.Close())
	}
	if err := migratePostgres(ctx, db, logger); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return &sqlStore{
		d:       postgresDialect(),
		read:    db,
		write:   db,
		log:     logger,
		now:     o.now,
		metrics: o.metrics,
	}, nil
}

func migratePostgres(ctx context.Context, db *sql.DB, logger *slog.Logger) error {
	var schema string
	if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("store: postgres current schema: %w", err)
	}
	if schema == "" {
		return fmt.Errorf("store: postgres: %w: no schema of the search_path exists", ErrInvalid)
	}
	h := fnv.New64a()
	h.Write([]byte("koel migrations " + schema))
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64() >> 1)))
	if err != nil {
		return fmt.Errorf("store: postgres migration lock: %w", err)
	}
	src, err := migrationsFS("postgres")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, src,
		goose.WithSessionLocker(locker), goose.WithSlog(logger.With("component", "migrations")))
	if err != nil {
		return fmt.Errorf("store: postgres migrations: %w", err)
	}
	return migrate(ctx, p, logger, "postgres")
}

func postgresDialect() *dialect {
	code := func(err error) string {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return pe.Code
		}
		return ""
	}
	return &dialect{
		name:               "postgres",
		dollarPlaceholders: true,
		skipLocked:         " FOR UPDATE SKIP LOCKED",
		isUnique:           func(err error) bool { return code(err) == pgUniqueViolation },
		isForeignKey:       func(err error) bool { return code(err) == pgForeignKeyViolation },
		syncIdentity: func(ctx context.Context, tx *sql.Tx, table string) error {
			// table is one of this package's constants, never input.
			_, err := tx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('`+table+`', 'id'),
				GREATEST((SELECT MAX(id) FROM `+table+`), 1))`)
			if err != nil {
				return fmt.Errorf("advance %s id sequence: %w", table, err)
			}
			return nil
		},
	}
}
