package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/ivr/store"
)

func TestFAQImportCommand(t *testing.T) {
	dataDir := t.TempDir()
	// A server start creates the demo business with its FAQ.
	srv, err := NewServer(context.Background(), testConfig(t, dataDir, "", ""), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	getenv := env(map[string]string{"KOEL_DATA_DIR": dataDir})
	nodes := func() []string {
		st, err := store.Open(context.Background(), "", dataDir, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ns, err := st.ListFAQ(context.Background(), demo.BusinessID, true)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, n := range ns {
			names = append(names, n.Name)
		}
		return names
	}
	before := nodes()
	if len(before) < 10 {
		t.Fatalf("demo FAQ has %d nodes", len(before))
	}

	bad := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(bad, []byte("node_name,user_says,bot_says\nok_node,hello,hi there\n,orphan,no name\ndup,a,b\ndup,c,d\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"faq", "import", bad, "--business", "1", "--quiet"}, &stdout, &stderr, getenv); code != 1 {
		t.Fatalf("bad import exit code = %d, want 1; stderr: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "bad.csv:3:") || !strings.Contains(stderr.String(), "bad.csv:5:") {
		t.Fatalf("bad rows not reported with line numbers:\n%s", stderr.String())
	}
	if after := nodes(); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("failed import changed the FAQ: %v -> %v", before, after)
	}

	good := filepath.Join(t.TempDir(), "good.csv")
	if err := os.WriteFile(good, []byte("node_name,user_says,bot_says\nopening_hours,when are you open,Nine to nine.\nnew_node,do you sell drones,Yes<m>In every store.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"faq", "import", good, "--business", "1"}, &stdout, &stderr, getenv); code != 0 {
		t.Fatalf("good import exit code = %d; stderr: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "imported 2 FAQ nodes into business 1") {
		t.Fatalf("stdout = %q", stdout.String())
	}
	if after := nodes(); strings.Join(after, ",") != "new_node,opening_hours" {
		t.Fatalf("active nodes after upsert = %v, want [new_node opening_hours]", after)
	}

	if code := run([]string{"faq", "import", good}, &stdout, &stderr, getenv); code != 2 {
		t.Fatalf("missing --business: exit %d, want 2", code)
	}
}

func TestRunUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(nil, &stdout, &stderr, env(nil)); code != 2 || !strings.Contains(stderr.String(), "usage:") {
		t.Fatalf("no args: code %d, stderr %q", code, stderr.String())
	}
	if code := run([]string{"bogus"}, &stdout, &stderr, env(nil)); code != 2 {
		t.Fatalf("unknown command: code %d", code)
	}
	stdout.Reset()
	if code := run([]string{"version"}, &stdout, &stderr, env(nil)); code != 0 || !strings.HasPrefix(stdout.String(), "koel ") {
		t.Fatalf("version: code %d, stdout %q", code, stdout.String())
	}
}
