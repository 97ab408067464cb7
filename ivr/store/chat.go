package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/koelvoice/koel/ivr"
)

// Businesses, connections, users, conversations and messages.

const businessCols = `id, name, token_hash, client_id, fallback_message, faq_version, active, created_at, bot_kind, bot_url`

func scanBusiness(r rowScanner) (ivr.Business, error) {
	var b ivr.Business
	err := r.Scan(&b.ID, &b.Name, bytesCol{&b.TokenHash}, &b.ClientID, &b.FallbackMessage,
		&b.FAQVersion, &b.Active, timeCol{&b.CreatedAt}, &b.Bot, &b.BotURL)
	return b, err
}

func validateBusiness(b ivr.Business) error {
	var v validator
	if b.ID < 0 {
		v.fail("business id %d is negative", b.ID)
	}
	v.text("name", b.Name, MaxKeyBytes)
	v.text("client id", b.ClientID, MaxKeyBytes)
	v.text("fallback message", b.FallbackMessage, MaxTextBytes)
	if len(b.TokenHash) > MaxKeyBytes {
		v.fail("token hash is %d bytes (limit %d)", len(b.TokenHash), MaxKeyBytes)
	}
	switch b.Bot {
	case ivr.BotDefault, ivr.BotFAQ, ivr.BotRemote:
	default:
		v.fail("bot kind %.32q is not faq or remote", b.Bot)
	}
	if b.Bot == ivr.BotRemote && b.BotURL == "" {
		v.fail("a remote bot needs a bot url")
	}
	v.text("bot url", b.BotURL.Reveal(), MaxURLBytes)
	return v.err
}

