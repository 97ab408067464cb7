package store

import (
	"context"
	"fmt"
	"time"

	"github.com/koelvoice/koel/ivr"
)

// Task claims (migration 00120): one worker at a time runs a task.

// claimable is the condition of a task another worker may take: pending,
// or running without a live lease (a lease released at shutdown, one that
// ran out because its worker died, or a task from before claims existed).
const claimable = `kind = ? AND (status = 'pending' OR (status = 'running' AND (lease_until IS NULL OR lease_until <= ?)))`

// ClaimTask implements [Store]: one conditional UPDATE … RETURNING picks
// the oldest claimable task of kind, marks it running and leases it to
// worker until now+lease. The condition is checked again on the row being
// updated, and on PostgreSQL the candidate row is locked with FOR UPDATE
// SKIP LOCKED, so two workers racing never both get one task (the loser
// gets the next task, or ErrNotFound); on SQLite the single writer
// serializes claimers.
func (s *sqlStore) ClaimTask(ctx context.Context, kind, worker string, lease time.Duration) (ivr.Task, error) {
	op := fmt.Sprintf("claim %.64q task", kind)
	if worker == "" || len(worker) > MaxKeyBytes {
		return ivr.Task{}, fmt.Errorf("%s: %w: worker id must be 1-%d bytes", op, ErrInvalid, MaxKeyBytes)
	}
	if lease <= 0 {
		return ivr.Task{}, fmt.Errorf("%s: %w: lease %v is not positive", op, ErrInvalid, lease)
	}
	now := s.clock()
	at := now.UnixMicro()
	return getRow(ctx, s, s.writer(), op, scanTask,
		`UPDATE tasks SET status = 'running', claimed_by = ?, lease_until = ?, updated_at = ?
		WHERE id = (SELECT id FROM tasks WHERE `+claimable+` ORDER BY created_at, id LIMIT 1`+s.d.skipLocked+`)
		AND `+claimable+`
		RETURNING `+taskCols,
		worker, now.Add(lease).UnixMicro(), at, kind, at, kind, at)
}

// ExtendTaskLease implements [Store]: ErrNotFound when worker no longer
// holds the task (its lease ran out and another worker took it, or it
// finished).
func (s *sqlStore) ExtendTaskLease(ctx context.Context, id, worker string, lease time.Duration) error {
	op := fmt.Sprintf("extend lease of task %.64q", id)
	if lease <= 0 {
		return fmt.Errorf("%s: %w: lease %v is not positive", op, ErrInvalid, lease)
	}
	now := s.clock()
	res, err := s.writer().exec(ctx, `UPDATE tasks SET lease_until = ? WHERE id = ? AND claimed_by = ? AND status = 'running' AND lease_until > ?`,
		now.Add(lease).UnixMicro(), id, worker, now.UnixMicro())
	return s.mustAffect(op, res, err)
}

// ReleaseTask implements [Store]: the task stays as it is (running, with
// its progress) but any worker may claim it at once. Releasing a task the
// worker does not hold is not an error.
func (s *sqlStore) ReleaseTask(ctx context.Context, id, worker string) error {
	op := fmt.Sprintf("release task %.64q", id)
	_, err := s.writer().exec(ctx, `UPDATE tasks SET lease_until = NULL WHERE id = ? AND claimed_by = ? AND status = 'running'`, id, worker)
	if err != nil {
		return s.fail(op, err)
	}
	return nil
}
