package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// sqlStore is the [Store] implementation shared by SQLite and PostgreSQL:
// the same queries over database/sql, with what differs in its dialect.
type sqlStore struct {
	d *dialect
	// read serves reads outside transactions; write serves transactions and
	// single-statement writes. On SQLite write is one connection (the single
	// writer) and read a pool of query-only connections; on PostgreSQL both
	// are the same pool.
	read, write *sql.DB
	// prepare keeps prepared statements per pool and query (SQLite, where
	// preparing costs more than running a small statement). PostgreSQL's
	// driver caches prepared statements per connection itself.
	prepare bool
	stmts   sync.Map // stmtKey → *sql.Stmt
	log     *slog.Logger
	now     func() time.Time
	// metrics records transactions and lease conflicts; nil records nothing.
	metrics *storeMetrics

	// stopBackground stops goroutines the store runs (SQLite's
	// checkpointer); nil when there are none.
	stopBackground func() error

	closeOnce sync.Once
	closeErr  error

	// afterFAQChunk, set by tests, runs after each committed chunk of an
	// FAQ import.
	afterFAQChunk func()
}

type stmtKey struct {
	db *sql.DB
	q  string
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// errRow is a row whose Scan reports err (a statement that failed to
// prepare).
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// conn runs statements on a pool or inside a transaction on it.
type conn struct {
	s  *sqlStore
	db *sql.DB
	tx *sql.Tx
	// misses collects queries a transaction prepared for itself because
	// they were not cached yet; they are cached once the transaction has
	// released its connection (the SQLite writer has only one).
	misses *[]string
	// local holds the statements a transaction prepared for itself, so a
	// query run many times in one transaction (an FAQ import's inserts) is
	// prepared once.
	local map[string]*sql.Stmt
}

func (s *sqlStore) reader() conn { return conn{s: s, db: s.read} }
func (s *sqlStore) writer() conn { return conn{s: s, db: s.write} }

// stmt returns the prepared statement for the rebound query q, bound to the
// transaction when there is one.
func (c conn) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	key := stmtKey{c.db, q}
	v, ok := c.s.stmts.Load(key)
	if !ok && c.tx != nil {
		if st, ok := c.local[q]; ok {
			return st, nil
		}
		st, err := c.tx.PrepareContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		*c.misses = append(*c.misses, q)
		if c.local != nil {
			c.local[q] = st
		}
		return st, nil
	}
	if !ok {
		st, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		var loaded bool
		if v, loaded = c.s.stmts.LoadOrStore(key, st); loaded {
			_ = st.Close()
		}
	}
	st := v.(*sql.Stmt)
	if c.tx != nil {
		return c.tx.StmtContext(ctx, st), nil
	}
	return st, nil
}

func (c conn) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	q = c.s.d.rebind(q)
	if c.s.prepare {
		st, err := c.stmt(ctx, q)
		if err != nil {
			return nil, err
		}
		return st.ExecContext(ctx, args...)
	}
	if c.tx != nil {
		return c.tx.ExecContext(ctx, q, args...)
	}
	return c.db.ExecContext(ctx, q, args...)
}

func (c conn) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	q = c.s.d.rebind(q)
	if c.s.prepare {
		st, err := c.stmt(ctx, q)
		if err != nil {
			return nil, err
		}
		return st.QueryContext(ctx, args...)
	}
	if c.tx != nil {
		return c.tx.QueryContext(ctx, q, args...)
	}
	return c.db.QueryContext(ctx, q, args...)
}

func (c conn) row(ctx context.Context, q string, args ...any) rowScanner {
	q = c.s.d.rebind(q)
	if c.s.prepare {
		st, err := c.stmt(ctx, q)
		if err != nil {
			return errRow{err}
		}
		return st.QueryRowContext(ctx, args...)
	}
	if c.tx != nil {
		return c.tx.QueryRowContext(ctx, q, args...)
	}
	return c.db.QueryRowContext(ctx, q, args...)
}

