package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/koelvoice/koel/ivr"
)

// Durable tasks: a task row keeps its input until it finishes, so a task
// that a restart interrupted can be run again (see migration 00070).

// MaxTaskInputBytes caps the input stored with one task.
const MaxTaskInputBytes = 64 << 20

// CreateTaskWithInput implements [Store]: like CreateTask, with the input
// stored in the same row.
func (s *sqlStore) CreateTaskWithInput(ctx context.Context, t *ivr.Task, input []byte) error {
	op := fmt.Sprintf("create task %.64q", t.ID)
	task := *t
	if task.Status == "" {
		task.Status = ivr.TaskPending
	}
	if err := validateTask(&task); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if len(input) > MaxTaskInputBytes {
		return fmt.Errorf("%s: %w: input of %d bytes (limit %d)", op, ErrInvalid, len(input), MaxTaskInputBytes)
	}
	now := s.clock()
	// The input has its own table (migration 00141): updates of the
	// task's status never rewrite it.
	err := s.inTx(ctx, op, func(c conn) error {
		if _, err := c.exec(ctx, `INSERT INTO tasks (`+taskCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			task.ID, task.BusinessID, task.Kind, string(task.Status), task.Total, task.Done, listCol{&task.Errors},
			timeValue(now), timeValue(now)); err != nil {
			return err
		}
		if len(input) == 0 {
			return nil
		}
		_, err := c.exec(ctx, `INSERT INTO task_inputs (task_id, input) VALUES (?, ?)`, task.ID, bytesValue(input))
		return err
	})
	if err != nil {
		return err
	}
	t.Status, t.CreatedAt, t.UpdatedAt = task.Status, now, now
	return nil
}

// GetTaskInput implements [Store].
func (s *sqlStore) GetTaskInput(ctx context.Context, id string) ([]byte, error) {
	var input []byte
	_, err := getRow(ctx, s, s.reader(), fmt.Sprintf("get input of task %.64q", id),
		func(r rowScanner) (struct{}, error) { return struct{}{}, r.Scan(bytesCol{&input}) },
		`SELECT i.input FROM tasks t LEFT JOIN task_inputs i ON i.task_id = t.id WHERE t.id = ?`, id)
	return input, err
}

// FinishTask implements [Store]: UpdateTask that also drops the input.
func (s *sqlStore) FinishTask(ctx context.Context, t ivr.Task) error {
	op := fmt.Sprintf("finish task %.64q", t.ID)
	if err := validateTask(&t); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.inTx(ctx, op, func(c conn) error {
		res, err := c.exec(ctx, `UPDATE tasks SET status = ?, total = ?, done = ?, errors = ?, updated_at = ? WHERE id = ?`,
			string(t.Status), t.Total, t.Done, listCol{&t.Errors}, timeValue(s.clock()), t.ID)
		if err := s.mustAffect(op, res, err); err != nil {
			return err
		}
		_, err = c.exec(ctx, `DELETE FROM task_inputs WHERE task_id = ?`, t.ID)
		return err
	})
}

// ListTasks implements [Store].
func (s *sqlStore) ListTasks(ctx context.Context, kind string, statuses []ivr.TaskStatus) ([]ivr.Task, error) {
	op := fmt.Sprintf("list %.64q tasks", kind)
	if len(statuses) == 0 {
		return nil, nil
	}
	q := `SELECT ` + taskCols + ` FROM tasks WHERE kind = ? AND status IN (?` + strings.Repeat(", ?", len(statuses)-1) + `) ORDER BY created_at, id`
	args := []any{kind}
	for _, st := range statuses {
		args = append(args, string(st))
	}
	return listRows(ctx, s, s.reader(), op, scanTask, q, args...)
}

// FindBusinessesByName implements [Store].
func (s *sqlStore) FindBusinessesByName(ctx context.Context, name string) ([]ivr.Business, error) {
	return listRows(ctx, s, s.reader(), fmt.Sprintf("find businesses named %.64q", name), scanBusiness,
		`SELECT `+businessCols+` FROM businesses WHERE name = ? ORDER BY id`, name)
}
