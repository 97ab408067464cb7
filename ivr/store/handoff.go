package store

import (
	"context"
	"fmt"
	"time"

	"github.com/koelvoice/koel/ivr"
)

// HandoffStore keeps teams, agents and the handoffs of conversations to
// them (part of [Store]).
type HandoffStore interface {
	// PutTeam creates the team or, when the business has one of that name,
	// updates its Number and Active; it sets t.ID and t.CreatedAt.
	PutTeam(ctx context.Context, t *ivr.Team) error
	// CreateTeam inserts a new team and sets t.ID and t.CreatedAt;
	// ErrConflict when the business already has a team of that name, so
	// of two simultaneous creates exactly one succeeds.
	CreateTeam(ctx context.Context, t *ivr.Team) error
	// ListTeams lists a business's teams ordered by id.
	ListTeams(ctx context.Context, businessID int64) ([]ivr.Team, error)
	// GetTeamByName finds a team by its name.
	GetTeamByName(ctx context.Context, businessID int64, name string) (ivr.Team, error)
	// PutAgent creates the agent or, when the business has one of that
	// name, updates its TeamID and Active; it sets a.ID and a.CreatedAt.
	PutAgent(ctx context.Context, a *ivr.Agent) error
	// CreateAgent inserts a new agent and sets a.ID and a.CreatedAt;
	// ErrConflict when the business already has an agent of that name.
	CreateAgent(ctx context.Context, a *ivr.Agent) error
	// ListAgents lists a business's agents ordered by id.
	ListAgents(ctx context.Context, businessID int64) ([]ivr.Agent, error)
	// GetAgentByName finds an agent by name.
	GetAgentByName(ctx context.Context, businessID int64, name string) (ivr.Agent, error)
	// GetAgent finds an agent by id.
	GetAgent(ctx context.Context, id int64) (ivr.Agent, error)

	// CreateHandoff inserts h (sets ID, CreatedAt, UpdatedAt); ErrConflict
	// when the conversation already has a live (not closed) handoff. A
	// handoff created in a state other than waiting sets the
	// conversation's handoff state in the same transaction.
	CreateHandoff(ctx context.Context, h *ivr.Handoff) error
	// LiveHandoff returns the conversation's handoff that is not closed.
	LiveHandoff(ctx context.Context, conversationID int64) (ivr.Handoff, error)
	// GetHandoff finds a handoff by id.
	GetHandoff(ctx context.Context, id int64) (ivr.Handoff, error)
	// ListHandoffs lists a business's handoffs in the given statuses,
	// oldest first.
	ListHandoffs(ctx context.Context, businessID int64, statuses []ivr.HandoffStatus) ([]ivr.Handoff, error)
	// QueueDueHandoffs moves up to limit waiting handoffs due at or before
	// now to queued and their conversations to pending, in one
	// transaction, and returns them.
	QueueDueHandoffs(ctx context.Context, now time.Time, limit int) ([]ivr.Handoff, error)
	// MoveHandoff changes handoff id from one of the from statuses to to
	// (with agentID) and sets its conversation's handoff state to match, in
	// one transaction. ivr.ErrHandoffState when the handoff is in none of
	// from; ErrNotFound when it does not exist.
	MoveHandoff(ctx context.Context, id int64, from []ivr.HandoffStatus, to ivr.HandoffStatus, agentID int64) (ivr.Handoff, error)

	// FindUsers returns the business's users (on any channel) whose
	// external id is one of externalIDs, ordered by id.
	FindUsers(ctx context.Context, businessID int64, externalIDs []string) ([]ivr.User, error)
	// ListConversations returns a user's conversations by number.
	ListConversations(ctx context.Context, userID int64) ([]ivr.Conversation, error)
}

// conversationState is the conversation handoff state a handoff status
// implies; ok is false for waiting (the bot still answers, nothing changes).
func conversationState(s ivr.HandoffStatus) (ivr.HandoffState, bool) {
	switch s {
	case ivr.HandoffQueued:
		return ivr.HandoffPending, true
	case ivr.HandoffTaken, ivr.HandoffPhone:
		return ivr.HandoffAgent, true
	case ivr.HandoffClosed:
		return ivr.HandoffBot, true
	}
	return "", false
}

func validHandoffStatus(s ivr.HandoffStatus) bool {
	switch s {
	case ivr.HandoffWaiting, ivr.HandoffQueued, ivr.HandoffTaken, ivr.HandoffPhone, ivr.HandoffClosed:
		return true
	}
	return false
}

