package ivr

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/koelvoice/koel/ivr/bot"
)

// Errors of [Engine.Handle].
var (
	// ErrUserNotRegistered means the user is unknown and the inbound asked
	// for registered users only (webhook API: 403 "user is not registered").
	ErrUserNotRegistered = errors.New("ivr: user is not registered")
	// ErrEmptyText means the inbound message has no text.
	ErrEmptyText = errors.New("ivr: empty message text")
	// ErrTextTooLong means the inbound text exceeds [MaxTextBytes].
	ErrTextTooLong = errors.New("ivr: message text too long")
)

// MaxTextBytes caps the text of one inbound message.
const MaxTextBytes = 4096

// DefaultBreakMessage answers when the bot fails and the connection has no
// break message of its own.
const DefaultBreakMessage = "Sorry, I am having trouble right now. Please try again in a moment."

// DefaultBotTimeout bounds one bot reply when [EngineConfig.BotTimeout] is zero.
const DefaultBotTimeout = 3 * time.Second

// EngineStore is what the engine needs from the store.
type EngineStore interface {
	GetUser(ctx context.Context, businessID int64, channel Channel, externalID string) (User, error)
	EnsureUser(ctx context.Context, businessID int64, channel Channel, externalID string, registered bool) (User, error)
	AppendInbound(ctx context.Context, user User, m *Message) (User, Conversation, error)
	AppendMessages(ctx context.Context, msgs []*Message, outbox []*OutboxItem) error
	AppendMessagesThen(ctx context.Context, msgs []*Message, then func(stored []*Message) ([]*OutboxItem, error)) error
	GetMessageByExternalID(ctx context.Context, businessID int64, channel Channel, externalID string) (Message, error)
	GetBusiness(ctx context.Context, id int64) (Business, error)
}

// Deliverer turns a reply into the deliveries a channel owes the platform
// (for channels that answer asynchronously). The engine calls it inside the
// transaction that stores the reply, with the messages' IDs set, and stores
// the items in that same transaction: a reply is never stored without its
// delivery, nor delivered without being stored.
type Deliverer interface {
	Deliveries(in Inbound, user User, conv Conversation, reply []*Message) ([]*OutboxItem, error)
}

// Inbound is one user message from any channel.
type Inbound struct {
	BusinessID int64
	// Connection is the channel connection the message came through; its
	// BreakMessage answers bot failures. Zero for the bot API.
	Connection Connection
	Channel    Channel
	// UserExternalID is the platform's id of the user (auth_id, caller
	// number, PSID, phone number).
	UserExternalID string
	Text           string
	// ExternalMessageID is the platform's id of the message, when it has
	// one; a second delivery of the same id is answered as a duplicate.
	ExternalMessageID string
	// Voice is true when Text is a transcript of speech.
	Voice bool
	// RequireRegistered refuses unknown or unregistered users with
	// [ErrUserNotRegistered] instead of creating them.
	RequireRegistered bool
	// Deliver, when set, adds outbox items for the reply.
	Deliver Deliverer
	// StoreOnly stores the inbound message without asking the bot (words
	// a caller said while hanging up, a yes to a confirmation): the reply
	// has no messages.
	StoreOnly bool
	// HoldReply asks the bot but stores only the inbound message: the
	// caller (the voice service) decides what is spoken and stores it with
	// [Engine.Said].
	HoldReply bool
	// Alternatives are the recogniser's N-best hypotheses of a voice
	// message, best first (see bot.Request.Alternatives).
	Alternatives []bot.Alternative
	// Lattice is the recogniser's word-lattice evidence of a voice
	// message (see bot.Request.Lattice).
	Lattice []bot.WordCount
}

