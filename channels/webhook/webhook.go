// Package webhook is koel's Webhook channel, as the seed "Deploying to
// Webhook" describes it: an integrator POSTs a user's message to
// /v1.0/log_message_from_user/ and koel POSTs the bot's reply, in the
// Standard Message Format, to the connection's webhook URL.
//
// # Authentication
//
// Requests carry "Authorization: Bearer <token>" — the business's API token —
// and "client-id: <client id>" — the business's client id. Both are checked
// in constant time; any mismatch, and an unknown business_id, answer 401
// {"error_message": "invalid authorization details"}. A business without an
// active webhook connection (switched off) answers 404 and stores nothing.
//
// # Errors
//
// Every refusal goes through koel's one error edge (ivr.HTTPStatus via
// api.Fail) in the seed's shape {"error_message": "..."}, and is decided
// before anything is written: 400 for a missing or malformed field, a NUL
// byte or invalid UTF-8 in auth_id or message_body; 413 for an oversized
// body or message; 415 for a Content-Type other than application/json.
//
// # Users
//
// A user is known by its auth_id. When the business's webhook connection has
// auto_register set, a user is registered by their first message; otherwise
// the integrator registers users first with POST /v1.0/register_user/
// ({"business_id": 1, "user": {"auth_id": "..."}}, same headers), and a
// message from an unregistered user answers 403 {"error_message": "user is
// not registered"} and stores nothing.
//
// # Retries
//
// A request may carry an Idempotency-Key header (at most 255 bytes). A
// retry with the same key for the same user is answered with the first
// answer (and an Idempotent-Replayed: true header); nothing is stored or
// delivered again. The same key with a different message_body answers 422.
//
// # Delivery
//
// Replies are not sent from the request: each reply message becomes an
// outbox item stored in the same transaction, delivered by the outbox
// dispatcher with retries, an Idempotency-Key header and an
// X-Koel-Signature header (HMAC-SHA256 with the connection's secret key, see
// [Sender] and [Sign]).
package webhook

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
)

// Paths of the webhook API.
const (
	PathLogMessage   = "/v1.0/log_message_from_user/"
	PathRegisterUser = "/v1.0/register_user/"
)

// MessageTypeStandard is the only message_type koel processes.
const MessageTypeStandard = 0

// MaxBody caps request bodies (bytes).
const MaxBody = 32 << 10

// MaxAuthIDBytes caps auth_id.
const MaxAuthIDBytes = 256

// Store is what the webhook channel needs from the store.
type Store interface {
	GetBusiness(ctx context.Context, id int64) (ivr.Business, error)
	ListConnections(ctx context.Context, businessID int64) ([]ivr.Connection, error)
	RegisterUser(ctx context.Context, businessID int64, channel ivr.Channel, externalID string) (ivr.User, error)
}

// Engine runs one conversation turn.
type Engine interface {
	Handle(ctx context.Context, in ivr.Inbound) (ivr.Reply, error)
}

// Notifier is told when new deliveries were stored (the outbox dispatcher).
type Notifier interface{ Notify() }

// Channel serves the webhook API.
type Channel struct {
	Store    Store
	Engine   Engine
	Notifier Notifier // may be nil
	Logger   *slog.Logger
	// Metrics counts accepted inbound messages in
	// koel_channel_messages_total{channel="webhook",direction="inbound"}
	// (nil: none); the [Sender] counts the outbound ones.
	Metrics *platform.Metrics
	// MaxAttempts bounds deliveries of one reply (0: outbox default).
	MaxAttempts int
	// Now returns the time (nil: time.Now).
	Now func() time.Time
}

// Routes registers the webhook API on r.
func (c *Channel) Routes(r *mux.Router) {
	r.Handle(PathLogMessage, http.HandlerFunc(c.logMessage)).Methods(http.MethodPost)
	r.Handle(PathRegisterUser, http.HandlerFunc(c.registerUser)).Methods(http.MethodPost)
}

// User is the user object of the webhook API.
type User struct {
	AuthID string `json:"auth_id"`
}

// LogMessageRequest is the body of POST /v1.0/log_message_from_user/.
type LogMessageRequest struct {
	User        *User   `json:"user"`
	MessageBody *string `json:"message_body"`
	MessageType *int    `json:"message_type"`
	BusinessID  *int64  `json:"business_id"`
}

