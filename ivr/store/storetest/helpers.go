// Package storetest holds the behaviour suite every [store.Store]
// implementation must pass, and helpers that give other packages' tests a
// real, isolated store: [NewSQLite] (a temporary file) and [NewPostgres] (a
// fresh schema in the database named by KOEL_TEST_DATABASE_URL).
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/koelvoice/koel/ivr/store"
)

// EnvPostgresURL names the environment variable holding the PostgreSQL URL
// tests use, e.g. postgres://koel:koel@127.0.0.1:5432/koel_test?sslmode=disable.
// The role needs the right to create schemas in that database.
const EnvPostgresURL = "KOEL_TEST_DATABASE_URL"

const skipPostgres = "PostgreSQL tests skipped: KOEL_TEST_DATABASE_URL is not set (make test starts a local PostgreSQL and sets it)"

// setupTimeout bounds schema creation and store opening in tests.
const setupTimeout = time.Minute

// NewSQLite opens a SQLite store in a fresh temporary directory; it is
// closed when the test ends.
func NewSQLite(t testing.TB, opts ...store.Option) store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	s, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), store.SQLiteFile), nil, opts...)
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close sqlite store: %v", err)
		}
	})
	return s
}

// NewPostgres opens a PostgreSQL store on a fresh schema of the database
// named by KOEL_TEST_DATABASE_URL; the store is closed and the schema
// dropped when the test ends. The test is skipped when the variable is
// unset.
func NewPostgres(t testing.TB, opts ...store.Option) store.Store {
	t.Helper()
	u := PostgresURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	s, err := store.OpenPostgres(ctx, u, nil, opts...)
	if err != nil {
		t.Fatalf("open postgres store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close postgres store: %v", err)
		}
	})
	return s
}

// PostgresURL creates a fresh, uniquely named schema in the database named
// by KOEL_TEST_DATABASE_URL and returns a URL whose search_path selects it,
// for tests that open the database more than once (two koel processes).
// The schema is dropped when the test ends; the test is skipped when the
// variable is unset.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgresURL)
	if base == "" {
		t.Skip(skipPostgres)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random schema name: %v", err)
	}
	schema := "koel_test_" + hex.EncodeToString(b[:])
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s is not a URL", EnvPostgresURL)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()

	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := adminExec(ctx, base, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if err := adminExec(ctx, base, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop test schema: %v", err)
		}
	})
	return u.String()
}

// adminExec runs one statement on a short-lived connection.
func adminExec(ctx context.Context, databaseURL, stmt string) error {
	c, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	_, err = c.Exec(ctx, stmt)
	return err
}