// Reply is the engine's answer to one [Inbound].
type Reply struct {
	Messages   []bot.Message
	Node       string
	Confidence float64
	// Topic is the answering node's short title (bot.Response.Topic).
	Topic string
	// Support and Words: how many of the text's content words the answer
	// rests on, of how many (bot.Response.Support, Words).
	Support, Words int
	Handoff        bool
	Fallback       bool
	// Collect is set when the reply asks for a value (bot.Response.Collect).
	Collect *bot.Collect
	// Failed is true when the bot failed or timed out and Messages hold the
	// break message; FailReason says why ("timeout", "error").
	Failed     bool
	FailReason string
	// Duplicate is true when the inbound's ExternalMessageID was seen
	// before: nothing was stored or asked, InboundID is the first copy's.
	Duplicate bool
	// Suppressed is true when an agent owns the conversation: the inbound
	// was stored, the bot was not asked and Messages is empty.
	Suppressed bool

	User         User
	Conversation Conversation
	Inbound      Message
	// Stored are the reply messages as stored, in order.
	Stored []Message
}

// EngineConfig configures an [Engine].
type EngineConfig struct {
	Store EngineStore
	Bot   bot.Bot
	// BotTimeout bounds one bot reply (0 = DefaultBotTimeout).
	BotTimeout time.Duration
	// BreakMessage answers bot failures when the connection has none
	// ("" = DefaultBreakMessage).
	BreakMessage string
	Logger       *slog.Logger
	Metrics      *Metrics
	// Now returns the current time (nil = time.Now).
	Now func() time.Time
	// Handoff, when set, queues a conversation whose bot reply asked for a
	// human agent (the "talk to an agent" node) for the business's team;
	// from then on the bot stays silent in it (*Handoffs).
	Handoff TextHandoff
	// TracerProvider, when set, gets a span per turn (SpanEngineTurn, with
	// SpanBot); nil traces nothing.
	TracerProvider trace.TracerProvider
}

// TextHandoff queues a conversation for a human agent at once.
type TextHandoff interface {
	RequestNow(ctx context.Context, conv Conversation) (bool, error)
}

// Engine runs one turn of any conversation: find or create the user and the
// open conversation, store the inbound message, ask the bot with a deadline,
// store the reply (with its deliveries) and return it.
//
// Messages of one user are handled in arrival order within a process: the
// engine serializes turns per (business, channel, user) with a striped lock,
// so a fast second message cannot overtake a slow first one.
type Engine struct {
	store        EngineStore
	bot          bot.Bot
	botTimeout   time.Duration
	breakMessage string
	log          *slog.Logger
	metrics      *Metrics
	now          func() time.Time
	handoff      TextHandoff
	tracer       trace.Tracer

	seed    maphash.Seed
	stripes [256]sync.Mutex
}

// NewEngine returns an engine. Store and Bot are required.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errors.New("ivr: engine needs a store")
	}
	if cfg.Bot == nil {
		return nil, errors.New("ivr: engine needs a bot")
	}
	e := &Engine{
		store:        cfg.Store,
		bot:          cfg.Bot,
		botTimeout:   cfg.BotTimeout,
		breakMessage: cfg.BreakMessage,
		log:          cfg.Logger,
		metrics:      cfg.Metrics,
		now:          cfg.Now,
		handoff:      cfg.Handoff,
		tracer:       tracerFrom(cfg.TracerProvider),
		seed:         maphash.MakeSeed(),
	}
	if e.botTimeout <= 0 {
		e.botTimeout = DefaultBotTimeout
	}
	if e.breakMessage == "" {
		e.breakMessage = DefaultBreakMessage
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	return e, nil
}

func (e *Engine) lockUser(in Inbound) func() {
	var h maphash.Hash
	h.SetSeed(e.seed)
	h.WriteString(strconv.FormatInt(in.BusinessID, 10))
	h.WriteString(string(in.Channel))
	h.WriteString(in.UserExternalID)
	mu := &e.stripes[h.Sum64()%uint64(len(e.stripes))]
	mu.Lock()
	return mu.Unlock
}