// LogMessageResponse is the 200 answer of POST /v1.0/log_message_from_user/.
type LogMessageResponse struct {
	MessageID   int64  `json:"message_id"`
	MessageBody string `json:"message_body"`
	CreatedAt   string `json:"created_at"`
	MessageType int    `json:"message_type"`
}

// RegisterUserRequest is the body of POST /v1.0/register_user/.
type RegisterUserRequest struct {
	User       *User  `json:"user"`
	BusinessID *int64 `json:"business_id"`
}

// StandardMessage is the Standard Message Format koel POSTs to the
// integrator's webhook URL.
type StandardMessage struct {
	Version    string       `json:"version"`
	Timestamp  string       `json:"timestamp"`
	User       User         `json:"user"`
	BusinessID int64        `json:"business_id"`
	EventName  string       `json:"event_name"`
	Agent      MessageAgent `json:"agent"`
	Message    MessageEvent `json:"message"`
}

// MessageAgent is who wrote a StandardMessage.
type MessageAgent struct {
	ID           int64  `json:"id"`
	Name         string `json:"name"`
	ProfileImage string `json:"profile_image"`
	IsAutomated  bool   `json:"is_automated"`
}

// MessageEvent is the message of a StandardMessage.
type MessageEvent struct {
	ID   int64       `json:"id"`
	Body MessageBody `json:"body"`
}

// MessageBody is the body of a MessageEvent.
type MessageBody struct {
	Text string      `json:"text"`
	Type string      `json:"type"`
	Data MessageData `json:"data"`
}

// MessageData holds a message's quick replies.
type MessageData struct {
	QuickReplies []string `json:"quick_replies"`
}

// ISOTime formats t as the seed's ISO timestamps: 2018-10-04T12:41:27.980Z.
func ISOTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (c *Channel) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// fail answers err through the one error edge (ivr.HTTPStatus) in the
// seed's shape {"error_message": ...}, logging server faults.
func (c *Channel) fail(w http.ResponseWriter, r *http.Request, err error) {
	api.Fail(w, r, c.Logger, "webhook request failed", err)
}

var errInvalidAuth = api.Errorf(http.StatusUnauthorized, "invalid authorization details")

// authenticate checks the bearer token and client-id against the business
// and returns its active webhook connection.
func (c *Channel) authenticate(ctx context.Context, r *http.Request, businessID int64) (ivr.Business, ivr.Connection, error) {
	token, ok := api.BearerToken(r)
	clientID := r.Header.Get("client-id")
	if !ok || clientID == "" {
		return ivr.Business{}, ivr.Connection{}, errInvalidAuth
	}
	b, err := c.Store.GetBusiness(ctx, businessID)
	if errors.Is(err, ivr.ErrNotFound) {
		return ivr.Business{}, ivr.Connection{}, errInvalidAuth
	}
	if err != nil {
		return ivr.Business{}, ivr.Connection{}, fmt.Errorf("webhook: get business: %w", err)
	}
	tokenOK := ivr.TokenMatches(b.TokenHash, token)
	clientOK := subtle.ConstantTimeCompare([]byte(b.ClientID), []byte(clientID)) == 1
	if !tokenOK || !clientOK {
		return ivr.Business{}, ivr.Connection{}, errInvalidAuth
	}
	if !b.Active {
		return ivr.Business{}, ivr.Connection{}, api.Errorf(http.StatusForbidden, "business %q is inactive", fmt.Sprint(b.ID))
	}
	conns, err := c.Store.ListConnections(ctx, b.ID)
	if err != nil {
		return ivr.Business{}, ivr.Connection{}, fmt.Errorf("webhook: list connections: %w", err)
	}
	for _, conn := range conns {
		if conn.Channel == ivr.ChannelWebhook && conn.Active {
			return b, conn, nil
		}
	}
	// No webhook connection, or one switched off: 404 through the error
	// edge, and nothing is stored.
	return ivr.Business{}, ivr.Connection{}, fmt.Errorf("webhook: business %d: %w", b.ID, ivr.ErrConnectionInactive)
}