// CreateBusiness implements [Store].
func (s *sqlStore) CreateBusiness(ctx context.Context, b *ivr.Business) error {
	if err := validateBusiness(*b); err != nil {
		return fmt.Errorf("create business: %w", err)
	}
	now := s.clock()
	var id int64
	err := s.inTx(ctx, "create business", func(c conn) error {
		if b.ID != 0 {
			if _, err := c.exec(ctx, `INSERT INTO businesses (`+businessCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				b.ID, b.Name, bytesValue(b.TokenHash), b.ClientID, b.FallbackMessage, b.FAQVersion, b.Active, timeValue(now),
				string(b.Bot), b.BotURL.Reveal()); err != nil {
				return err
			}
			id = b.ID
			if s.d.syncIdentity != nil {
				return s.d.syncIdentity(ctx, c.tx, "businesses")
			}
			return nil
		}
		return c.row(ctx, `INSERT INTO businesses (name, token_hash, client_id, fallback_message, faq_version, active, created_at, bot_kind, bot_url)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			b.Name, bytesValue(b.TokenHash), b.ClientID, b.FallbackMessage, b.FAQVersion, b.Active, timeValue(now),
			string(b.Bot), b.BotURL.Reveal()).Scan(&id)
	})
	if err != nil {
		return err
	}
	b.ID, b.CreatedAt = id, now
	return nil
}

// GetBusiness implements [Store].
func (s *sqlStore) GetBusiness(ctx context.Context, id int64) (ivr.Business, error) {
	return getRow(ctx, s, s.reader(), fmt.Sprintf("get business %d", id), scanBusiness,
		`SELECT `+businessCols+` FROM businesses WHERE id = ?`, id)
}

// UpdateBusiness implements [Store].
func (s *sqlStore) UpdateBusiness(ctx context.Context, b ivr.Business) error {
	op := fmt.Sprintf("update business %d", b.ID)
	if err := validateBusiness(b); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	res, err := s.writer().exec(ctx, `UPDATE businesses SET name = ?, token_hash = ?, client_id = ?, fallback_message = ?, active = ?, bot_kind = ?, bot_url = ? WHERE id = ?`,
		b.Name, bytesValue(b.TokenHash), b.ClientID, b.FallbackMessage, b.Active, string(b.Bot), b.BotURL.Reveal(), b.ID)
	return s.mustAffect(op, res, err)
}

// mustAffect turns "no row changed" into ErrNotFound.
func (s *sqlStore) mustAffect(op string, res interface{ RowsAffected() (int64, error) }, err error) error {
	if err != nil {
		return s.fail(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.fail(op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return nil
}

const connectionCols = `id, business_id, channel, identifier, active, settings, created_at`

func scanConnection(r rowScanner) (ivr.Connection, error) {
	var c ivr.Connection
	err := r.Scan(&c.ID, &c.BusinessID, &c.Channel, &c.Identifier, &c.Active, settingsCol{&c.Settings}, timeCol{&c.CreatedAt})
	return c, err
}

// CreateConnection implements [Store].
func (s *sqlStore) CreateConnection(ctx context.Context, cn *ivr.Connection) error {
	op := fmt.Sprintf("create connection %s/%s", cn.Channel, cn.Identifier)
	var v validator
	v.id("business", cn.BusinessID)
	v.key("channel", string(cn.Channel))
	v.key("identifier", cn.Identifier)
	v.settings(cn.Settings)
	if v.err != nil {
		return fmt.Errorf("create connection: %w", v.err)
	}
	now := s.clock()
	var id int64
	err := s.writer().row(ctx, `INSERT INTO connections (business_id, channel, identifier, active, settings, created_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		cn.BusinessID, string(cn.Channel), cn.Identifier, cn.Active, settingsCol{&cn.Settings}, timeValue(now)).Scan(&id)
	if err != nil {
		return s.fail(op, err)
	}
	cn.ID, cn.CreatedAt = id, now
	return nil
}

// UpdateConnection implements [Store].
func (s *sqlStore) UpdateConnection(ctx context.Context, cn ivr.Connection) error {
	op := fmt.Sprintf("update connection %d", cn.ID)
	var v validator
	v.settings(cn.Settings)
	if v.err != nil {
		return fmt.Errorf("%s: %w", op, v.err)
	}
	res, err := s.writer().exec(ctx, `UPDATE connections SET active = ?, settings = ? WHERE id = ?`,
		cn.Active, settingsCol{&cn.Settings}, cn.ID)
	return s.mustAffect(op, res, err)
}

// GetConnection implements [Store].
func (s *sqlStore) GetConnection(ctx context.Context, channel ivr.Channel, identifier string) (ivr.Connection, error) {
	return getRow(ctx, s, s.reader(), fmt.Sprintf("get connection %.64q/%.64q", channel, identifier), scanConnection,
		`SELECT `+connectionCols+` FROM connections WHERE channel = ? AND identifier = ?`, string(channel), identifier)
}

// GetConnectionByID implements [Store].
func (s *sqlStore) GetConnectionByID(ctx context.Context, id int64) (ivr.Connection, error) {
	return getRow(ctx, s, s.reader(), fmt.Sprintf("get connection %d", id), scanConnection,
		`SELECT `+connectionCols+` FROM connections WHERE id = ?`, id)
}

// ListConnections implements [Store].
func (s *sqlStore) ListConnections(ctx context.Context, businessID int64) ([]ivr.Connection, error) {
	return listRows(ctx, s, s.reader(), fmt.Sprintf("list connections of business %d", businessID), scanConnection,
		`SELECT `+connectionCols+` FROM connections WHERE business_id = ? ORDER BY id`, businessID)
}

const userCols = `id, business_id, channel, external_id, registered, created_at`

func scanUser(r rowScanner) (ivr.User, error) {
	var u ivr.User
	err := r.Scan(&u.ID, &u.BusinessID, &u.Channel, &u.ExternalID, &u.Registered, timeCol{&u.CreatedAt})
	return u, err
}

func validateUserKey(businessID int64, channel ivr.Channel, externalID string) error {
	var v validator
	v.id("business", businessID)
	v.key("channel", string(channel))
	v.key("external id", externalID)
	return v.err
}

// GetUser implements [Store]. External ids (phone numbers) are kept out
// of error messages.
func (s *sqlStore) GetUser(ctx context.Context, businessID int64, channel ivr.Channel, externalID string) (ivr.User, error) {
	return getRow(ctx, s, s.reader(), fmt.Sprintf("get user of business %d on %.64q", businessID, channel), scanUser,
		`SELECT `+userCols+` FROM users WHERE business_id = ? AND channel = ? AND external_id = ?`,
		businessID, string(channel), externalID)
}

// EnsureUser implements [Store]. The common case, an existing user, is one
// read; a new user is one upsert whose no-op update returns the row a
// concurrent caller may have inserted first.
func (s *sqlStore) EnsureUser(ctx context.Context, businessID int64, channel ivr.Channel, externalID string, registered bool) (ivr.User, error) {
	op := fmt.Sprintf("ensure user of business %d on %.64q", businessID, channel)
	if err := validateUserKey(businessID, channel, externalID); err != nil {
		return ivr.User{}, fmt.Errorf("%s: %w", op, err)
	}
	u, err := s.GetUser(ctx, businessID, channel, externalID)
	if !errors.Is(err, ErrNotFound) {
		return u, err
	}
	return getRow(ctx, s, s.writer(), op, scanUser,
		`INSERT INTO users (business_id, channel, external_id, registered, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (business_id, channel, external_id) DO UPDATE SET registered = users.registered
		RETURNING `+userCols,
		businessID, string(channel), externalID, registered, timeValue(s.clock()))
}

// RegisterUser implements [Store].
func (s *sqlStore) RegisterUser(ctx context.Context, businessID int64, channel ivr.Channel, externalID string) (ivr.User, error) {
	op := fmt.Sprintf("register user of business %d on %.64q", businessID, channel)
	if err := validateUserKey(businessID, channel, externalID); err != nil {
		return ivr.User{}, fmt.Errorf("%s: %w", op, err)
	}
	return getRow(ctx, s, s.writer(), op, scanUser,
		`INSERT INTO users (business_id, channel, external_id, registered, created_at) VALUES (?, ?, ?, TRUE, ?)
		ON CONFLICT (business_id, channel, external_id) DO UPDATE SET registered = TRUE
		RETURNING `+userCols,
		businessID, string(channel), externalID, timeValue(s.clock()))
}

// GetUserByID implements [Store].
func (s *sqlStore) GetUserByID(ctx context.Context, id int64) (ivr.User, error) {
	return getRow(ctx, s, s.reader(), fmt.Sprintf("get user %d", id), scanUser,
		`SELECT `+userCols+` FROM users WHERE id = ?`, id)
}

const conversationCols = `id, business_id, user_id, conversation_no, open, handoff, created_at, closed_at`

func scanConversation(r rowScanner) (ivr.Conversation, error) {
	var c ivr.Conversation
	err := r.Scan(&c.ID, &c.BusinessID, &c.UserID, &c.ConversationNo, &c.Open, &c.Handoff,
		timeCol{&c.CreatedAt}, timeCol{&c.ClosedAt})
	return c, err
}

const openConversationQuery = `SELECT ` + conversationCols + ` FROM conversations WHERE business_id = ? AND user_id = ? AND open`

// openConversationAttempts bounds the retries of OpenConversation when a
// concurrent caller on another connection (PostgreSQL) created the
// conversation first.
const openConversationAttempts = 3

// OpenConversation implements [Store]. The unique partial index on open
// conversations makes it race-free: of two concurrent creators one
// conflicts, and then reads the winner's conversation.
func (s *sqlStore) OpenConversation(ctx context.Context, businessID, userID int64) (ivr.Conversation, error) {
	op := fmt.Sprintf("open conversation of business %d user %d", businessID, userID)
	var v validator
	v.id("business", businessID)
	v.id("user", userID)
	if v.err != nil {
		return ivr.Conversation{}, fmt.Errorf("%s: %w", op, v.err)
	}
	conv, err := getRow(ctx, s, s.reader(), op, scanConversation, openConversationQuery, businessID, userID)
	if !errors.Is(err, ErrNotFound) {
		return conv, err
	}
	for attempt := 1; ; attempt++ {
		err = s.inTx(ctx, op, func(c conn) error {
			conv, err = s.openConversationTx(ctx, c, businessID, userID, s.clock())
			return err
		})
		if err == nil || !errors.Is(err, ErrConflict) || attempt == openConversationAttempts {
			return conv, err
		}
	}
}

// GetConversation implements [Store].
func (s *sqlStore) GetConversation(ctx context.Context, id int64) (ivr.Conversation, error) {
	return getRow(ctx, s, s.reader(), fmt.Sprintf("get conversation %d", id), scanConversation,
		`SELECT `+conversationCols+` FROM conversations WHERE id = ?`, id)
}

// GetConversationByNo implements [Store].
func (s *sqlStore) GetConversationByNo(ctx context.Context, userID, conversationNo int64) (ivr.Conversation, error) {
	return getRow(ctx, s, s.reader(), fmt.Sprintf("get conversation %d of user %d", conversationNo, userID), scanConversation,
		`SELECT `+conversationCols+` FROM conversations WHERE user_id = ? AND conversation_no = ?`, userID, conversationNo)
}

// CloseConversation implements [Store].
func (s *sqlStore) CloseConversation(ctx context.Context, id int64) error {
	res, err := s.writer().exec(ctx, `UPDATE conversations SET open = FALSE, closed_at = COALESCE(closed_at, ?) WHERE id = ?`,
		timeValue(s.clock()), id)
	return s.mustAffect(fmt.Sprintf("close conversation %d", id), res, err)
}

// SetHandoff implements [Store].
func (s *sqlStore) SetHandoff(ctx context.Context, conversationID int64, state ivr.HandoffState) error {
	op := fmt.Sprintf("set handoff of conversation %d", conversationID)
	switch state {
	case ivr.HandoffBot, ivr.HandoffPending, ivr.HandoffAgent:
	default:
		return fmt.Errorf("%s: %w: unknown handoff state %.32q", op, ErrInvalid, state)
	}
	res, err := s.writer().exec(ctx, `UPDATE conversations SET handoff = ? WHERE id = ?`, string(state), conversationID)
	return s.mustAffect(op, res, err)
}

const messageCols = `id, business_id, conversation_id, user_id, sender, text, quick_replies, channel, external_id, node, confidence, created_at`

func scanMessage(r rowScanner) (ivr.Message, error) {
	var m ivr.Message
	err := r.Scan(&m.ID, &m.BusinessID, &m.ConversationID, &m.UserID, &m.Sender, &m.Text, listCol{&m.QuickReplies},
		&m.Channel, &m.ExternalID, &m.Node, &m.Confidence, timeCol{&m.CreatedAt})
	return m, err
}

func validateMessage(i int, m *ivr.Message) error {
	if m == nil {
		return fmt.Errorf("%w: message %d is nil", ErrInvalid, i)
	}
	var v validator
	v.id("business", m.BusinessID)
	v.id("conversation", m.ConversationID)
	v.key("sender", m.Sender)
	v.key("channel", string(m.Channel))
	v.text("text", m.Text, MaxTextBytes)
	v.list("quick replies", m.QuickReplies)
	v.text("external id", m.ExternalID, MaxKeyBytes)
	v.text("node", m.Node, MaxKeyBytes)
	if v.err != nil {
		return fmt.Errorf("message %d: %w", i, v.err)
	}
	return nil
}

// AppendMessages implements [Store]. IDs and times are set on the
// arguments only when the transaction committed.
func (s *sqlStore) AppendMessages(ctx context.Context, msgs []*ivr.Message, outbox []*ivr.OutboxItem) error {
	const op = "append messages"
	if err := validateOutboxItems(len(msgs), outbox); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if len(msgs) == 0 && len(outbox) == 0 {
		return nil
	}
	return s.appendMessages(ctx, op, msgs, func([]*ivr.Message) ([]*ivr.OutboxItem, error) { return outbox, nil })
}

// AppendMessagesThen implements [Store]. When the call fails, the
// messages' ID and CreatedAt are restored to what they were. then runs
// inside the write transaction: it must not call the store (on SQLite the
// single writer is busy with this transaction) and should be quick.
func (s *sqlStore) AppendMessagesThen(ctx context.Context, msgs []*ivr.Message, then func(stored []*ivr.Message) ([]*ivr.OutboxItem, error)) error {
	if then == nil {
		then = func([]*ivr.Message) ([]*ivr.OutboxItem, error) { return nil, nil }
	}
	return s.appendMessages(ctx, "append messages", msgs, then)
}

func (s *sqlStore) appendMessages(ctx context.Context, op string, msgs []*ivr.Message, then func([]*ivr.Message) ([]*ivr.OutboxItem, error)) error {
	if len(msgs) > MaxBatch {
		return fmt.Errorf("%s: %w: %d messages (limit %d)", op, ErrInvalid, len(msgs), MaxBatch)
	}
	for i, m := range msgs {
		if err := validateMessage(i, m); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	type saved struct {
		id int64
		at time.Time
	}
	prev := make([]saved, len(msgs))
	for i, m := range msgs {
		prev[i] = saved{m.ID, m.CreatedAt}
	}
	now := s.clock()
	var outbox []*ivr.OutboxItem
	var outIDs []int64
	err := s.inTx(ctx, op, func(c conn) error {
		for i, m := range msgs {
			if err := c.row(ctx, insertMessageQuery,
				m.BusinessID, m.ConversationID, m.UserID, m.Sender, m.Text, listCol{&m.QuickReplies}, string(m.Channel),
				m.ExternalID, m.Node, m.Confidence, timeValue(now)).Scan(&m.ID); err != nil {
				return fmt.Errorf("message %d: %w", i, err)
			}
			m.CreatedAt = now
		}
		var err error
		if outbox, err = then(msgs); err != nil {
			return fmt.Errorf("build outbox items: %w", err)
		}
		if err := validateOutboxItems(len(msgs), outbox); err != nil {
			return err
		}
		outIDs, err = insertOutbox(ctx, c, now, outbox)
		if err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		for i, m := range msgs {
			m.ID, m.CreatedAt = prev[i].id, prev[i].at
		}
		return err
	}
	insertedOutbox(outbox, outIDs, now)
	return nil
}

// AppendInbound implements [Store].
func (s *sqlStore) AppendInbound(ctx context.Context, user ivr.User, m *ivr.Message) (ivr.User, ivr.Conversation, error) {
	const op = "append inbound message"
	if m == nil {
		return ivr.User{}, ivr.Conversation{}, fmt.Errorf("%s: %w: message is nil", op, ErrInvalid)
	}
	if user.ID == 0 {
		if err := validateUserKey(user.BusinessID, user.Channel, user.ExternalID); err != nil {
			return ivr.User{}, ivr.Conversation{}, fmt.Errorf("%s: %w", op, err)
		}
	} else if user.BusinessID <= 0 {
		return ivr.User{}, ivr.Conversation{}, fmt.Errorf("%s: %w: business id %d is not positive", op, ErrInvalid, user.BusinessID)
	}
	prev := *m
	// The message is validated as it will be stored, before anything is
	// written: bad input stores no user and no conversation either.
	m.BusinessID = user.BusinessID
	check := *m
	check.ConversationID, check.UserID = 1, 1
	if err := validateMessage(0, &check); err != nil {
		*m = prev
		return ivr.User{}, ivr.Conversation{}, fmt.Errorf("%s: %w", op, err)
	}
	base := *m
	now := s.clock()
	var conv ivr.Conversation
	for attempt := 1; ; attempt++ {
		u := user
		*m = base
		err := s.inTx(ctx, op, func(c conn) error {
			var err error
			if u.ID == 0 {
				if u, err = s.ensureUserTx(ctx, c, u, now); err != nil {
					return fmt.Errorf("user: %w", err)
				}
			}
			if conv, err = s.openConversationTx(ctx, c, u.BusinessID, u.ID, now); err != nil {
				return fmt.Errorf("conversation: %w", err)
			}
			m.UserID, m.ConversationID = u.ID, conv.ID
			return c.row(ctx, insertMessageQuery,
				m.BusinessID, m.ConversationID, m.UserID, m.Sender, m.Text, listCol{&m.QuickReplies}, string(m.Channel),
				m.ExternalID, m.Node, m.Confidence, timeValue(now)).Scan(&m.ID)
		})
		if err == nil {
			m.CreatedAt = now
			return u, conv, nil
		}
		// A conflict is a concurrent creator of the user or the
		// conversation on another connection (PostgreSQL), whose row the
		// next attempt reads, or a message with the same external id,
		// which conflicts again and is returned.
		if !errors.Is(err, ErrConflict) || attempt == openConversationAttempts {
			*m = prev
			return ivr.User{}, ivr.Conversation{}, err
		}
	}
}

// ensureUserTx returns the user with u's key, inserting it (registered as
// u says) when there is none.
func (s *sqlStore) ensureUserTx(ctx context.Context, c conn, u ivr.User, now time.Time) (ivr.User, error) {
	got, err := scanUser(c.row(ctx, `SELECT `+userCols+` FROM users WHERE business_id = ? AND channel = ? AND external_id = ?`,
		u.BusinessID, string(u.Channel), u.ExternalID))
	if !errors.Is(err, sql.ErrNoRows) {
		return got, err
	}
	return scanUser(c.row(ctx, `INSERT INTO users (business_id, channel, external_id, registered, created_at) VALUES (?, ?, ?, ?, ?)
		RETURNING `+userCols,
		u.BusinessID, string(u.Channel), u.ExternalID, u.Registered, timeValue(now)))
}

// openConversationTx returns the user's open conversation with the
// business, creating it when there is none.
func (s *sqlStore) openConversationTx(ctx context.Context, c conn, businessID, userID int64, now time.Time) (ivr.Conversation, error) {
	conv, err := scanConversation(c.row(ctx, openConversationQuery, businessID, userID))
	if !errors.Is(err, sql.ErrNoRows) {
		return conv, err
	}
	var owner int64
	if err := c.row(ctx, `SELECT business_id FROM users WHERE id = ?`, userID).Scan(&owner); err != nil {
		return ivr.Conversation{}, fmt.Errorf("user %d: %w", userID, err)
	}
	if owner != businessID {
		return ivr.Conversation{}, fmt.Errorf("%w: user %d belongs to business %d", ErrInvalid, userID, owner)
	}
	return scanConversation(c.row(ctx, `INSERT INTO conversations (business_id, user_id, conversation_no, open, handoff, created_at)
		SELECT ?, ?, COALESCE(MAX(conversation_no), 0) + 1, TRUE, ?, ? FROM conversations WHERE user_id = ?
		RETURNING `+conversationCols,
		businessID, userID, string(ivr.HandoffBot), timeValue(now), userID))
}

const insertMessageQuery = `INSERT INTO messages (business_id, conversation_id, user_id, sender, text, quick_replies, channel, external_id, node, confidence, created_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`

// GetMessageByExternalID implements [Store].
func (s *sqlStore) GetMessageByExternalID(ctx context.Context, businessID int64, channel ivr.Channel, externalID string) (ivr.Message, error) {
	op := fmt.Sprintf("get message of business %d on %.64q by external id", businessID, channel)
	if externalID == "" {
		return ivr.Message{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return getRow(ctx, s, s.reader(), op, scanMessage,
		// external_id <> '' lets the planner use the partial unique index.
		`SELECT `+messageCols+` FROM messages WHERE business_id = ? AND channel = ? AND external_id = ? AND external_id <> ''`,
		businessID, string(channel), externalID)
}

// ListMessages implements [Store].
func (s *sqlStore) ListMessages(ctx context.Context, conversationID int64, limit int) ([]ivr.Message, error) {
	op := fmt.Sprintf("list messages of conversation %d", conversationID)
	if limit <= 0 {
		return listRows(ctx, s, s.reader(), op, scanMessage,
			`SELECT `+messageCols+` FROM messages WHERE conversation_id = ? ORDER BY id`, conversationID)
	}
	return listRows(ctx, s, s.reader(), op, scanMessage,
		`SELECT `+messageCols+` FROM (SELECT `+messageCols+` FROM messages WHERE conversation_id = ? ORDER BY id DESC LIMIT `+limitParam+`) newest ORDER BY id`,
		conversationID, limit)
}

// MessagesAfter implements [Store].
func (s *sqlStore) MessagesAfter(ctx context.Context, conversationID, afterID int64) ([]ivr.Message, error) {
	return listRows(ctx, s, s.reader(), fmt.Sprintf("list messages of conversation %d after %d", conversationID, afterID), scanMessage,
		`SELECT `+messageCols+` FROM messages WHERE conversation_id = ? AND id > ? ORDER BY id`, conversationID, afterID)
}