// Handle runs one turn. A bot failure is not an error: the reply then holds
// the break message and Failed is set. Errors are store failures and invalid
// input ([ErrEmptyText], [ErrTextTooLong], an [*InputError] for a NUL byte
// or invalid UTF-8 in the text or ids, [ErrUserNotRegistered]); invalid input
// is refused before anything is written, and on any error nothing of the
// reply was stored.
func (e *Engine) Handle(ctx context.Context, in Inbound) (_ Reply, err error) {
	start := e.now()
	ctx, span := e.tracer.Start(ctx, SpanEngineTurn, trace.WithAttributes(
		AttrChannel.String(string(in.Channel)), AttrBusinessID.Int64(in.BusinessID)))
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	if err := CheckInbound(in); err != nil {
		return Reply{}, err
	}
	unlock := e.lockUser(in)
	defer unlock()

	if in.ExternalMessageID != "" {
		prev, err := e.store.GetMessageByExternalID(ctx, in.BusinessID, in.Channel, in.ExternalMessageID)
		if err == nil {
			e.metrics.duplicate(in.Channel)
			return Reply{Duplicate: true, Inbound: prev}, nil
		}
		if !isNotFound(err) {
			return Reply{}, fmt.Errorf("ivr: dedupe lookup: %w", err)
		}
	}

	user, err := e.user(ctx, in)
	if err != nil {
		return Reply{}, err
	}
	inbound := &Message{
		BusinessID: in.BusinessID,
		Sender:     SenderUser,
		Text:       in.Text,
		Channel:    in.Channel,
		ExternalID: in.ExternalMessageID,
	}
	// One transaction creates the user and the conversation when they are
	// new and stores the message.
	user, conv, err := e.store.AppendInbound(ctx, user, inbound)
	if err == nil {
		span.SetAttributes(AttrConversationID.Int64(conv.ID))
	} else {
		if isConflict(err) && in.ExternalMessageID != "" {
			// A concurrent delivery of the same platform message won.
			prev, gerr := e.store.GetMessageByExternalID(ctx, in.BusinessID, in.Channel, in.ExternalMessageID)
			if gerr == nil {
				e.metrics.duplicate(in.Channel)
				return Reply{Duplicate: true, Inbound: prev}, nil
			}
		}
		return Reply{}, fmt.Errorf("ivr: store inbound message: %w", err)
	}
	e.metrics.message(in.Channel, SenderUser)

	reply := Reply{User: user, Conversation: conv, Inbound: *inbound}
	if in.StoreOnly {
		return reply, nil
	}
	if conv.Handoff != HandoffBot && conv.Handoff != "" {
		reply.Suppressed = true
		return reply, nil
	}

	resp, failReason := e.ask(ctx, in, user, conv)
	if failReason != "" {
		reply.Failed, reply.FailReason = true, failReason
		text := in.Connection.Settings.BreakMessage
		if text == "" {
			text = e.breakMessage
		}
		resp = bot.Response{Messages: []bot.Message{{Text: text}}}
	}
	reply.Messages = resp.Messages
	reply.Node, reply.Confidence, reply.Topic = resp.Node, resp.Confidence, resp.Topic
	reply.Support, reply.Words = resp.Support, resp.Words
	reply.Handoff, reply.Fallback = resp.Handoff, resp.Fallback
	reply.Collect = resp.Collect
	if in.HoldReply {
		e.metrics.turn(in.Channel, e.now().Sub(start))
		return reply, nil
	}

	out := make([]*Message, 0, len(resp.Messages))
	for _, m := range resp.Messages {
		out = append(out, &Message{
			BusinessID:     in.BusinessID,
			ConversationID: conv.ID,
			UserID:         user.ID,
			Sender:         SenderBot,
			Text:           m.Text,
			QuickReplies:   m.QuickReplies,
			Channel:        in.Channel,
			Node:           resp.Node,
			Confidence:     resp.Confidence,
		})
	}
	if len(out) > 0 {
		var then func([]*Message) ([]*OutboxItem, error)
		if in.Deliver != nil {
			then = func(stored []*Message) ([]*OutboxItem, error) {
				return in.Deliver.Deliveries(in, user, conv, stored)
			}
		}
		var err error
		if then != nil {
			err = e.store.AppendMessagesThen(ctx, out, then)
		} else {
			err = e.store.AppendMessages(ctx, out, nil)
		}
		if err != nil {
			return Reply{}, fmt.Errorf("ivr: store reply: %w", err)
		}
	}
	for _, m := range out {
		reply.Stored = append(reply.Stored, *m)
		e.metrics.message(in.Channel, SenderBot)
	}
	if resp.Handoff && e.handoff != nil {
		// The reply is stored and owed; a failure to queue leaves the
		// bot answering, which the user can ask again.
		if _, err := e.handoff.RequestNow(ctx, conv); err != nil {
			e.log.LogAttrs(ctx, slog.LevelError, "queue for an agent failed",
				slog.Int64("conversation_id", conv.ID), slog.String("error", err.Error()))
		}
	}
	e.metrics.turn(in.Channel, e.now().Sub(start))
	return reply, nil
}

