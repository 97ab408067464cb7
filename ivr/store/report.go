package store

import (
	"context"
	"time"

	"github.com/koelvoice/koel/ivr"
)

// ListTurnsSince implements [Store]: the newest turns first, at most limit.
func (s *sqlStore) ListTurnsSince(ctx context.Context, since time.Time, limit int) ([]ivr.Turn, error) {
	if limit <= 0 {
		return nil, nil
	}
	return listRows(ctx, s, s.reader(), "list turns since", scanTurn,
		`SELECT `+turnCols+` FROM turns WHERE created_at >= ? ORDER BY created_at DESC, id DESC LIMIT ?`, timeValue(since), limit)
}
