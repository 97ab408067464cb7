package ivr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Team is a group of human agents of a business that chats are sent to.
// Number is the phone number a caller is transferred to.
type Team struct {
	ID         int64
	BusinessID int64
	// Name is unique per business (send_chat_to_agent's team_name).
	Name      string
	Number    string
	Active    bool
	CreatedAt time.Time
}

// Agent is one human agent of a team. Name is unique per business and is
// what the transcript shows: sender "agent(<Name>)".
type Agent struct {
	ID         int64
	BusinessID int64
	TeamID     int64
	Name       string
	Active     bool
	CreatedAt  time.Time
}

// HandoffStatus is where a chat sent to a team is.
type HandoffStatus string

// Handoff statuses.
const (
	// HandoffWaiting: the countdown runs; the bot still answers.
	HandoffWaiting HandoffStatus = "waiting"
	// HandoffQueued: in the team's queue; the bot is silent.
	HandoffQueued HandoffStatus = "queued"
	// HandoffTaken: an agent owns the chat.
	HandoffTaken HandoffStatus = "taken"
	// HandoffPhone: a caller was transferred to the team's number.
	HandoffPhone HandoffStatus = "phone"
	// HandoffClosed: handed back to the bot.
	HandoffClosed HandoffStatus = "closed"
)