// user returns the sender of in: the stored, registered user when in
// requires one, else the user's key (ID 0) for AppendInbound to find or
// create.
func (e *Engine) user(ctx context.Context, in Inbound) (User, error) {
	if in.RequireRegistered {
		u, err := e.store.GetUser(ctx, in.BusinessID, in.Channel, in.UserExternalID)
		if isNotFound(err) || (err == nil && !u.Registered) {
			return User{}, ErrUserNotRegistered
		}
		if err != nil {
			return User{}, fmt.Errorf("ivr: get user: %w", err)
		}
		return u, nil
	}
	return User{BusinessID: in.BusinessID, Channel: in.Channel, ExternalID: in.UserExternalID, Registered: true}, nil
}

// ask calls the bot under the engine's deadline. It returns a fail reason
// ("timeout" or "error") instead of an error: bot failures become break
// messages, not request failures.
func (e *Engine) ask(ctx context.Context, in Inbound, user User, conv Conversation) (bot.Response, string) {
	ctx, cancel := context.WithTimeout(ctx, e.botTimeout)
	defer cancel()
	ctx, span := e.tracer.Start(ctx, SpanBot, trace.WithAttributes(AttrConversationID.Int64(conv.ID)))
	defer span.End()
	start := e.now()
	resp, err := e.bot.Reply(ctx, bot.Request{
		BusinessID:     in.BusinessID,
		UserID:         user.ExternalID,
		ConversationID: conv.ID,
		Text:           in.Text,
		Voice:          in.Voice,
		Alternatives:   in.Alternatives,
		Lattice:        in.Lattice,
	})
	e.metrics.botLatency(e.now().Sub(start))
	if err == nil && len(resp.Messages) == 0 && resp.Fallback {
		// The bot did not understand and left the wording to the
		// business (remote bots answer an empty list).
		var b Business
		if b, err = e.store.GetBusiness(ctx, in.BusinessID); err == nil && b.FallbackMessage != "" {
			resp.Messages = []bot.Message{{Text: b.FallbackMessage}}
		}
	}
	if err == nil && len(resp.Messages) == 0 {
		err = errors.New("bot returned no messages")
	}
	if err == nil {
		if resp.Fallback {
			e.metrics.fallback(in.Channel)
		}
		return resp, ""
	}
	reason := "error"
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		reason = "timeout"
	}
	span.SetStatus(codes.Error, reason)
	e.metrics.botFailure(reason)
	e.log.LogAttrs(ctx, slog.LevelWarn, "bot failed; answering with the break message",
		slog.Int64("business_id", in.BusinessID),
		slog.Int64("conversation_id", conv.ID),
		slog.String("reason", reason),
		slog.String("error", err.Error()))
	return bot.Response{}, reason
}

// Said stores what a voice call said to the caller after a turn whose
// reply was held ([Inbound].HoldReply): the bot messages, in the order
// spoken, each carrying the node and confidence of the answer it belongs
// to. It counts them like the engine's own replies.
func (e *Engine) Said(ctx context.Context, msgs []*Message) error {
	if len(msgs) == 0 {
		return nil
	}
	for _, m := range msgs {
		if m.Sender == "" {
			m.Sender = SenderBot
		}
	}
	if err := e.store.AppendMessages(ctx, msgs, nil); err != nil {
		return fmt.Errorf("ivr: store spoken messages: %w", err)
	}
	for _, m := range msgs {
		e.metrics.message(m.Channel, m.Sender)
	}
	return nil
}
