package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/koelvoice/koel/ivr"
)

// Voice calls, their turns and per-call locks.

const callCols = `sid, connection_id, business_id, user_id, conversation_id, caller, called_number, state, turn, failures,
	outcome, last_event_key, last_response, version, started_at, updated_at, ended_at, repair`

func scanCall(r rowScanner) (ivr.Call, error) {
	var c ivr.Call
	var repair string
	err := r.Scan(&c.SID, &c.ConnectionID, &c.BusinessID, &c.UserID, &c.ConversationID, &c.Caller, &c.CalledNumber,
		&c.State, &c.Turn, &c.Failures, &c.Outcome, &c.LastEventKey, &c.LastResponse, &c.Version,
		timeCol{&c.StartedAt}, timeCol{&c.UpdatedAt}, timeCol{&c.EndedAt}, &repair)
	if err == nil && repair != "" {
		if jerr := json.Unmarshal([]byte(repair), &c.Repair); jerr != nil {
			return c, fmt.Errorf("call %.64q: repair state: %w", c.SID, jerr)
		}
	}
	return c, err
}

// repairText is the stored form of a call's repair state: "" when empty.
func repairText(r ivr.CallRepair) (string, error) {
	if r.Misses == 0 && r.Pending == nil && len(r.Topics) == 0 && r.Band == "" && r.Held == nil {
		return "", nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("%w: repair state: %w", ErrInvalid, err)
	}
	return string(b), nil
}

func validateCall(c *ivr.Call) error {
	var v validator
	v.key("sid", c.SID)
	v.text("caller", c.Caller, MaxKeyBytes)
	v.text("called number", c.CalledNumber, MaxKeyBytes)
	v.text("state", string(c.State), MaxKeyBytes)
	v.text("outcome", c.Outcome, MaxKeyBytes)
	v.text("last event key", c.LastEventKey, MaxKeyBytes)
	v.text("last response", c.LastResponse, MaxTextBytes)
	if c.Turn < 0 || c.Failures < 0 || c.Repair.Misses < 0 {
		v.fail("turn, failures and misses must not be negative")
	}
	if c.Repair.Pending != nil {
		v.text("pending topic", c.Repair.Pending.Topic, MaxKeyBytes)
		v.text("pending node", c.Repair.Pending.Node, MaxKeyBytes)
		for _, t := range c.Repair.Pending.Reply {
			v.text("pending reply", t, MaxTextBytes)
		}
	}
	if len(c.Repair.Topics) > 9 {
		v.fail("%d menu topics (limit 9)", len(c.Repair.Topics))
	}
	for _, t := range c.Repair.Topics {
		v.text("menu topic", t.Node, MaxKeyBytes)
		v.text("menu title", t.Title, MaxKeyBytes)
	}
	v.text("band", c.Repair.Band, MaxKeyBytes)
	if h := c.Repair.Held; h != nil {
		v.text("held recording url", h.URL, MaxURLBytes)
		v.text("held record status", h.Status, MaxKeyBytes)
	}
	return v.err
}

