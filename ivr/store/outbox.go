package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/koelvoice/koel/ivr"
)

// The delivery outbox.

const outboxCols = `id, connection_id, channel, recipient, idempotency_key, url, body, content_type, status, attempts, max_attempts,
	next_attempt_at, lease_until, retry_from, last_error, created_at, delivered_at`

func scanOutbox(r rowScanner) (ivr.OutboxItem, error) {
	var o ivr.OutboxItem
	err := r.Scan(&o.ID, &o.ConnectionID, &o.Channel, &o.Recipient, &o.IdempotencyKey, &o.URL, bytesCol{&o.Body}, &o.ContentType, &o.Status,
		&o.Attempts, &o.MaxAttempts, timeCol{&o.NextAttemptAt}, timeCol{&o.LeaseUntil}, timeCol{&o.RetryFrom}, &o.LastError,
		timeCol{&o.CreatedAt}, timeCol{&o.DeliveredAt})
	return o, err
}

func validateOutbox(i int, o *ivr.OutboxItem) error {
	if o == nil {
		return fmt.Errorf("%w: outbox item %d is nil", ErrInvalid, i)
	}
	var v validator
	v.key("idempotency key", o.IdempotencyKey)
	v.text("channel", string(o.Channel), MaxKeyBytes)
	v.text("recipient", o.Recipient, MaxKeyBytes)
	v.text("url", o.URL, MaxURLBytes)
	v.text("content type", o.ContentType, MaxKeyBytes)
	v.text("last error", o.LastError, MaxTextBytes)
	if len(o.Body) > MaxBodyBytes {
		v.fail("body is %d bytes (limit %d)", len(o.Body), MaxBodyBytes)
	}
	switch o.Status {
	case "", ivr.OutboxPending, ivr.OutboxDelivered, ivr.OutboxDead:
	default:
		v.fail("unknown status %.32q", o.Status)
	}
	if o.Attempts < 0 || o.MaxAttempts < 0 {
		v.fail("attempts must not be negative")
	}
	if v.err != nil {
		return fmt.Errorf("outbox item %d: %w", i, v.err)
	}
	return nil
}

func validateOutboxItems(nMsgs int, outbox []*ivr.OutboxItem) error {
	if n := nMsgs + len(outbox); n > MaxBatch {
		return fmt.Errorf("%w: %d messages and outbox items (limit %d)", ErrInvalid, n, MaxBatch)
	}
	for i, o := range outbox {
		if err := validateOutbox(i, o); err != nil {
			return err
		}
	}
	return nil
}

