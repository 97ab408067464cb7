package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
	"github.com/koelvoice/koel/ivr/store"
)

// seedDeadLetters stores n dead letters on connection 1 (and one pending
// item) in the SQLite store of dataDir and returns the dead ones' ids.
func seedDeadLetters(t *testing.T, dataDir string, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "", dataDir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var items []*ivr.OutboxItem
	for i := range n + 1 {
		items = append(items, &ivr.OutboxItem{ConnectionID: 1, Recipient: fmt.Sprint("u", i), IdempotencyKey: fmt.Sprint("cli-", i),
			URL: "https://hooks.example.com/in?token=s3cr3t", Body: []byte(`{}`)})
	}
	if err := st.AppendMessages(ctx, nil, items); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, it := range items[:n] {
		if err := st.MarkAttemptFailed(ctx, it.ID, "receiver answered 502", time.Now(), true); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, it.ID)
	}
	return ids
}

func TestOutboxCommand(t *testing.T) {
	dataDir := t.TempDir()
	ids := seedDeadLetters(t, dataDir, 3)
	getenv := env(map[string]string{"KOEL_DATA_DIR": dataDir})
	koel := func(want int, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut, getenv); code != want {
			t.Fatalf("koel %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out.String(), errOut.String())
		}
		return out.String() + errOut.String()
	}

	out := koel(0, "outbox", "list")
	if !strings.Contains(out, "receiver answered 502") || strings.Count(out, "\n") != 4 {
		t.Fatalf("list:\n%s", out)
	}
	var page outbox.DeadLetterPage
	if err := json.Unmarshal([]byte(koel(0, "outbox", "list", "--json", "--limit", "2")), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 || page.NextAfterID != ids[1] || page.Items[0].URL != "https://hooks.example.com/in?token=***" {
		t.Fatalf("json page %+v", page)
	}
	if out := koel(0, "outbox", "list", "--after", fmt.Sprint(ids[1])); !strings.Contains(out, fmt.Sprint(ids[2])) {
		t.Fatalf("second page:\n%s", out)
	}

	for _, bad := range [][]string{
		{"outbox"}, {"outbox", "resend"}, {"outbox", "purge"}, {"outbox", "redeliver", "--id", "x"},
		{"outbox", "list", "--limit", "0"}, {"outbox", "purge", "--id", "-3"}, {"outbox", "list", "extra"},
	} {
		koel(2, bad...)
	}

	if out := koel(0, "outbox", "redeliver", "--id", fmt.Sprintf("%d,%d", ids[0], ids[1])); !strings.Contains(out, "2 dead letters are pending again") {
		t.Fatalf("redeliver: %s", out)
	}
	if out := koel(0, "outbox", "purge", "--all"); !strings.Contains(out, "1 dead letters purged") {
		t.Fatalf("purge: %s", out)
	}
	if out := koel(0, "outbox", "list"); !strings.Contains(out, "no dead letters") {
		t.Fatalf("after purge: %s", out)
	}
}

func TestAdminAPIOnTheServer(t *testing.T) {
	dataDir := t.TempDir()
	cfg := testConfig(t, dataDir, "", "")
	cfg.AdminToken = "the-admin-token"
	srv := startServer(t, cfg)
	get := func(token string) int {
		req, err := http.NewRequest(http.MethodGet, srv.URL()+"/admin/v1/outbox/dead", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("the-admin-token"); code != http.StatusOK {
		t.Errorf("with the token: %d", code)
	}
	if code := get(testToken); code != http.StatusUnauthorized {
		t.Errorf("with a business token: %d, want 401", code)
	}
	if code := get(""); code != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", code)
	}

	off := startServer(t, testConfig(t, t.TempDir(), "", ""))
	resp, err := http.Get(off.URL() + "/admin/v1/outbox/dead")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("admin API without admin_token: %d, want 403", resp.StatusCode)
	}
}
