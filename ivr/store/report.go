package store

import (
	"context"
	"time"

	"github.com/koelvoice/koel/ivr"
)

// ListTurnsSince implements [Store]: the newest turns first, at most limit;
// a zero since reads from the first turn.
func (s *sqlStore) ListTurnsSince(ctx context.Context, since time.Time, limit int) ([]ivr.Turn, error) {
	if limit <= 0 {
		return nil, nil
	}
	if since.IsZero() { // the zero time means from the start
		since = time.Unix(0, 0)
	}
	return listRows(ctx, s, s.reader(), "list turns since", scanTurn,
		`SELECT `+turnCols+` FROM turns WHERE created_at >= ? ORDER BY created_at DESC, id DESC LIMIT `+limitParam, timeValue(since), limit)
}
