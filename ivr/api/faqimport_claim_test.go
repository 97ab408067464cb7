package api_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// twoNodeStores opens one database twice, as two koel nodes do.
func twoNodeStores(t *testing.T, backend string, opts ...store.Option) (store.Store, store.Store) {
	t.Helper()
	ctx := context.Background()
	var open func() (store.Store, error)
	switch backend {
	case "sqlite":
		path := filepath.Join(t.TempDir(), store.SQLiteFile)
		open = func() (store.Store, error) { return store.OpenSQLite(ctx, path, nil, opts...) }
	default:
		u := storetest.PostgresURL(t)
		open = func() (store.Store, error) { return store.OpenPostgres(ctx, u, nil, opts...) }
	}
	var out [2]store.Store
	for i := range out {
		s, err := open()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		out[i] = s
	}
	return out[0], out[1]
}

// countingStore counts the imports it applies, by business.
type countingStore struct {
	store.Store
	mu      *sync.Mutex
	applied map[int64]int
}

func (s *countingStore) ReplaceFAQ(ctx context.Context, businessID int64, nodes []ivr.FAQNode) (int64, error) {
	v, err := s.Store.ReplaceFAQ(ctx, businessID, nodes)
	if err == nil {
		s.mu.Lock()
		s.applied[businessID]++
		s.mu.Unlock()
	}
	return v, err
}

// TestFAQImportTwoNodesRace: two workers on two store handles of one
// database (two koel nodes) drain the same queue of imports; every import
// is applied exactly once (FAQVersion 1 for each business, one
// ReplaceFAQ in all).
func TestFAQImportTwoNodesRace(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			st1, st2 := twoNodeStores(t, backend)
			const n = 16
			for i := int64(1); i <= n; i++ {
				b := &ivr.Business{ID: i, Name: fmt.Sprintf("biz%d", i), TokenHash: ivr.HashToken(fmt.Sprint("t", i)), ClientID: fmt.Sprint("c", i), Active: true}
				if err := st1.CreateBusiness(ctx, b); err != nil {
					t.Fatal(err)
				}
				task := &ivr.Task{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), BusinessID: i, Kind: api.FAQImportKind}
				if err := st1.CreateTaskWithInput(ctx, task, []byte(largeFAQ(200))); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			applied := map[int64]int{}
			runCtx, cancel := context.WithCancel(ctx)
			var wg sync.WaitGroup
			for i, st := range []store.Store{st1, st2} {
				w := &api.FAQImport{Store: &countingStore{Store: st, mu: &mu, applied: applied}, WorkerID: fmt.Sprintf("node-%d", i+1)}
				wg.Add(1)
				go func() { defer wg.Done(); _ = w.Run(runCtx) }()
			}
			deadline := time.Now().Add(2 * time.Minute)
			for {
				open, err := st1.ListTasks(ctx, api.FAQImportKind, []ivr.TaskStatus{ivr.TaskPending, ivr.TaskRunning})
				if err != nil {
					t.Fatal(err)
				}
				if len(open) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d tasks still open", len(open))
				}
				time.Sleep(5 * time.Millisecond) // polling with a deadline
			}
			cancel()
			wg.Wait()
			for i := int64(1); i <= n; i++ {
				mu.Lock()
				got := applied[i]
				mu.Unlock()
				if got != 1 {
					t.Errorf("business %d: import applied %d times, want 1", i, got)
				}
				if v := faqVersion(t, st1, i); v != 1 {
					t.Errorf("business %d: FAQVersion %d, want 1", i, v)
				}
			}
		})
	}
}