const teamCols = `id, business_id, name, number, active, created_at`

func scanTeam(r rowScanner) (ivr.Team, error) {
	var t ivr.Team
	err := r.Scan(&t.ID, &t.BusinessID, &t.Name, &t.Number, &t.Active, timeCol{&t.CreatedAt})
	return t, err
}

// PutTeam implements [Store].
func (s *sqlStore) PutTeam(ctx context.Context, t *ivr.Team) error {
	return s.insertTeam(ctx, fmt.Sprintf("put team %.64q", t.Name), t,
		` ON CONFLICT (business_id, name) DO UPDATE SET number = excluded.number, active = excluded.active`)
}

// CreateTeam implements [Store].
func (s *sqlStore) CreateTeam(ctx context.Context, t *ivr.Team) error {
	return s.insertTeam(ctx, fmt.Sprintf("create team %.64q", t.Name), t, "")
}

// insertTeam validates t and inserts it with the given ON CONFLICT clause
// (none: a duplicate name is ErrConflict).
func (s *sqlStore) insertTeam(ctx context.Context, op string, t *ivr.Team, onConflict string) error {
	var v validator
	v.id("business", t.BusinessID)
	v.key("team name", t.Name)
	v.text("team number", t.Number, MaxKeyBytes)
	if v.err != nil {
		return fmt.Errorf("%s: %w", op, v.err)
	}
	got, err := getRow(ctx, s, s.writer(), op, scanTeam, `INSERT INTO teams (business_id, name, number, active, created_at)
		VALUES (?, ?, ?, ?, ?)`+onConflict+`
		RETURNING `+teamCols, t.BusinessID, t.Name, t.Number, t.Active, timeValue(s.clock()))
	if err != nil {
		return err
	}
	*t = got
	return nil
}

// ListTeams implements [Store].
func (s *sqlStore) ListTeams(ctx context.Context, businessID int64) ([]ivr.Team, error) {
	return listRows(ctx, s, s.reader(), fmt.Sprintf("list teams of business %d", businessID), scanTeam,
		`SELECT `+teamCols+` FROM teams WHERE business_id = ? ORDER BY id`, businessID)
}

// GetTeamByName implements [Store].
func (s *sqlStore) GetTeamByName(ctx context.Context, businessID int64, name string) (ivr.Team, error) {
	return getRow(ctx, s, s.reader(), fmt.Sprintf("get team %.64q", name), scanTeam,
		`SELECT `+teamCols+` FROM teams WHERE business_id = ? AND name = ?`, businessID, name)
}

const agentCols = `id, business_id, team_id, name, active, created_at`

func scanAgent(r rowScanner) (ivr.Agent, error) {
	var a ivr.Agent
	err := r.Scan(&a.ID, &a.BusinessID, &a.TeamID, &a.Name, &a.Active, timeCol{&a.CreatedAt})
	return a, err
}

// PutAgent implements [Store].
func (s *sqlStore) PutAgent(ctx context.Context, a *ivr.Agent) error {
	return s.insertAgent(ctx, fmt.Sprintf("put agent %.64q", a.Name), a,
		` ON CONFLICT (business_id, name) DO UPDATE SET team_id = excluded.team_id, active = excluded.active`)
}

// CreateAgent implements [Store].
func (s *sqlStore) CreateAgent(ctx context.Context, a *ivr.Agent) error {
	return s.insertAgent(ctx, fmt.Sprintf("create agent %.64q", a.Name), a, "")
}

// insertAgent validates a and inserts it with the given ON CONFLICT
// clause (none: a duplicate name is ErrConflict).
func (s *sqlStore) insertAgent(ctx context.Context, op string, a *ivr.Agent, onConflict string) error {
	var v validator
	v.id("business", a.BusinessID)
	v.id("team", a.TeamID)
	v.key("agent name", a.Name)
	if v.err != nil {
		return fmt.Errorf("%s: %w", op, v.err)
	}
	got, err := getRow(ctx, s, s.writer(), op, scanAgent, `INSERT INTO agents (business_id, team_id, name, active, created_at)
		VALUES (?, ?, ?, ?, ?)`+onConflict+`
		RETURNING `+agentCols, a.BusinessID, a.TeamID, a.Name, a.Active, timeValue(s.clock()))
	if err != nil {
		return err
	}
	*a = got
	return nil
}