func validAuthID(u *User) (string, error) {
	if u == nil || strings.TrimSpace(u.AuthID) == "" {
		return "", api.Errorf(http.StatusBadRequest, "auth_id missing in the request")
	}
	id := strings.TrimSpace(u.AuthID)
	if err := ivr.CheckText("auth_id", id, MaxAuthIDBytes); err != nil {
		return "", err
	}
	return id, nil
}

// userRequest is what both webhook endpoints carry: a business and a user.
type userRequest interface {
	ids() (businessID *int64, user *User)
}

func (r *LogMessageRequest) ids() (*int64, *User)   { return r.BusinessID, r.User }
func (r *RegisterUserRequest) ids() (*int64, *User) { return r.BusinessID, r.User }

// decode checks that credentials are present (before reading the body, so
// anonymous requests cost nothing), decodes req and validates its business
// and user; it returns the business id and the trimmed auth_id.
func decode(w http.ResponseWriter, r *http.Request, req userRequest) (int64, string, error) {
	if _, ok := api.BearerToken(r); !ok || r.Header.Get("client-id") == "" {
		return 0, "", errInvalidAuth
	}
	if err := api.DecodeJSON(w, r, MaxBody, req); err != nil {
		return 0, "", err
	}
	businessID, user := req.ids()
	if businessID == nil {
		return 0, "", api.Errorf(http.StatusBadRequest, "business_id missing in the request")
	}
	authID, err := validAuthID(user)
	if err != nil {
		return 0, "", err
	}
	return *businessID, authID, nil
}

func (c *Channel) logMessage(w http.ResponseWriter, r *http.Request) {
	if err := c.serveLogMessage(w, r); err != nil {
		c.fail(w, r, err)
	}
}

func (c *Channel) serveLogMessage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var req LogMessageRequest
	businessID, authID, err := decode(w, r, &req)
	if err != nil {
		return err
	}
	if req.MessageBody == nil || strings.TrimSpace(*req.MessageBody) == "" {
		return api.Errorf(http.StatusBadRequest, "message_body missing in the request")
	}
	if len(*req.MessageBody) > ivr.MaxTextBytes {
		return api.Errorf(http.StatusRequestEntityTooLarge, "message_body is longer than %d bytes", ivr.MaxTextBytes)
	}
	if err := ivr.CheckText("message_body", *req.MessageBody, ivr.MaxTextBytes); err != nil {
		return err
	}
	msgType := MessageTypeStandard
	if req.MessageType != nil {
		msgType = *req.MessageType
	}
	if msgType != MessageTypeStandard {
		return api.Errorf(http.StatusBadRequest, "unsupported message_type %d (only 0 is processed)", msgType)
	}
	msgID, err := idempotencyID(r, authID)
	if err != nil {
		return err
	}
	b, conn, err := c.authenticate(ctx, r, businessID)
	if err != nil {
		return err
	}
	reply, err := c.Engine.Handle(ctx, ivr.Inbound{
		BusinessID:        b.ID,
		Connection:        conn,
		Channel:           ivr.ChannelWebhook,
		UserExternalID:    authID,
		Text:              *req.MessageBody,
		ExternalMessageID: msgID,
		RequireRegistered: !conn.Settings.AutoRegister,
		Deliver:           &deliverer{conn: conn, maxAttempts: c.MaxAttempts, now: c.now},
	})
	if err != nil {
		return err
	}
	if !reply.Duplicate {
		c.Metrics.Inbound(ivr.ChannelWebhook)
	}
	if reply.Duplicate {
		// A retry: answer as the first time, store and deliver nothing.
		if reply.Inbound.Text != *req.MessageBody {
			return api.Errorf(http.StatusUnprocessableEntity, "%s was used for a different message_body", HeaderIdempotencyKeyIn)
		}
		w.Header().Set(HeaderIdempotentReplayed, "true")
	}
	if len(reply.Stored) > 0 && c.Notifier != nil {
		c.Notifier.Notify()
	}
	api.WriteJSON(w, http.StatusOK, LogMessageResponse{
		MessageID:   reply.Inbound.ID,
		MessageBody: reply.Inbound.Text,
		CreatedAt:   ISOTime(reply.Inbound.CreatedAt),
		MessageType: msgType,
	})
	return nil
}