// Handoff is one time a conversation was sent to a team.
type Handoff struct {
	ID             int64
	BusinessID     int64
	ConversationID int64
	UserID         int64
	TeamID         int64
	Status         HandoffStatus
	// DueAt is when a waiting handoff moves to the queue. It is stored,
	// so a restart during the countdown loses nothing.
	DueAt time.Time
	// AgentID is the agent who took the chat (0: none).
	AgentID   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Countdown bounds of send_chat_to_agent, in seconds.
const (
	MinCountdown     = 5
	MaxCountdown     = 10
	DefaultCountdown = 10
)

// Errors of the [Handoffs] service; each maps to an HTTP status through
// [HTTPStatus] via [HandoffError].
var (
	// ErrHandoffNotFound: no such chat in the business's handoffs (404).
	ErrHandoffNotFound = &HandoffError{Status: 404, Message: "chat not found"}
	// ErrHandoffState: the chat is not in a state that allows the step,
	// e.g. taking a chat another agent took (409).
	ErrHandoffState = &HandoffError{Status: 409, Message: "chat is not in a state that allows this"}
	// ErrNoRoute: the user's channel cannot carry an agent's message, e.g.
	// a voice caller (409).
	ErrNoRoute = &HandoffError{Status: 409, Message: "the user's channel has no active connection that can deliver agent messages"}
)

// HandoffError is an error of the handoff domain with the HTTP status and
// message clients see.
type HandoffError struct {
	Status  int
	Message string
}

func (e *HandoffError) Error() string { return e.Message }

// HTTPStatus implements the error edge's status interface.
func (e *HandoffError) HTTPStatus() (int, string) { return e.Status, e.Message }

// HandoffStore is what the [Handoffs] service needs from the store.
type HandoffStore interface {
	GetConversation(ctx context.Context, id int64) (Conversation, error)
	GetUserByID(ctx context.Context, id int64) (User, error)
	ListConnections(ctx context.Context, businessID int64) ([]Connection, error)
	AppendMessagesThen(ctx context.Context, msgs []*Message, then func(stored []*Message) ([]*OutboxItem, error)) error
	ListTeams(ctx context.Context, businessID int64) ([]Team, error)
	GetAgentByName(ctx context.Context, businessID int64, name string) (Agent, error)
	CreateHandoff(ctx context.Context, h *Handoff) error
	LiveHandoff(ctx context.Context, conversationID int64) (Handoff, error)
	GetHandoff(ctx context.Context, id int64) (Handoff, error)
	QueueDueHandoffs(ctx context.Context, now time.Time, limit int) ([]Handoff, error)
	MoveHandoff(ctx context.Context, id int64, from []HandoffStatus, to HandoffStatus, agentID int64) (Handoff, error)
	SetHandoff(ctx context.Context, conversationID int64, state HandoffState) error
	EnsureUser(ctx context.Context, businessID int64, channel Channel, externalID string, registered bool) (User, error)
	OpenConversation(ctx context.Context, businessID, userID int64) (Conversation, error)
}

// AgentDelivery builds the outbox items that carry an agent's message to
// the user over conn (the user's own channel). It returns ErrNoRoute when
// conn cannot carry it.
type AgentDelivery func(conn Connection, user User, msg *Message, now time.Time) ([]*OutboxItem, error)

// Notifier wakes the outbox dispatcher after items were stored.
type Notifier interface{ Notify() }

// HandoffsConfig configures [Handoffs].
type HandoffsConfig struct {
	Store HandoffStore
	// Deliver turns an agent message into outbox items; required for
	// [Handoffs.SendAsAgent].
	Deliver  AgentDelivery
	Notifier Notifier
	Logger   *slog.Logger
	// Now returns the current time (nil: time.Now).
	Now func() time.Time
	// Poll is how often [Handoffs.Run] looks for handoffs whose countdown
	// ended (0: 250 ms).
	Poll time.Duration
	// Registerer, when set, gets koel_handoffs_total.
	Registerer prometheus.Registerer
}

// Kinds of koel_handoffs_total: how a conversation moved between the bot
// and people.
const (
	handoffRequested = "requested"   // send_chat_to_agent, with a countdown
	handoffBotNode   = "bot_node"    // the bot's own talk-to-an-agent node
	handoffPhone     = "phone"       // a caller transferred to a team's number
	handoffQueued    = "queued"      // a countdown ended; the chat is in the queue
	handoffTaken     = "taken"       // an agent took the chat
	handoffBack      = "handed_back" // the chat went back to the bot
)

// Handoffs moves conversations between the bot and human agents: a
// countdown to the team's queue, an agent taking the chat, the agent's
// messages out to the user's channel, and the hand back. The conversation's
// handoff state ([Conversation].Handoff) is what the engine reads: pending
// or agent keeps the bot silent.
type Handoffs struct {
	cfg   HandoffsConfig
	log   *slog.Logger
	now   func() time.Time
	moves *prometheus.CounterVec // nil: not counted
}

func (h *Handoffs) count(kind string, n int) {
	if h.moves != nil && n > 0 {
		h.moves.WithLabelValues(kind).Add(float64(n))
	}
}

// NewHandoffs returns the service; Store is required.
func NewHandoffs(cfg HandoffsConfig) (*Handoffs, error) {
	if cfg.Store == nil {
		return nil, errors.New("ivr: handoffs need a store")
	}
	h := &Handoffs{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.cfg.Poll <= 0 {
		h.cfg.Poll = 250 * time.Millisecond
	}
	if cfg.Registerer != nil {
		h.moves = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koel_handoffs_total",
			Help: "Conversations moved between the bot and agents, by kind (requested, bot_node, phone, queued, taken, handed_back).",
		}, []string{"kind"})
		if err := cfg.Registerer.Register(h.moves); err != nil {
			return nil, fmt.Errorf("ivr: handoff metrics: %w", err)
		}
		for _, k := range []string{handoffRequested, handoffBotNode, handoffPhone, handoffQueued, handoffTaken, handoffBack} {
			h.moves.WithLabelValues(k)
		}
	}
	return h, nil
}