// ListAgents implements [Store].
func (s *sqlStore) ListAgents(ctx context.Context, businessID int64) ([]ivr.Agent, error) {
	return listRows(ctx, s, s.reader(), fmt.Sprintf("list agents of business %d", businessID), scanAgent,
		`SELECT `+agentCols+` FROM agents WHERE business_id = ? ORDER BY id`, businessID)
}

// GetAgentByName implements [Store].
func (s *sqlStore) GetAgentByName(ctx context.Context, businessID int64, name string) (ivr.Agent, error) {
	return getRow(ctx, s, s.reader(), fmt.Sprintf("get agent %.64q", name), scanAgent,
		`SELECT `+agentCols+` FROM agents WHERE business_id = ? AND name = ?`, businessID, name)
}

// GetAgent implements [Store].
func (s *sqlStore) GetAgent(ctx context.Context, id int64) (ivr.Agent, error) {
	return getRow(ctx, s, s.reader(), fmt.Sprintf("get agent %d", id), scanAgent,
		`SELECT `+agentCols+` FROM agents WHERE id = ?`, id)
}

const handoffCols = `id, business_id, conversation_id, user_id, team_id, status, due_at, agent_id, created_at, updated_at`

func scanHandoff(r rowScanner) (ivr.Handoff, error) {
	var h ivr.Handoff
	err := r.Scan(&h.ID, &h.BusinessID, &h.ConversationID, &h.UserID, &h.TeamID, &h.Status,
		timeCol{&h.DueAt}, &h.AgentID, timeCol{&h.CreatedAt}, timeCol{&h.UpdatedAt})
	return h, err
}