// Inbound idempotency: a client that retries a log_message_from_user
// request (a timeout, a lost response) sends the same Idempotency-Key; the
// retry is answered with the first answer and nothing is stored or
// delivered again. Keys are scoped to the business and the user.
const (
	// HeaderIdempotencyKeyIn is the request header carrying the client's
	// key (the same name koel's deliveries carry outbound).
	HeaderIdempotencyKeyIn = "Idempotency-Key"
	// HeaderIdempotentReplayed marks an answer replayed for a retry.
	HeaderIdempotentReplayed = "Idempotent-Replayed"
	// MaxIdempotencyKeyBytes caps the key.
	MaxIdempotencyKeyBytes = 255
)

// idempotencyID is the external message id the engine dedupes on: a hash
// of the user and the client's key, so keys of different users never
// collide and any key fits the store's id column. Empty without a key.
func idempotencyID(r *http.Request, authID string) (string, error) {
	key := r.Header.Get(HeaderIdempotencyKeyIn)
	if key == "" {
		return "", nil
	}
	if strings.TrimSpace(key) == "" {
		return "", ivr.Invalid(HeaderIdempotencyKeyIn, "is blank")
	}
	if err := ivr.CheckText(HeaderIdempotencyKeyIn, key, MaxIdempotencyKeyBytes); err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(authID + "\x00" + key))
	return "idem:" + hex.EncodeToString(sum[:16]), nil
}

func (c *Channel) registerUser(w http.ResponseWriter, r *http.Request) {
	if err := c.serveRegisterUser(w, r); err != nil {
		c.fail(w, r, err)
	}
}

func (c *Channel) serveRegisterUser(w http.ResponseWriter, r *http.Request) error {
	var req RegisterUserRequest
	businessID, authID, err := decode(w, r, &req)
	if err != nil {
		return err
	}
	b, _, err := c.authenticate(r.Context(), r, businessID)
	if err != nil {
		return err
	}
	if _, err := c.Store.RegisterUser(r.Context(), b.ID, ivr.ChannelWebhook, authID); err != nil {
		return fmt.Errorf("webhook: register user: %w", err)
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"success": true})
	return nil
}

// deliverer turns reply messages into outbox items in the Standard Message
// Format, one per message, keyed by the message id.
type deliverer struct {
	conn        ivr.Connection
	maxAttempts int
	now         func() time.Time
}

func (d *deliverer) Deliveries(in ivr.Inbound, user ivr.User, _ ivr.Conversation, reply []*ivr.Message) ([]*ivr.OutboxItem, error) {
	if d.conn.Settings.WebhookURL == "" {
		return nil, nil // nowhere to deliver; the reply stays in the transcript
	}
	items := make([]*ivr.OutboxItem, 0, len(reply))
	for _, m := range reply {
		qr := m.QuickReplies
		if qr == nil {
			qr = []string{}
		}
		body, err := json.Marshal(StandardMessage{
			Version:    "1.0",
			Timestamp:  ISOTime(m.CreatedAt),
			User:       User{AuthID: user.ExternalID},
			BusinessID: in.BusinessID,
			EventName:  "message",
			Agent:      MessageAgent{Name: "bot", IsAutomated: true},
			Message: MessageEvent{
				ID:   m.ID,
				Body: MessageBody{Text: m.Text, Type: "TEXT", Data: MessageData{QuickReplies: qr}},
			},
		})
		if err != nil {
			return nil, fmt.Errorf("webhook: encode standard message: %w", err)
		}
		items = append(items, &ivr.OutboxItem{
			ConnectionID:   d.conn.ID,
			Channel:        ivr.ChannelWebhook,
			Recipient:      user.ExternalID,
			IdempotencyKey: fmt.Sprintf("webhook-%d-msg-%d", d.conn.ID, m.ID),
			URL:            d.conn.Settings.WebhookURL,
			Body:           body,
			ContentType:    "application/json",
			Status:         ivr.OutboxPending,
			MaxAttempts:    d.maxAttempts,
			NextAttemptAt:  d.now(),
		})
	}
	return items, nil
}
