package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/koelvoice/koel/ivr"

	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

func TestPostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return storetest.NewPostgres(t) })
}

func TestPostgresClocked(t *testing.T) {
	storetest.RunClocked(t, func(t *testing.T, now func() time.Time) store.Store {
		return storetest.NewPostgres(t, store.WithClock(now))
	})
}

// TestPostgresTwoProcesses opens one schema twice at the same moment, as two
// koel nodes starting together would: migrations run once, and call locks
// and outbox claims hold across the two.
func TestPostgresTwoProcesses(t *testing.T) {
	u := storetest.PostgresURL(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	stores := make([]store.Store, 2)
	errs := make(chan error, 2)
	for i := range stores {
		go func() {
			var err error
			stores[i], err = store.OpenPostgres(ctx, u, nil)
			errs <- err
		}()
	}
	for range stores {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	a, b := stores[0], stores[1]
	defer a.Close()
	defer b.Close()

	if err := a.AcquireCallLock(ctx, "sid-1", "node-a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := b.AcquireCallLock(ctx, "sid-1", "node-b", time.Minute); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second node took a held lock: %v", err)
	}
	if err := a.ReleaseCallLock(ctx, "sid-1", "node-a"); err != nil {
		t.Fatal(err)
	}
	if err := b.AcquireCallLock(ctx, "sid-1", "node-b", time.Minute); err != nil {
		t.Fatalf("lock after release: %v", err)
	}

	now := time.Now()
	items := make([]*ivr.OutboxItem, 40)
	for i := range items {
		items[i] = &ivr.OutboxItem{IdempotencyKey: fmt.Sprint("k", i), Recipient: fmt.Sprint("r", i), URL: "https://x/", NextAttemptAt: now}
	}
	if err := a.AppendMessages(ctx, nil, items); err != nil {
		t.Fatal(err)
	}
	claimed := make([][]ivr.OutboxItem, 2)
	for i, s := range stores {
		go func() {
			var err error
			for {
				var got []ivr.OutboxItem
				if got, err = s.ClaimOutbox(ctx, now, 4, time.Minute); err != nil || len(got) == 0 {
					break
				}
				claimed[i] = append(claimed[i], got...)
			}
			errs <- err
		}()
	}
	for range stores {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int64]bool{}
	for _, l := range claimed {
		for _, it := range l {
			if seen[it.ID] {
				t.Errorf("item %d claimed by both nodes", it.ID)
			}
			seen[it.ID] = true
		}
	}
	if len(seen) != len(items) {
		t.Errorf("claimed %d items, want %d", len(seen), len(items))
	}
}