// CreateHandoff implements [Store].
func (s *sqlStore) CreateHandoff(ctx context.Context, h *ivr.Handoff) error {
	op := fmt.Sprintf("create handoff of conversation %d", h.ConversationID)
	var v validator
	v.id("business", h.BusinessID)
	v.id("conversation", h.ConversationID)
	v.id("user", h.UserID)
	v.id("team", h.TeamID)
	if !validHandoffStatus(h.Status) || h.Status == ivr.HandoffClosed {
		v.fail("unknown or closed handoff status %.32q", h.Status)
	}
	if h.DueAt.IsZero() {
		v.fail("handoff without a due time")
	}
	if v.err != nil {
		return fmt.Errorf("%s: %w", op, v.err)
	}
	now := s.clock()
	return s.inTx(ctx, op, func(c conn) error {
		got, err := scanHandoff(c.row(ctx, `INSERT INTO handoffs (business_id, conversation_id, user_id, team_id, status, due_at, agent_id, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+handoffCols,
			h.BusinessID, h.ConversationID, h.UserID, h.TeamID, string(h.Status), timeValue(storedTime(h.DueAt)), h.AgentID,
			timeValue(now), timeValue(now)))
		if err != nil {
			return err
		}
		if st, ok := conversationState(got.Status); ok {
			if _, err := c.exec(ctx, `UPDATE conversations SET handoff = ? WHERE id = ?`, string(st), got.ConversationID); err != nil {
				return err
			}
		}
		*h = got
		return nil
	})
}

// LiveHandoff implements [Store].
func (s *sqlStore) LiveHandoff(ctx context.Context, conversationID int64) (ivr.Handoff, error) {
	return getRow(ctx, s, s.reader(), fmt.Sprintf("live handoff of conversation %d", conversationID), scanHandoff,
		`SELECT `+handoffCols+` FROM handoffs WHERE conversation_id = ? AND status <> 'closed'`, conversationID)
}

// GetHandoff implements [Store].
func (s *sqlStore) GetHandoff(ctx context.Context, id int64) (ivr.Handoff, error) {
	return getRow(ctx, s, s.reader(), fmt.Sprintf("get handoff %d", id), scanHandoff,
		`SELECT `+handoffCols+` FROM handoffs WHERE id = ?`, id)
}

// ListHandoffs implements [Store].
func (s *sqlStore) ListHandoffs(ctx context.Context, businessID int64, statuses []ivr.HandoffStatus) ([]ivr.Handoff, error) {
	op := fmt.Sprintf("list handoffs of business %d", businessID)
	if len(statuses) == 0 {
		return nil, nil
	}
	args := []any{businessID}
	for _, st := range statuses {
		if !validHandoffStatus(st) {
			return nil, fmt.Errorf("%s: %w: unknown handoff status %.32q", op, ErrInvalid, st)
		}
		args = append(args, string(st))
	}
	return listRows(ctx, s, s.reader(), op, scanHandoff,
		`SELECT `+handoffCols+` FROM handoffs WHERE business_id = ? AND status IN (`+placeholders(len(statuses))+`) ORDER BY id`, args...)
}

// QueueDueHandoffs implements [Store].
func (s *sqlStore) QueueDueHandoffs(ctx context.Context, now time.Time, limit int) ([]ivr.Handoff, error) {
	const op = "queue due handoffs"
	if limit <= 0 || limit > MaxBatch {
		return nil, fmt.Errorf("%s: %w: limit %d", op, ErrInvalid, limit)
	}
	var out []ivr.Handoff
	at := timeValue(storedTime(now))
	err := s.inTx(ctx, op, func(c conn) error {
		out = out[:0]
		rows, err := c.query(ctx, `UPDATE handoffs SET status = 'queued', updated_at = ?
			WHERE id IN (SELECT id FROM handoffs WHERE status = 'waiting' AND due_at <= ? ORDER BY due_at, id LIMIT `+limitParam+s.d.skipLocked+`)
			RETURNING `+handoffCols, timeValue(s.clock()), at, limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			h, err := scanHandoff(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, h)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, h := range out {
			if _, err := c.exec(ctx, `UPDATE conversations SET handoff = ? WHERE id = ?`, string(ivr.HandoffPending), h.ConversationID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// MoveHandoff implements [Store].
func (s *sqlStore) MoveHandoff(ctx context.Context, id int64, from []ivr.HandoffStatus, to ivr.HandoffStatus, agentID int64) (ivr.Handoff, error) {
	op := fmt.Sprintf("move handoff %d to %.32s", id, to)
	if !validHandoffStatus(to) || len(from) == 0 {
		return ivr.Handoff{}, fmt.Errorf("%s: %w: unknown handoff status", op, ErrInvalid)
	}
	args := []any{string(to), agentID, timeValue(s.clock()), id}
	for _, st := range from {
		if !validHandoffStatus(st) {
			return ivr.Handoff{}, fmt.Errorf("%s: %w: unknown handoff status %.32q", op, ErrInvalid, st)
		}
		args = append(args, string(st))
	}
	var got ivr.Handoff
	err := s.inTx(ctx, op, func(c conn) error {
		var err error
		got, err = scanHandoff(c.row(ctx, `UPDATE handoffs SET status = ?, agent_id = ?, updated_at = ?
			WHERE id = ? AND status IN (`+placeholders(len(from))+`) RETURNING `+handoffCols, args...))
		if err != nil {
			if _, gerr := scanHandoff(c.row(ctx, `SELECT `+handoffCols+` FROM handoffs WHERE id = ?`, id)); gerr == nil {
				return ivr.ErrHandoffState
			}
			return err
		}
		if st, ok := conversationState(to); ok {
			if _, err := c.exec(ctx, `UPDATE conversations SET handoff = ? WHERE id = ?`, string(st), got.ConversationID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return ivr.Handoff{}, err
	}
	return got, nil
}

// FindUsers implements [Store].
func (s *sqlStore) FindUsers(ctx context.Context, businessID int64, externalIDs []string) ([]ivr.User, error) {
	if len(externalIDs) == 0 || len(externalIDs) > 32 {
		return nil, fmt.Errorf("find users: %w: %d ids (1 to 32)", ErrInvalid, len(externalIDs))
	}
	args := []any{businessID}
	for _, id := range externalIDs {
		args = append(args, id)
	}
	return listRows(ctx, s, s.reader(), fmt.Sprintf("find users of business %d", businessID), scanUser,
		`SELECT `+userCols+` FROM users WHERE business_id = ? AND external_id IN (`+placeholders(len(externalIDs))+`) ORDER BY id`, args...)
}

// ListConversations implements [Store].
func (s *sqlStore) ListConversations(ctx context.Context, userID int64) ([]ivr.Conversation, error) {
	return listRows(ctx, s, s.reader(), fmt.Sprintf("list conversations of user %d", userID), scanConversation,
		`SELECT `+conversationCols+` FROM conversations WHERE user_id = ? ORDER BY conversation_no`, userID)
}
