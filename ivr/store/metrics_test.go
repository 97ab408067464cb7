package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// TestStoreMetrics drives real transactions and a contended call lock on
// both backends and reads the store's collectors: transactions are timed
// by kind and result, and lease conflicts are counted on PostgreSQL only.
func TestStoreMetrics(t *testing.T) {
	for _, tc := range []struct {
		name          string
		open          func(t testing.TB, opts ...store.Option) store.Store
		wantConflicts float64
	}{
		{"sqlite", storetest.NewSQLite, 0},
		{"postgres", storetest.NewPostgres, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			st := tc.open(t, store.WithMetrics(reg))
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if err := st.CreateBusiness(ctx, &ivr.Business{Name: "metrics"}); err != nil {
				t.Fatal(err)
			}
			if err := st.AcquireCallLock(ctx, "sid-m", "node-a", time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := st.AcquireCallLock(ctx, "sid-m", "node-b", time.Minute); !errors.Is(err, store.ErrLocked) {
				t.Fatalf("second owner took a held lock: %v", err)
			}
			if got := testutil.ToFloat64(mustCounter(t, reg, "koel_store_lease_conflicts_total")); got != tc.wantConflicts {
				t.Errorf("lease conflicts = %v, want %v", got, tc.wantConflicts)
			}
			if n := histogramCount(t, reg, "koel_store_transaction_seconds", map[string]string{"kind": "create", "result": "commit"}); n < 1 {
				t.Errorf("create/commit transactions observed = %d, want at least 1", n)
			}
			if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
				t.Errorf("lint: %v %v", err, problems)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			// A second store on the same registry is refused with a clear error.
			if _, err := store.OpenSQLite(ctx, t.TempDir()+"/x.db", nil, store.WithMetrics(reg)); err == nil {
				t.Error("second store registered its metrics on the same registry")
			}
		})
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: "copy"})
			if v := mf.GetMetric()[0].GetCounter().GetValue(); v > 0 {
				c.Add(v)
			}
			return c
		}
	}
	t.Fatalf("%s not registered", name)
	return nil
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return m.GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("%s%v not found", name, labels)
	return 0
}