// insertOutbox inserts the items in the caller's transaction and returns
// their ids. An empty Channel is stored as the webhook channel, an empty
// Status as pending, a zero NextAttemptAt and RetryFrom as now.
func insertOutbox(ctx context.Context, c conn, now time.Time, outbox []*ivr.OutboxItem) ([]int64, error) {
	ids := make([]int64, len(outbox))
	for i, o := range outbox {
		status, next, from := o.Status, storedTime(o.NextAttemptAt), storedTime(o.RetryFrom)
		if status == "" {
			status = ivr.OutboxPending
		}
		if next.IsZero() {
			next = now
		}
		if from.IsZero() {
			from = now
		}
		if err := c.row(ctx, `INSERT INTO outbox (connection_id, channel, recipient, idempotency_key, url, body, content_type, status, attempts, max_attempts, next_attempt_at, retry_from, last_error, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			o.ConnectionID, string(outboxChannel(o.Channel)), o.Recipient, o.IdempotencyKey, o.URL, bytesValue(o.Body), o.ContentType, string(status),
			o.Attempts, o.MaxAttempts, timeValue(next), timeValue(from), o.LastError, timeValue(now)).Scan(&ids[i]); err != nil {
			return nil, fmt.Errorf("outbox item %d: %w", i, err)
		}
	}
	return ids, nil
}

// insertedOutbox sets on the items what insertOutbox stored.
func insertedOutbox(outbox []*ivr.OutboxItem, ids []int64, now time.Time) {
	for i, o := range outbox {
		o.ID, o.CreatedAt = ids[i], now
		o.Channel = outboxChannel(o.Channel)
		if o.Status == "" {
			o.Status = ivr.OutboxPending
		}
		if o.NextAttemptAt.IsZero() {
			o.NextAttemptAt = now
		} else {
			o.NextAttemptAt = storedTime(o.NextAttemptAt)
		}
		if o.RetryFrom.IsZero() {
			o.RetryFrom = now
		} else {
			o.RetryFrom = storedTime(o.RetryFrom)
		}
		o.LeaseUntil, o.DeliveredAt = time.Time{}, time.Time{}
	}
}

func outboxChannel(ch ivr.Channel) ivr.Channel {
	if ch == "" {
		return ivr.ChannelWebhook
	}
	return ch
}

// placeholders returns "?, ?, ?" for n values.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return "?" + strings.Repeat(", ?", n-1)
}

// distinctIDs returns ids without repeats, in first-seen order.
func distinctIDs(ids []int64) []int64 {
	seen := make(map[int64]struct{}, len(ids))
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	return out
}

func int64Args(ids []int64) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// ClaimOutbox implements [Store]. An item is claimable when it is pending,
// due and not leased, its connection is not among skipConnections, and no
// earlier pending item of its conversation (same connection and recipient)
// is waiting for a retry or leased by someone: so one conversation's items
// are handed out in id order and a failed item holds back the ones after
// it. On PostgreSQL the candidate rows are locked with FOR UPDATE SKIP
// LOCKED, so concurrent claimers split the due items between them; on
// SQLite the single writer serializes claimers.
func (s *sqlStore) ClaimOutbox(ctx context.Context, now time.Time, limit int, lease time.Duration, skipConnections ...int64) ([]ivr.OutboxItem, error) {
	const op = "claim outbox"
	switch {
	case limit <= 0 || limit > MaxBatch:
		return nil, fmt.Errorf("%s: %w: limit %d is outside 1..%d", op, ErrInvalid, limit, MaxBatch)
	case lease <= 0:
		return nil, fmt.Errorf("%s: %w: lease %v is not positive", op, ErrInvalid, lease)
	case len(skipConnections) > MaxBatch:
		return nil, fmt.Errorf("%s: %w: %d skipped connections (limit %d)", op, ErrInvalid, len(skipConnections), MaxBatch)
	}
	at := now.UnixMicro()
	args := []any{now.Add(lease).UnixMicro(), at, at}
	skip := ""
	if len(skipConnections) > 0 {
		skipConnections = distinctIDs(skipConnections)
		skip = ` AND o.connection_id NOT IN (` + placeholders(len(skipConnections)) + `)`
		args = append(args, int64Args(skipConnections)...)
	}
	args = append(args, at, at, limit)
	items, err := listRows(ctx, s, s.writer(), op, scanOutbox,
		`UPDATE outbox SET lease_until = ? WHERE id IN (
			SELECT o.id FROM outbox o
			WHERE o.status = 'pending' AND o.next_attempt_at <= ? AND (o.lease_until IS NULL OR o.lease_until <= ?)`+skip+`
			AND NOT EXISTS (SELECT 1 FROM outbox p
				WHERE p.status = 'pending' AND p.connection_id = o.connection_id AND p.recipient = o.recipient AND p.id < o.id
				AND (p.next_attempt_at > ? OR p.lease_until > ?))
			ORDER BY o.id LIMIT `+limitParam+s.d.skipLocked+`)
		RETURNING `+outboxCols,
		args...)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(items, func(a, b ivr.OutboxItem) int { return cmpInt64(a.ID, b.ID) })
	return items, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ReleaseOutbox implements [Store].
func (s *sqlStore) ReleaseOutbox(ctx context.Context, ids []int64, next time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	if len(ids) > MaxBatch {
		return fmt.Errorf("release outbox items: %w: %d items (limit %d)", ErrInvalid, len(ids), MaxBatch)
	}
	if next.IsZero() {
		next = s.clock()
	}
	ids = distinctIDs(ids)
	_, err := s.writer().exec(ctx, `UPDATE outbox SET lease_until = NULL, next_attempt_at = ? WHERE status = 'pending' AND id IN (`+placeholders(len(ids))+`)`,
		append([]any{next.UnixMicro()}, int64Args(ids)...)...)
	return s.fail(fmt.Sprintf("release %d outbox items", len(ids)), err)
}

// MarkDelivered implements [Store].
func (s *sqlStore) MarkDelivered(ctx context.Context, id int64, at time.Time) error {
	if at.IsZero() {
		at = s.clock()
	}
	res, err := s.writer().exec(ctx, `UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?, lease_until = NULL WHERE id = ?`,
		timeValue(at), id)
	return s.mustAffect(fmt.Sprintf("mark outbox item %d delivered", id), res, err)
}

// MarkDeliveredMany implements [Store].
func (s *sqlStore) MarkDeliveredMany(ctx context.Context, ids []int64, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	if len(ids) > MaxBatch {
		return fmt.Errorf("mark outbox items delivered: %w: %d items (limit %d)", ErrInvalid, len(ids), MaxBatch)
	}
	if at.IsZero() {
		at = s.clock()
	}
	distinct := distinctIDs(ids)
	q := `UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?, lease_until = NULL WHERE id IN (` +
		placeholders(len(distinct)) + `)`
	op := fmt.Sprintf("mark %d outbox items delivered", len(distinct))
	return s.inTx(ctx, op, func(c conn) error {
		res, err := c.exec(ctx, q, append([]any{timeValue(at)}, int64Args(distinct)...)...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n != int64(len(distinct)) {
			return fmt.Errorf("%d of %d items exist: %w", n, len(distinct), ErrNotFound)
		}
		return nil
	})
}

// MarkAttemptFailed implements [Store]. lastErr is recorded as diagnostic
// text: invalid UTF-8 and NUL bytes are replaced and it is cut to
// [MaxTextBytes].
func (s *sqlStore) MarkAttemptFailed(ctx context.Context, id int64, lastErr string, next time.Time, dead bool) error {
	if next.IsZero() {
		next = s.clock()
	}
	status := ivr.OutboxPending
	if dead {
		status = ivr.OutboxDead
	}
	res, err := s.writer().exec(ctx, `UPDATE outbox SET status = ?, attempts = attempts + 1, last_error = ?, next_attempt_at = ?, lease_until = NULL WHERE id = ?`,
		string(status), clean(lastErr, MaxTextBytes), next.UnixMicro(), id)
	return s.mustAffect(fmt.Sprintf("mark outbox item %d failed", id), res, err)
}

// ExpireOutbox implements [Store].
func (s *sqlStore) ExpireOutbox(ctx context.Context, now, startedBefore time.Time, reason string) (int64, error) {
	const op = "expire outbox items"
	prefix := clean(reason, MaxKeyBytes)
	res, err := s.writer().exec(ctx, `UPDATE outbox SET status = 'dead', lease_until = NULL,
		last_error = CASE WHEN last_error = '' THEN CAST(? AS TEXT) ELSE substr(CAST(? AS TEXT) || '; last error: ' || last_error, 1, ?) END
		WHERE status = 'pending' AND COALESCE(retry_from, created_at) < ? AND (lease_until IS NULL OR lease_until <= ?)`,
		prefix, prefix, MaxTextBytes/4, startedBefore.UnixMicro(), now.UnixMicro())
	if err != nil {
		return 0, s.fail(op, err)
	}
	n, err := affected(res)
	if err != nil {
		return 0, s.fail(op, err)
	}
	return n, nil
}

// GetOutboxItem implements [Store].
func (s *sqlStore) GetOutboxItem(ctx context.Context, id int64) (ivr.OutboxItem, error) {
	return getRow(ctx, s, s.reader(), fmt.Sprintf("get outbox item %d", id), scanOutbox,
		`SELECT `+outboxCols+` FROM outbox WHERE id = ?`, id)
}

// ListOutbox implements [Store].
func (s *sqlStore) ListOutbox(ctx context.Context, status ivr.OutboxStatus, limit int) ([]ivr.OutboxItem, error) {
	op := fmt.Sprintf("list %.32q outbox items", status)
	if limit <= 0 {
		return listRows(ctx, s, s.reader(), op, scanOutbox,
			`SELECT `+outboxCols+` FROM outbox WHERE status = ? ORDER BY id`, string(status))
	}
	return listRows(ctx, s, s.reader(), op, scanOutbox,
		`SELECT `+outboxCols+` FROM outbox WHERE status = ? ORDER BY id LIMIT `+limitParam, string(status), limit)
}

// OutboxQuery selects a page of outbox items for [Store.QueryOutbox].
type OutboxQuery struct {
	// Status is required.
	Status ivr.OutboxStatus
	// ConnectionID, when not 0, keeps only that connection's items.
	ConnectionID int64
	// AfterID continues a listing after the last id of the previous page.
	AfterID int64
	// Limit is the page size, 1..MaxBatch (0: 100).
	Limit int
}

// QueryOutbox implements [Store].
func (s *sqlStore) QueryOutbox(ctx context.Context, q OutboxQuery) ([]ivr.OutboxItem, error) {
	op := fmt.Sprintf("query %.32q outbox items", q.Status)
	if q.Limit == 0 {
		q.Limit = 100
	}
	switch q.Status {
	case ivr.OutboxPending, ivr.OutboxDelivered, ivr.OutboxDead:
	default:
		return nil, fmt.Errorf("%s: %w: unknown status", op, ErrInvalid)
	}
	if q.Limit < 0 || q.Limit > MaxBatch {
		return nil, fmt.Errorf("%s: %w: limit %d is outside 1..%d", op, ErrInvalid, q.Limit, MaxBatch)
	}
	where, args := `status = ? AND id > ?`, []any{string(q.Status), q.AfterID}
	if q.ConnectionID != 0 {
		where += ` AND connection_id = ?`
		args = append(args, q.ConnectionID)
	}
	return listRows(ctx, s, s.reader(), op, scanOutbox,
		`SELECT `+outboxCols+` FROM outbox WHERE `+where+` ORDER BY id LIMIT `+limitParam, append(args, q.Limit)...)
}

// DeadLetters selects dead-lettered outbox items for [Store.RedeliverOutbox]
// and [Store.PurgeOutbox]: those listed in IDs, those of ConnectionID, or,
// with All, every one. Set fields combine (IDs of that connection). The zero
// value selects nothing and is refused, so a mistake cannot purge all.
type DeadLetters struct {
	IDs          []int64
	ConnectionID int64
	All          bool
}

func (d DeadLetters) where(op string) (string, []any, error) {
	if len(d.IDs) == 0 && d.ConnectionID == 0 && !d.All {
		return "", nil, fmt.Errorf("%s: %w: select dead letters by id, by connection or all", op, ErrInvalid)
	}
	if len(d.IDs) > MaxBatch {
		return "", nil, fmt.Errorf("%s: %w: %d ids (limit %d)", op, ErrInvalid, len(d.IDs), MaxBatch)
	}
	where, args := `status = 'dead'`, []any(nil)
	if len(d.IDs) > 0 {
		ids := distinctIDs(d.IDs)
		where += ` AND id IN (` + placeholders(len(ids)) + `)`
		args = append(args, int64Args(ids)...)
	}
	if d.ConnectionID != 0 {
		where += ` AND connection_id = ?`
		args = append(args, d.ConnectionID)
	}
	return where, args, nil
}

// RedeliverOutbox implements [Store].
func (s *sqlStore) RedeliverOutbox(ctx context.Context, sel DeadLetters, now time.Time) (int64, error) {
	const op = "redeliver dead letters"
	where, args, err := sel.where(op)
	if err != nil {
		return 0, err
	}
	if now.IsZero() {
		now = s.clock()
	}
	at := now.UnixMicro()
	res, err := s.writer().exec(ctx, `UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, retry_from = ?, lease_until = NULL, delivered_at = NULL
		WHERE `+where, append([]any{at, at}, args...)...)
	if err != nil {
		return 0, s.fail(op, err)
	}
	n, err := affected(res)
	if err != nil {
		return 0, s.fail(op, err)
	}
	return n, nil
}

// PurgeOutbox implements [Store].
func (s *sqlStore) PurgeOutbox(ctx context.Context, sel DeadLetters) (int64, error) {
	const op = "purge dead letters"
	where, args, err := sel.where(op)
	if err != nil {
		return 0, err
	}
	res, err := s.writer().exec(ctx, `DELETE FROM outbox WHERE `+where, args...)
	if err != nil {
		return 0, s.fail(op, err)
	}
	n, err := affected(res)
	if err != nil {
		return 0, s.fail(op, err)
	}
	return n, nil
}

// OutboxStat counts the outbox items of one channel and status.
type OutboxStat struct {
	Channel ivr.Channel
	Status  ivr.OutboxStatus
	Count   int64
	// Oldest is the creation time of the oldest such item.
	Oldest time.Time
}

// OutboxStats implements [Store]. Delivered items are not counted.
func (s *sqlStore) OutboxStats(ctx context.Context) ([]OutboxStat, error) {
	return listRows(ctx, s, s.reader(), "outbox stats", func(r rowScanner) (OutboxStat, error) {
		var st OutboxStat
		err := r.Scan(&st.Channel, &st.Status, &st.Count, timeCol{&st.Oldest})
		return st, err
	}, `SELECT channel, status, COUNT(*), MIN(created_at) FROM outbox WHERE status IN ('pending', 'dead')
		GROUP BY channel, status ORDER BY channel, status`)
}