// TestClaimTask: concurrent claims of one task give it to exactly one
// worker; the lease keeps it from others until it is released or runs
// out; a worker that lost its lease cannot extend it.
func TestClaimTask(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			var now atomic.Int64
			now.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixMicro())
			clock := func() time.Time { return time.UnixMicro(now.Load()).UTC() }
			st1, st2 := twoNodeStores(t, backend, store.WithClock(clock))
			if err := st1.CreateBusiness(ctx, &ivr.Business{ID: 1, Name: "a", TokenHash: ivr.HashToken("t"), ClientID: "c", Active: true}); err != nil {
				t.Fatal(err)
			}
			task := &ivr.Task{ID: "00000000-0000-4000-8000-000000000001", BusinessID: 1, Kind: api.FAQImportKind}
			if err := st1.CreateTaskWithInput(ctx, task, []byte(twoNodes)); err != nil {
				t.Fatal(err)
			}
			other := &ivr.Task{ID: "00000000-0000-4000-8000-000000000002", BusinessID: 1, Kind: "other"}
			if err := st1.CreateTask(ctx, other); err != nil {
				t.Fatal(err)
			}

			const claimers = 8
			var wins atomic.Int32
			var winner atomic.Value
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make(chan error, claimers)
			for i := 0; i < claimers; i++ {
				st := []store.Store{st1, st2}[i%2]
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					id := fmt.Sprintf("w%d", i)
					got, err := st.ClaimTask(ctx, api.FAQImportKind, id, time.Minute)
					switch {
					case errors.Is(err, ivr.ErrNotFound):
					case err != nil:
						errs <- err
					default:
						if got.ID != task.ID || got.Status != ivr.TaskRunning {
							errs <- fmt.Errorf("claimed %+v", got)
						}
						wins.Add(1)
						winner.Store(id)
					}
				}()
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if w := wins.Load(); w != 1 {
				t.Fatalf("%d workers claimed the task, want 1", w)
			}
			holder := winner.Load().(string)

			if _, err := st2.ClaimTask(ctx, api.FAQImportKind, "late", time.Minute); !errors.Is(err, ivr.ErrNotFound) {
				t.Fatalf("claim of a leased task = %v, want ErrNotFound", err)
			}
			if err := st2.ExtendTaskLease(ctx, task.ID, "late", time.Minute); !errors.Is(err, ivr.ErrNotFound) {
				t.Fatalf("extend by a non-holder = %v, want ErrNotFound", err)
			}
			if err := st1.ExtendTaskLease(ctx, task.ID, holder, time.Minute); err != nil {
				t.Fatalf("extend by the holder: %v", err)
			}
			// Released (a shutdown): claimable at once.
			if err := st1.ReleaseTask(ctx, task.ID, holder); err != nil {
				t.Fatal(err)
			}
			got, err := st2.ClaimTask(ctx, api.FAQImportKind, "second", time.Minute)
			if err != nil || got.ID != task.ID {
				t.Fatalf("claim after release = %+v, %v", got, err)
			}
			// The holder died: its lease runs out and another takes over,
			// after which the old holder cannot extend it.
			now.Add((time.Minute + time.Microsecond).Microseconds())
			if got, err := st1.ClaimTask(ctx, api.FAQImportKind, "third", time.Minute); err != nil || got.ID != task.ID {
				t.Fatalf("claim after the lease ran out = %+v, %v", got, err)
			}
			if err := st2.ExtendTaskLease(ctx, task.ID, "second", time.Minute); !errors.Is(err, ivr.ErrNotFound) {
				t.Fatalf("extend after takeover = %v, want ErrNotFound", err)
			}
			// Finished tasks are never claimed.
			done, err := st1.GetTask(ctx, task.ID)
			if err != nil {
				t.Fatal(err)
			}
			done.Status = ivr.TaskComplete
			if err := st1.FinishTask(ctx, done); err != nil {
				t.Fatal(err)
			}
			now.Add((time.Hour).Microseconds())
			if _, err := st2.ClaimTask(ctx, api.FAQImportKind, "fourth", time.Minute); !errors.Is(err, ivr.ErrNotFound) {
				t.Fatalf("claim of a finished task = %v, want ErrNotFound", err)
			}
			if _, err := st2.ClaimTask(ctx, api.FAQImportKind, "", time.Minute); !errors.Is(err, ivr.ErrInvalid) {
				t.Fatalf("claim without a worker id = %v, want ErrInvalid", err)
			}
		})
	}
}