// Request sends conversation conv to team after countdown seconds
// (clamped to [MinCountdown, MaxCountdown]; 0 means [DefaultCountdown]).
// When the conversation already has a live handoff, that one is returned
// unchanged: a repeated request does not queue the chat twice.
func (h *Handoffs) Request(ctx context.Context, conv Conversation, team Team, countdown int) (Handoff, error) {
	if countdown == 0 {
		countdown = DefaultCountdown
	}
	countdown = min(max(countdown, MinCountdown), MaxCountdown)
	if live, err := h.cfg.Store.LiveHandoff(ctx, conv.ID); err == nil {
		return live, nil
	} else if !errors.Is(err, ErrNotFound) {
		return Handoff{}, fmt.Errorf("ivr: live handoff: %w", err)
	}
	ho := Handoff{
		BusinessID:     conv.BusinessID,
		ConversationID: conv.ID,
		UserID:         conv.UserID,
		TeamID:         team.ID,
		Status:         HandoffWaiting,
		DueAt:          h.now().Add(time.Duration(countdown) * time.Second),
	}
	if err := h.cfg.Store.CreateHandoff(ctx, &ho); err != nil {
		if errors.Is(err, ErrConflict) {
			// A concurrent request won; answer with its handoff.
			if live, lerr := h.cfg.Store.LiveHandoff(ctx, conv.ID); lerr == nil {
				return live, nil
			}
		}
		return Handoff{}, fmt.Errorf("ivr: create handoff: %w", err)
	}
	h.count(handoffRequested, 1)
	h.log.LogAttrs(ctx, slog.LevelInfo, "chat sent to a team", slog.Int64("conversation_id", conv.ID),
		slog.Int64("team_id", team.ID), slog.Int("countdown_s", countdown))
	return ho, nil
}

// RequestNow queues conversation conv for the business's first active team
// at once, without a countdown: the bot's own "talk to an agent" node. With
// no active team it does nothing and returns false.
func (h *Handoffs) RequestNow(ctx context.Context, conv Conversation) (bool, error) {
	team, ok, err := h.DefaultTeam(ctx, conv.BusinessID)
	if err != nil || !ok {
		return false, err
	}
	ho, err := h.Request(ctx, conv, team, MinCountdown)
	if err != nil {
		return false, err
	}
	if ho.Status == HandoffWaiting {
		if _, err := h.cfg.Store.MoveHandoff(ctx, ho.ID, []HandoffStatus{HandoffWaiting}, HandoffQueued, 0); err != nil {
			return false, fmt.Errorf("ivr: queue handoff: %w", err)
		}
		h.count(handoffBotNode, 1)
	}
	return true, nil
}

// Transferred records that the caller of call (on voice channel ch) was
// transferred to a team's number: a live handoff in status phone and the
// conversation's state agent. A caller who pressed for an agent before
// saying anything gets a conversation for it.
func (h *Handoffs) Transferred(ctx context.Context, call Call, ch Channel) error {
	conv := Conversation{ID: call.ConversationID, BusinessID: call.BusinessID, UserID: call.UserID}
	if call.BusinessID == 0 {
		return nil
	}
	if conv.ID == 0 {
		u, err := h.cfg.Store.EnsureUser(ctx, call.BusinessID, ch, callerKey(call), true)
		if err != nil {
			return fmt.Errorf("ivr: caller: %w", err)
		}
		if conv, err = h.cfg.Store.OpenConversation(ctx, call.BusinessID, u.ID); err != nil {
			return fmt.Errorf("ivr: caller's conversation: %w", err)
		}
	}
	team, ok, err := h.DefaultTeam(ctx, conv.BusinessID)
	if err != nil {
		return err
	}
	live, err := h.cfg.Store.LiveHandoff(ctx, conv.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		if !ok {
			// No team: the connection's agent number took the call.
			if err := h.cfg.Store.SetHandoff(ctx, conv.ID, HandoffAgent); err != nil {
				return fmt.Errorf("ivr: record transfer: %w", err)
			}
			h.count(handoffPhone, 1)
			return nil
		}
		live = Handoff{BusinessID: conv.BusinessID, ConversationID: conv.ID, UserID: conv.UserID,
			TeamID: team.ID, Status: HandoffPhone, DueAt: h.now()}
		if err := h.cfg.Store.CreateHandoff(ctx, &live); err != nil {
			return fmt.Errorf("ivr: create handoff: %w", err)
		}
		h.count(handoffPhone, 1)
		return nil
	case err != nil:
		return fmt.Errorf("ivr: live handoff: %w", err)
	}
	_, err = h.cfg.Store.MoveHandoff(ctx, live.ID, []HandoffStatus{HandoffWaiting, HandoffQueued, HandoffTaken}, HandoffPhone, live.AgentID)
	switch {
	case err == nil:
		h.count(handoffPhone, 1)
	case !errors.Is(err, ErrHandoffState):
		return fmt.Errorf("ivr: record transfer: %w", err)
	}
	return nil
}