// fail wraps err with the operation and maps driver errors to the package's
// sentinel errors.
func (s *sqlStore) fail(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict), errors.Is(err, ErrInvalid),
		errors.Is(err, ErrVersionConflict), errors.Is(err, ErrLocked):
		return fmt.Errorf("%s: %w", op, err)
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	case s.d.isUnique(err):
		return fmt.Errorf("%s: %w: %w", op, ErrConflict, err)
	case s.d.isForeignKey(err):
		return fmt.Errorf("%s: %w: a referenced row does not exist: %w", op, ErrNotFound, err)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}

// inTx runs fn in a transaction on the writer and commits; when fn fails
// the transaction is rolled back and fn's error returned, wrapped with op.
func (s *sqlStore) inTx(ctx context.Context, op string, fn func(c conn) error) (err error) {
	if s.metrics != nil {
		start := time.Now()
		defer func() { s.metrics.transaction(op, err == nil, time.Since(start)) }()
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(op+": begin", err)
	}
	var misses []string
	if s.prepare {
		defer func() {
			for _, q := range misses {
				if _, err := s.writer().stmt(ctx, q); err != nil {
					s.log.DebugContext(ctx, "store: caching statement failed", "error", err)
				}
			}
		}()
	}
	if err := fn(conn{s: s, db: s.write, tx: tx, misses: &misses, local: map[string]*sql.Stmt{}}); err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			s.log.WarnContext(ctx, "store: rollback failed", "op", op, "error", rerr)
		}
		return s.fail(op, err)
	}
	if err := tx.Commit(); err != nil {
		return s.fail(op+": commit", err)
	}
	return nil
}

// unstorableKey reports whether a query argument is a string no row can
// hold (invalid UTF-8 or a NUL byte; writes refuse those with ErrInvalid).
// PostgreSQL fails such a query with an encoding error, SQLite runs it: a
// lookup by such a key is answered "not found" on both, without asking.
func unstorableKey(args []any) bool {
	for _, a := range args {
		if s, ok := a.(string); ok && (!utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0) {
			return true
		}
	}
	return false
}

// getRow runs a single-row query and scans it.
func getRow[T any](ctx context.Context, s *sqlStore, c conn, op string, scan func(rowScanner) (T, error), q string, args ...any) (T, error) {
	if unstorableKey(args) {
		var zero T
		return zero, fmt.Errorf("%s: %w: the key cannot be stored", op, ErrNotFound)
	}
	v, err := scan(c.row(ctx, q, args...))
	if err != nil {
		var zero T
		return zero, s.fail(op, err)
	}
	return v, nil
}

// listRows runs a query and scans every row.
func listRows[T any](ctx context.Context, s *sqlStore, c conn, op string, scan func(rowScanner) (T, error), q string, args ...any) ([]T, error) {
	if unstorableKey(args) {
		return nil, nil
	}
	rows, err := c.query(ctx, q, args...)
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, s.fail(op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// affected returns the rows a statement changed.
func affected(res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("rows affected: %w", err)
	}
	return n, nil
}

// clock returns the current time as it will read back from the store.
func (s *sqlStore) clock() time.Time { return storedTime(s.now()) }

// Ping implements [Store].
func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.write.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.d.name, err)
	}
	if s.read != s.write {
		if err := s.read.PingContext(ctx); err != nil {
			return fmt.Errorf("ping %s readers: %w", s.d.name, err)
		}
	}
	return nil
}

// Close implements [Store]. It is safe to call more than once.
func (s *sqlStore) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.stopBackground != nil {
			errs = append(errs, s.stopBackground())
		}
		s.stmts.Range(func(k, v any) bool {
			if err := v.(*sql.Stmt).Close(); err != nil {
				errs = append(errs, err)
			}
			s.stmts.Delete(k)
			return true
		})
		if s.read != s.write {
			errs = append(errs, s.read.Close())
		}
		errs = append(errs, s.write.Close())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("close %s: %w", s.d.name, err)
		}
	})
	return s.closeErr
}
