package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/ivr"
)

func openTestSQLite(t *testing.T) *sqlStore {
	t.Helper()
	s, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "t.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.(*sqlStore)
}

// TestSQLiteQueryPlans guards the hot-path queries against full table
// scans (a partial index is used only when the query implies its WHERE).
func TestSQLiteQueryPlans(t *testing.T) {
	s := openTestSQLite(t)
	tests := []struct {
		name  string
		query string
		args  []any
	}{
		{"message by external id", `SELECT ` + messageCols + ` FROM messages WHERE business_id = ? AND channel = ? AND external_id = ? AND external_id <> ''`, []any{1, "webhook", "x"}},
		{"user", `SELECT ` + userCols + ` FROM users WHERE business_id = ? AND channel = ? AND external_id = ?`, []any{1, "webhook", "x"}},
		{"open conversation", openConversationQuery, []any{1, 1}},
		{"conversation by no", `SELECT ` + conversationCols + ` FROM conversations WHERE user_id = ? AND conversation_no = ?`, []any{1, 1}},
		{"next conversation no", `SELECT COALESCE(MAX(conversation_no), 0) + 1 FROM conversations WHERE user_id = ?`, []any{1}},
		{"messages of conversation", `SELECT ` + messageCols + ` FROM messages WHERE conversation_id = ? AND id > ? ORDER BY id`, []any{1, 0}},
		{"connection", `SELECT ` + connectionCols + ` FROM connections WHERE channel = ? AND identifier = ?`, []any{"kookoo", "demo"}},
		{"turns", `SELECT ` + turnCols + ` FROM turns WHERE call_sid = ? ORDER BY seq, id`, []any{"s"}},
		{"due outbox", `SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?) ORDER BY id LIMIT ?`, []any{1, 1, 1}},
		{"outbox by status", `SELECT ` + outboxCols + ` FROM outbox WHERE status = ? ORDER BY id`, []any{"dead"}},
		{"faq", `SELECT ` + faqCols + ` FROM faq_nodes WHERE business_id = ? AND active ORDER BY name`, []any{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := s.read.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+tc.query, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			for _, step := range plan {
				if strings.HasPrefix(step, "SCAN ") && !strings.Contains(step, "USING") {
					t.Errorf("full scan: %q (plan %q)", step, plan)
				}
			}
		})
	}
}

func TestOpenSQLiteFromEmptyURL(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "nested", "data")
	s, err := Open(ctx, "", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := ivr.Business{Name: "kept"}
	if err := s.CreateBusiness(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, SQLiteFile)); err != nil {
		t.Fatal(err)
	}
	// Reopening applies no migration twice and keeps the data.
	s, err = Open(ctx, "", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.GetBusiness(ctx, b.ID)
	if err != nil || got.Name != "kept" {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
}

func TestOpenRejects(t *testing.T) {
	tests := []struct {
		name, url, dir string
	}{
		{"mysql URL", "mysql://root:hunter2@db/koel", "x"},
		{"not a URL", "hunter2", "x"},
		{"no data dir", "", ""},
		{"bad postgres URL", "postgres://koel:hunter2@[::1/koel", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(t.Context(), tc.url, tc.dir, nil)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error = %v, want ErrInvalid", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
	if _, err := OpenSQLite(t.Context(), "a?b", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("path with '?': %v", err)
	}
	if _, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "x.db"), nil, WithClock(nil)); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil clock: %v", err)
	}
}

// TestSQLiteTwoProcesses opens one database file twice, as a server and a
// CLI import would, and writes from both at once: busy_timeout and BEGIN
// IMMEDIATE make every write succeed.
func TestSQLiteTwoProcesses(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "shared.db")
	a, err := OpenSQLite(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenSQLite(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	biz := ivr.Business{Name: "shared"}
	if err := a.CreateBusiness(ctx, &biz); err != nil {
		t.Fatal(err)
	}
	const perStore = 200
	errs := make(chan error, 2)
	for _, s := range []Store{a, b} {
		go func() {
			for i := range perStore {
				u, err := s.EnsureUser(ctx, biz.ID, ivr.ChannelWebhook, string(rune('a'+i%26))+time.Now().String(), true)
				if err != nil {
					errs <- err
					return
				}
				if _, err := s.OpenConversation(ctx, biz.ID, u.ID); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent write from a second connection pool failed: %v", err)
		}
	}
}

func TestRebind(t *testing.T) {
	pg := postgresDialect()
	tests := []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = $1 AND b = $2"},
		{"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"},
	}
	for _, tc := range tests {
		if got := pg.rebind(tc.in); got != tc.want {
			t.Errorf("rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := sqliteDialect().rebind(tc.in); got != tc.in {
			t.Errorf("sqlite rebind changed %q to %q", tc.in, got)
		}
	}
}

func TestClean(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"ok", 10, "ok"},
		{"a\x00b", 10, "a\uFFFDb"},
		{"\xff", 10, "\uFFFD"},
		{"héllo", 2, "h"},
		{"héllo", 3, "hé"},
	}
	for _, tc := range tests {
		if got := clean(tc.in, tc.max); got != tc.want {
			t.Errorf("clean(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

// TestHotQueriesBindLimitThroughCast guards the store's polled queries
// against a bare "LIMIT ?": SQLite reads such a limit from the binding
// while planning and so prepares the cached statement again on every call
// (see limitParam).
func TestHotQueriesBindLimitThroughCast(t *testing.T) {
	for _, file := range []string{"chat.go", "outbox.go", "calls.go", "handoff.go", "report.go"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			if strings.Contains(line, "LIMIT ?") || strings.Contains(line, "OFFSET ?") {
				t.Errorf("%s:%d binds a bare LIMIT or OFFSET parameter; use limitParam: %s", file, i+1, strings.TrimSpace(line))
			}
		}
	}
}