// DefaultTeam returns the business's first active team (lowest id).
func (h *Handoffs) DefaultTeam(ctx context.Context, businessID int64) (Team, bool, error) {
	teams, err := h.cfg.Store.ListTeams(ctx, businessID)
	if err != nil {
		return Team{}, false, fmt.Errorf("ivr: list teams: %w", err)
	}
	for _, t := range teams {
		if t.Active {
			return t, true, nil
		}
	}
	return Team{}, false, nil
}

// TransferNumber returns the number a caller of the business is
// transferred to: its first active team's number, else fallback (the
// connection's agent number).
func (h *Handoffs) TransferNumber(ctx context.Context, businessID int64, fallback string) string {
	team, ok, err := h.DefaultTeam(ctx, businessID)
	if err != nil || !ok || strings.TrimSpace(team.Number) == "" {
		return fallback
	}
	return team.Number
}

// MoveDue queues every handoff whose countdown ended by now; it returns
// how many moved.
func (h *Handoffs) MoveDue(ctx context.Context) (int, error) {
	n := 0
	for {
		moved, err := h.cfg.Store.QueueDueHandoffs(ctx, h.now(), 100)
		if err != nil {
			return n, fmt.Errorf("ivr: queue due handoffs: %w", err)
		}
		n += len(moved)
		h.count(handoffQueued, len(moved))
		for _, ho := range moved {
			h.log.LogAttrs(ctx, slog.LevelInfo, "chat queued for a team", slog.Int64("handoff_id", ho.ID),
				slog.Int64("conversation_id", ho.ConversationID), slog.Int64("team_id", ho.TeamID))
		}
		if len(moved) < 100 {
			return n, nil
		}
	}
}

