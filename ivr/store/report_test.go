package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// TestListTurnsSince: koel report's read returns the turns stored at or
// after the cut, newest first, capped by limit; on both backends.
func TestListTurnsSince(t *testing.T) {
	for name, open := range map[string]func(testing.TB, ...store.Option) store.Store{
		"sqlite": storetest.NewSQLite, "postgres": storetest.NewPostgres,
	} {
		t.Run(name, func(t *testing.T) {
			clock := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
			st := open(t, store.WithClock(func() time.Time { return clock }))
			ctx := context.Background()
			if err := st.CreateCall(ctx, &ivr.Call{SID: "r1"}); err != nil {
				t.Fatal(err)
			}
			for seq, band := range []string{"answered", "reprompt", "menu", "failed"} {
				clock = clock.Add(10 * time.Minute)
				if err := st.AddTurn(ctx, &ivr.Turn{CallSID: "r1", Seq: seq + 1, Understanding: band, TotalMS: int64(100 * (seq + 1))}); err != nil {
					t.Fatal(err)
				}
			}
			// Turns at 10:10, 10:20, 10:30, 10:40.
			got, err := st.ListTurnsSince(ctx, time.Date(2026, 12, 2, 10, 20, 0, 0, time.UTC), 10)
			if err != nil {
				t.Fatal(err)
			}
			var bands []string
			for _, tr := range got {
				bands = append(bands, tr.Understanding)
			}
			if len(got) != 3 || bands[0] != "failed" || bands[2] != "reprompt" || got[0].TotalMS != 400 {
				t.Fatalf("turns since 10:20 = %v", bands)
			}
			if got, err := st.ListTurnsSince(ctx, time.Time{}, 2); err != nil || len(got) != 2 {
				t.Fatalf("limit 2: %d %v", len(got), err)
			}
			if got, err := st.ListTurnsSince(ctx, time.Time{}, 0); err != nil || len(got) != 0 {
				t.Fatalf("limit 0: %d %v", len(got), err)
			}
		})
	}
}