// CreateCall implements [Store]. StartedAt defaults to now; UpdatedAt is
// now.
func (s *sqlStore) CreateCall(ctx context.Context, c *ivr.Call) error {
	op := fmt.Sprintf("create call %.64q", c.SID)
	if err := validateCall(c); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	repair, err := repairText(c.Repair)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	now := s.clock()
	started := storedTime(c.StartedAt)
	if started.IsZero() {
		started = now
	}
	ended := storedTime(c.EndedAt)
	_, err = s.writer().exec(ctx, `INSERT INTO calls (`+callCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)`,
		c.SID, c.ConnectionID, c.BusinessID, c.UserID, c.ConversationID, c.Caller, c.CalledNumber, string(c.State),
		c.Turn, c.Failures, c.Outcome, c.LastEventKey, c.LastResponse, timeValue(started), timeValue(now), timeValue(ended), repair)
	if err != nil {
		return s.fail(op, err)
	}
	c.Version, c.StartedAt, c.UpdatedAt, c.EndedAt = 1, started, now, ended
	return nil
}

// GetCall implements [Store].
func (s *sqlStore) GetCall(ctx context.Context, sid string) (ivr.Call, error) {
	return getRow(ctx, s, s.reader(), fmt.Sprintf("get call %.64q", sid), scanCall,
		`SELECT `+callCols+` FROM calls WHERE sid = ?`, sid)
}

// UpdateCall implements [Store]. StartedAt is not written.
func (s *sqlStore) UpdateCall(ctx context.Context, c *ivr.Call) error {
	op := fmt.Sprintf("update call %.64q", c.SID)
	if err := validateCall(c); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	repair, err := repairText(c.Repair)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	now := s.clock()
	ended := storedTime(c.EndedAt)
	res, err := s.writer().exec(ctx, `UPDATE calls SET connection_id = ?, business_id = ?, user_id = ?, conversation_id = ?,
		caller = ?, called_number = ?, state = ?, turn = ?, failures = ?, outcome = ?, last_event_key = ?, last_response = ?,
		version = version + 1, updated_at = ?, ended_at = ?, repair = ? WHERE sid = ? AND version = ?`,
		c.ConnectionID, c.BusinessID, c.UserID, c.ConversationID, c.Caller, c.CalledNumber, string(c.State),
		c.Turn, c.Failures, c.Outcome, c.LastEventKey, c.LastResponse, timeValue(now), timeValue(ended), repair, c.SID, c.Version)
	if err != nil {
		return s.fail(op, err)
	}
	n, err := affected(res)
	if err != nil {
		return s.fail(op, err)
	}
	if n == 0 {
		var version int64
		err := s.writer().row(ctx, `SELECT version FROM calls WHERE sid = ?`, c.SID).Scan(&version)
		if err != nil {
			return s.fail(op, err)
		}
		return fmt.Errorf("%s: %w: stored version %d, update carries %d", op, ErrVersionConflict, version, c.Version)
	}
	c.Version++
	c.UpdatedAt, c.EndedAt = now, ended
	return nil
}

// AcquireCallLock implements [Store]. The lock is a row; one upsert takes
// it when it is free, expired or already ours, so it holds across
// processes sharing a PostgreSQL database.
func (s *sqlStore) AcquireCallLock(ctx context.Context, sid, owner string, ttl time.Duration) error {
	op := fmt.Sprintf("acquire lock of call %.64q", sid)
	var v validator
	v.key("sid", sid)
	v.key("owner", owner)
	if ttl <= 0 {
		v.fail("lock ttl %v is not positive", ttl)
	}
	if v.err != nil {
		return fmt.Errorf("%s: %w", op, v.err)
	}
	now := s.now()
	res, err := s.writer().exec(ctx, `INSERT INTO call_locks (sid, owner, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (sid) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE call_locks.owner = excluded.owner OR call_locks.expires_at <= ?`,
		sid, owner, now.Add(ttl).UnixMicro(), now.UnixMicro())
	if err != nil {
		return s.fail(op, err)
	}
	n, err := affected(res)
	if err != nil {
		return s.fail(op, err)
	}
	if n == 0 {
		if s.d.name == "postgres" {
			s.metrics.leaseConflict()
		}
		return fmt.Errorf("%s: %w", op, ErrLocked)
	}
	return nil
}

// ReleaseCallLock implements [Store].
func (s *sqlStore) ReleaseCallLock(ctx context.Context, sid, owner string) error {
	if _, err := s.writer().exec(ctx, `DELETE FROM call_locks WHERE sid = ? AND owner = ?`, sid, owner); err != nil {
		return s.fail(fmt.Sprintf("release lock of call %.64q", sid), err)
	}
	return nil
}

const turnCols = `id, call_sid, seq, recording_url, record_status, end_reason, transcript, confidence, reply, error,
	message_id, speech_ms, fetch_ms, decode_ms, stt_ms, bot_ms, total_ms, created_at, understanding`

func scanTurn(r rowScanner) (ivr.Turn, error) {
	var t ivr.Turn
	err := r.Scan(&t.ID, &t.CallSID, &t.Seq, &t.RecordingURL, &t.RecordStatus, &t.EndReason, &t.Transcript, &t.Confidence,
		&t.Reply, &t.Error, &t.MessageID, &t.SpeechMS, &t.FetchMS, &t.DecodeMS, &t.STTMS, &t.BotMS, &t.TotalMS,
		timeCol{&t.CreatedAt}, &t.Understanding)
	return t, err
}

// AddTurn implements [Store]. ErrNotFound when the call does not exist.
func (s *sqlStore) AddTurn(ctx context.Context, t *ivr.Turn) error {
	op := fmt.Sprintf("add turn %d of call %.64q", t.Seq, t.CallSID)
	var v validator
	v.key("call sid", t.CallSID)
	v.text("recording url", t.RecordingURL, MaxURLBytes)
	v.text("record status", t.RecordStatus, MaxKeyBytes)
	v.text("end reason", t.EndReason, MaxKeyBytes)
	v.text("transcript", t.Transcript, MaxTextBytes)
	v.text("reply", t.Reply, MaxTextBytes)
	v.text("error", t.Error, MaxTextBytes)
	v.text("understanding", t.Understanding, MaxKeyBytes)
	if v.err != nil {
		return fmt.Errorf("%s: %w", op, v.err)
	}
	now := s.clock()
	var id int64
	err := s.writer().row(ctx, `INSERT INTO turns (call_sid, seq, recording_url, record_status, end_reason, transcript, confidence,
		reply, error, message_id, speech_ms, fetch_ms, decode_ms, stt_ms, bot_ms, total_ms, created_at, understanding)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		t.CallSID, t.Seq, t.RecordingURL, t.RecordStatus, t.EndReason, t.Transcript, t.Confidence, t.Reply, t.Error,
		t.MessageID, t.SpeechMS, t.FetchMS, t.DecodeMS, t.STTMS, t.BotMS, t.TotalMS, timeValue(now), t.Understanding).Scan(&id)
	if err != nil {
		return s.fail(op, err)
	}
	t.ID, t.CreatedAt = id, now
	return nil
}

// ListTurns implements [Store].
func (s *sqlStore) ListTurns(ctx context.Context, sid string) ([]ivr.Turn, error) {
	return listRows(ctx, s, s.reader(), fmt.Sprintf("list turns of call %.64q", sid), scanTurn,
		`SELECT `+turnCols+` FROM turns WHERE call_sid = ? ORDER BY seq, id`, sid)
}

// CountActiveCalls implements [Store]: calls with no end time whose state
// is not ended.
func (s *sqlStore) CountActiveCalls(ctx context.Context) (int, error) {
	var n int
	err := s.reader().row(ctx, `SELECT COUNT(*) FROM calls WHERE ended_at IS NULL AND state <> ?`, string(ivr.CallStateEnded)).Scan(&n)
	if err != nil {
		return 0, s.fail("count active calls", err)
	}
	return n, nil
}

// ListIdleCalls implements [Store].
func (s *sqlStore) ListIdleCalls(ctx context.Context, before time.Time, limit int) ([]ivr.Call, error) {
	if limit <= 0 {
		return nil, nil
	}
	return listRows(ctx, s, s.reader(), "list idle calls", scanCall,
		`SELECT `+callCols+` FROM calls WHERE ended_at IS NULL AND state <> ? AND updated_at < ? ORDER BY updated_at LIMIT `+limitParam,
		string(ivr.CallStateEnded), timeValue(before), limit)
}