// Run queues due handoffs until ctx ends. The due times live in the store,
// so a restarted koel queues what was due while it was down.
func (h *Handoffs) Run(ctx context.Context) {
	t := time.NewTicker(h.cfg.Poll)
	defer t.Stop()
	for {
		if _, err := h.MoveDue(ctx); err != nil && ctx.Err() == nil {
			h.log.LogAttrs(ctx, slog.LevelError, "queueing due handoffs failed", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Chat returns handoff id of the business.
func (h *Handoffs) Chat(ctx context.Context, businessID, id int64) (Handoff, error) {
	ho, err := h.cfg.Store.GetHandoff(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && ho.BusinessID != businessID) {
		return Handoff{}, ErrHandoffNotFound
	}
	if err != nil {
		return Handoff{}, fmt.Errorf("ivr: get handoff: %w", err)
	}
	return ho, nil
}

// agent finds an active agent of the business by name.
func (h *Handoffs) agent(ctx context.Context, businessID int64, name string) (Agent, error) {
	a, err := h.cfg.Store.GetAgentByName(ctx, businessID, strings.TrimSpace(name))
	if errors.Is(err, ErrNotFound) || (err == nil && !a.Active) {
		return Agent{}, &HandoffError{Status: 404, Message: "invalid agent_name provided"}
	}
	if err != nil {
		return Agent{}, fmt.Errorf("ivr: get agent: %w", err)
	}
	return a, nil
}

// Take gives a queued chat to the named agent; the conversation's state
// becomes agent. Taking a chat the same agent holds is not an error.
func (h *Handoffs) Take(ctx context.Context, businessID, id int64, agentName string) (Handoff, error) {
	a, err := h.agent(ctx, businessID, agentName)
	if err != nil {
		return Handoff{}, err
	}
	ho, err := h.Chat(ctx, businessID, id)
	if err != nil {
		return Handoff{}, err
	}
	if ho.Status == HandoffTaken && ho.AgentID == a.ID {
		return ho, nil
	}
	taken, err := h.cfg.Store.MoveHandoff(ctx, id, []HandoffStatus{HandoffQueued}, HandoffTaken, a.ID)
	if err == nil {
		h.count(handoffTaken, 1)
	}
	return taken, err
}

// HandBack closes the chat: the bot answers the conversation again.
func (h *Handoffs) HandBack(ctx context.Context, businessID, id int64) (Handoff, error) {
	if _, err := h.Chat(ctx, businessID, id); err != nil {
		return Handoff{}, err
	}
	back, err := h.cfg.Store.MoveHandoff(ctx, id, []HandoffStatus{HandoffWaiting, HandoffQueued, HandoffTaken, HandoffPhone}, HandoffClosed, 0)
	if err == nil {
		h.count(handoffBack, 1)
	}
	return back, err
}

// SendAsAgent stores text as a message of the agent who holds the chat
// (sender "agent(<name>)") and, in the same transaction, the outbox items
// that carry it to the user over their own channel.
func (h *Handoffs) SendAsAgent(ctx context.Context, businessID, id int64, agentName, text string) (Message, error) {
	a, err := h.agent(ctx, businessID, agentName)
	if err != nil {
		return Message{}, err
	}
	if strings.TrimSpace(text) == "" {
		return Message{}, Invalid("text", "is empty")
	}
	if err := CheckText("text", text, MaxTextBytes); err != nil {
		return Message{}, err
	}
	ho, err := h.Chat(ctx, businessID, id)
	if err != nil {
		return Message{}, err
	}
	if ho.Status != HandoffTaken || ho.AgentID != a.ID {
		return Message{}, &HandoffError{Status: 409, Message: "the chat is not taken by this agent"}
	}
	user, err := h.cfg.Store.GetUserByID(ctx, ho.UserID)
	if err != nil {
		return Message{}, fmt.Errorf("ivr: get user: %w", err)
	}
	conn, err := h.route(ctx, businessID, user.Channel)
	if err != nil {
		return Message{}, err
	}
	if h.cfg.Deliver == nil {
		return Message{}, ErrNoRoute
	}
	msg := &Message{
		BusinessID:     businessID,
		ConversationID: ho.ConversationID,
		UserID:         user.ID,
		Sender:         AgentSender(a.Name),
		Text:           text,
		Channel:        user.Channel,
	}
	now := h.now()
	err = h.cfg.Store.AppendMessagesThen(ctx, []*Message{msg}, func(stored []*Message) ([]*OutboxItem, error) {
		return h.cfg.Deliver(conn, user, stored[0], now)
	})
	if err != nil {
		return Message{}, fmt.Errorf("ivr: store agent message: %w", err)
	}
	if h.cfg.Notifier != nil {
		h.cfg.Notifier.Notify()
	}
	return *msg, nil
}

// route finds the business's active connection on channel.
func (h *Handoffs) route(ctx context.Context, businessID int64, ch Channel) (Connection, error) {
	conns, err := h.cfg.Store.ListConnections(ctx, businessID)
	if err != nil {
		return Connection{}, fmt.Errorf("ivr: list connections: %w", err)
	}
	for _, c := range conns {
		if c.Channel == ch && c.Active {
			return c, nil
		}
	}
	return Connection{}, ErrNoRoute
}
