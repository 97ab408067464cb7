package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/koelvoice/koel/ivr"
)

// FAQ nodes and tasks (the delivery outbox is in outbox.go).

const faqCols = `id, business_id, name, user_says, bot_says, active, updated_at`

func scanFAQ(r rowScanner) (ivr.FAQNode, error) {
	var n ivr.FAQNode
	err := r.Scan(&n.ID, &n.BusinessID, &n.Name, listCol{&n.UserSays}, listCol{&n.BotSays}, &n.Active, timeCol{&n.UpdatedAt})
	return n, err
}

// validateFAQ checks a whole import before anything is written: node names
// are non-empty and unique, every phrase is storable.
func validateFAQ(nodes []ivr.FAQNode) error {
	if len(nodes) > MaxFAQNodes {
		return fmt.Errorf("%w: %d nodes (limit %d)", ErrInvalid, len(nodes), MaxFAQNodes)
	}
	seen := make(map[string]int, len(nodes))
	for i, n := range nodes {
		var v validator
		if strings.TrimSpace(n.Name) == "" {
			v.fail("node %d: name is empty", i+1)
		}
		v.text("name", n.Name, MaxKeyBytes)
		v.list("user says", n.UserSays)
		v.list("bot says", n.BotSays)
		if v.err != nil {
			return fmt.Errorf("node %d: %w", i+1, v.err)
		}
		if first, dup := seen[n.Name]; dup {
			return fmt.Errorf("%w: node %d: name %.64q repeats node %d", ErrInvalid, i+1, n.Name, first)
		}
		seen[n.Name] = i + 1
	}
	return nil
}

// ListFAQ implements [Store]: the nodes of the business's live FAQ
// generation (see faqgen.go). Names sort by their bytes on both backends.
func (s *sqlStore) ListFAQ(ctx context.Context, businessID int64, activeOnly bool) ([]ivr.FAQNode, error) {
	op := fmt.Sprintf("list FAQ of business %d", businessID)
	live := `generation = COALESCE((SELECT live FROM faq_generations WHERE business_id = ?), 0)`
	if activeOnly {
		return listRows(ctx, s, s.reader(), op, scanFAQ,
			`SELECT `+faqCols+` FROM faq_nodes WHERE business_id = ? AND `+live+` AND active ORDER BY name`, businessID, businessID)
	}
	return listRows(ctx, s, s.reader(), op, scanFAQ,
		`SELECT `+faqCols+` FROM faq_nodes WHERE business_id = ? AND `+live+` ORDER BY name`, businessID, businessID)
}

const taskCols = `id, business_id, kind, status, total, done, errors, created_at, updated_at`

func scanTask(r rowScanner) (ivr.Task, error) {
	var t ivr.Task
	err := r.Scan(&t.ID, &t.BusinessID, &t.Kind, &t.Status, &t.Total, &t.Done, listCol{&t.Errors},
		timeCol{&t.CreatedAt}, timeCol{&t.UpdatedAt})
	return t, err
}

func validateTask(t *ivr.Task) error {
	var v validator
	v.key("task id", t.ID)
	v.text("kind", t.Kind, MaxKeyBytes)
	switch t.Status {
	case ivr.TaskPending, ivr.TaskRunning, ivr.TaskComplete, ivr.TaskFailed:
	default:
		v.fail("unknown task status %.32q", t.Status)
	}
	if t.Total < 0 || t.Done < 0 {
		v.fail("total and done must not be negative")
	}
	v.list("errors", t.Errors)
	return v.err
}

// CreateTask implements [Store]. An empty Status means pending; CreatedAt
// and UpdatedAt are set to now.
func (s *sqlStore) CreateTask(ctx context.Context, t *ivr.Task) error {
	op := fmt.Sprintf("create task %.64q", t.ID)
	task := *t
	if task.Status == "" {
		task.Status = ivr.TaskPending
	}
	if err := validateTask(&task); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	now := s.clock()
	_, err := s.writer().exec(ctx, `INSERT INTO tasks (`+taskCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		task.ID, task.BusinessID, task.Kind, string(task.Status), task.Total, task.Done, listCol{&task.Errors},
		timeValue(now), timeValue(now))
	if err != nil {
		return s.fail(op, err)
	}
	t.Status, t.CreatedAt, t.UpdatedAt = task.Status, now, now
	return nil
}

// UpdateTask implements [Store]; UpdatedAt becomes now.
func (s *sqlStore) UpdateTask(ctx context.Context, t ivr.Task) error {
	op := fmt.Sprintf("update task %.64q", t.ID)
	if err := validateTask(&t); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	res, err := s.writer().exec(ctx, `UPDATE tasks SET status = ?, total = ?, done = ?, errors = ?, updated_at = ? WHERE id = ?`,
		string(t.Status), t.Total, t.Done, listCol{&t.Errors}, timeValue(s.clock()), t.ID)
	return s.mustAffect(op, res, err)
}

// GetTask implements [Store].
func (s *sqlStore) GetTask(ctx context.Context, id string) (ivr.Task, error) {
	return getRow(ctx, s, s.reader(), fmt.Sprintf("get task %.64q", id), scanTask,
		`SELECT `+taskCols+` FROM tasks WHERE id = ?`, id)
}
