package grafana

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestCommittedDashboardsAreGenerated regenerates every dashboard and
// compares it with the file operators mount: `go generate ./grafana` after
// changing a dashboard, or this fails.
func TestCommittedDashboardsAreGenerated(t *testing.T) {
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range files {
		want = append(want, f.Name)
		got, err := os.ReadFile(filepath.Join("dashboards", f.Name))
		if err != nil {
			t.Fatalf("%v (run go generate ./grafana)", err)
		}
		if !bytes.Equal(got, f.JSON) {
			t.Errorf("dashboards/%s differs from what the code generates; run go generate ./grafana", f.Name)
		}
	}
	committed, err := filepath.Glob(filepath.Join("dashboards", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, c := range committed {
		have = append(have, filepath.Base(c))
	}
	sort.Strings(have)
	if strings.Join(have, ",") != strings.Join(want, ",") {
		t.Errorf("dashboards/ holds %v, the code generates %v", have, want)
	}
	// Generating is deterministic.
	again, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	for i := range files {
		if !bytes.Equal(files[i].JSON, again[i].JSON) {
			t.Errorf("%s: two generations differ", files[i].Name)
		}
	}
}

// metricName finds the metric names a PromQL expression reads.
var metricName = regexp.MustCompile(`\b(koel_[a-z_]+|up)\b`)

// TestDashboardsAreWellFormed parses every generated dashboard as Grafana
// would read it: unique uids and panel ids, every query on the provisioned
// datasource, reading only koel's metrics.
func TestDashboardsAreWellFormed(t *testing.T) {
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Fatalf("%d dashboards, want calls, voice latency, understanding, channels", len(files))
	}
	uids := map[string]bool{}
	for _, f := range files {
		var d struct {
			UID    string `json:"uid"`
			Title  string `json:"title"`
			Panels []struct {
				ID         int    `json:"id"`
				Type       string `json:"type"`
				Title      string `json:"title"`
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
				Targets []struct {
					Expr       string `json:"expr"`
					RefID      string `json:"refId"`
					Datasource struct {
						UID string `json:"uid"`
					} `json:"datasource"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(f.JSON, &d); err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if d.UID == "" || uids[d.UID] || !strings.HasPrefix(d.Title, "koel / ") {
			t.Errorf("%s: uid %q title %q", f.Name, d.UID, d.Title)
		}
		uids[d.UID] = true
		ids := map[int]bool{}
		queries := 0
		for _, p := range d.Panels {
			if ids[p.ID] || p.ID == 0 {
				t.Errorf("%s: panel %q id %d repeated or unset", f.Name, p.Title, p.ID)
			}
			ids[p.ID] = true
			if p.Type == "row" {
				continue
			}
			if p.Datasource.UID != DatasourceUID || len(p.Targets) == 0 {
				t.Errorf("%s: panel %q datasource %q, %d queries", f.Name, p.Title, p.Datasource.UID, len(p.Targets))
			}
			for _, q := range p.Targets {
				queries++
				if q.Datasource.UID != DatasourceUID || q.RefID == "" {
					t.Errorf("%s: panel %q query %q datasource %q refId %q", f.Name, p.Title, q.Expr, q.Datasource.UID, q.RefID)
				}
				if !metricName.MatchString(q.Expr) {
					t.Errorf("%s: panel %q query %q reads no koel metric", f.Name, p.Title, q.Expr)
				}
			}
		}
		if queries < 5 {
			t.Errorf("%s: %d queries", f.Name, queries)
		}
	}
}
