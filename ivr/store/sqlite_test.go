package store_test

import (
	"testing"
	"time"

	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return storetest.NewSQLite(t) })
}

func TestSQLiteClocked(t *testing.T) {
	storetest.RunClocked(t, func(t *testing.T, now func() time.Time) store.Store {
		return storetest.NewSQLite(t, store.WithClock(now))
	})
}
