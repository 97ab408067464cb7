package outbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/koelvoice/koel/ivr"
)

// Message is the payload of a reply item: koel's Standard Message Format,
// the JSON the webhook channel POSTs as it is. Every other channel's
// [Sender] decodes it with [DecodeMessage] and renders it in its platform's
// shape (the recipient is [ivr.OutboxItem.Recipient], which for the webhook
// channel is also User.AuthID).
type Message struct {
	Version    string       `json:"version"`
	Timestamp  string       `json:"timestamp"`
	User       MessageUser  `json:"user"`
	BusinessID int64        `json:"business_id"`
	EventName  string       `json:"event_name"`
	Agent      MessageAgent `json:"agent"`
	Message    MessageEvent `json:"message"`
}

// MessageUser is who a Message is for.
type MessageUser struct {
	AuthID string `json:"auth_id"`
}

// MessageAgent is who wrote a Message: the bot (IsAutomated), an agent or a
// broadcast.
type MessageAgent struct {
	ID           int64  `json:"id"`
	Name         string `json:"name"`
	ProfileImage string `json:"profile_image"`
	IsAutomated  bool   `json:"is_automated"`
}

// MessageEvent is the message of a Message.
type MessageEvent struct {
	ID   int64       `json:"id"`
	Body MessageBody `json:"body"`
}

// MessageBody is the body of a MessageEvent. Type is "TEXT".
type MessageBody struct {
	Text string      `json:"text"`
	Type string      `json:"type"`
	Data MessageData `json:"data"`
}

// MessageData holds a message's quick replies (never null in the JSON).
type MessageData struct {
	QuickReplies []string `json:"quick_replies"`
}

// ISOTime formats t as the Standard Message Format's timestamps:
// 2018-10-04T12:41:27.980Z.
func ISOTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// ContentTypeMessage is the media type of a [Message] body.
const ContentTypeMessage = "application/json"

// Reply is what [NewReplyItem] needs to build one reply's item.
type Reply struct {
	// Connection the reply goes out on; its Channel picks the sender.
	Connection ivr.Connection
	// BusinessID is the business answering.
	BusinessID int64
	// Recipient is the platform's id of the user (auth_id, PSID, number).
	Recipient string
	// Message is the stored bot or agent message (ID and CreatedAt set).
	Message *ivr.Message
	// URL is the destination when it is chosen per item (the webhook URL);
	// empty for platform send APIs, whose senders use the connection's.
	URL string
	// MaxAttempts caps attempts besides the retry horizon (0: no cap).
	MaxAttempts int
	// Now is when the item becomes due.
	Now time.Time
}

// NewReplyItem returns the outbox item that delivers r.Message to
// r.Recipient: a [Message] body, keyed "<channel>-<connection>-msg-<id>" so
// a repeated build of the same reply is refused by the store, not sent twice.
func NewReplyItem(r Reply) (*ivr.OutboxItem, error) {
	if r.Message == nil {
		return nil, errors.New("outbox: reply without a message")
	}
	ch := r.Connection.Channel
	if ch == "" {
		return nil, errors.New("outbox: reply connection without a channel")
	}
	qr := r.Message.QuickReplies
	if qr == nil {
		qr = []string{}
	}
	agent := MessageAgent{Name: "bot", IsAutomated: true}
	if r.Message.Sender != "" && r.Message.Sender != ivr.SenderBot {
		agent = MessageAgent{Name: r.Message.Sender}
	}
	body, err := json.Marshal(Message{
		Version:    "1.0",
		Timestamp:  ISOTime(r.Message.CreatedAt),
		User:       MessageUser{AuthID: r.Recipient},
		BusinessID: r.BusinessID,
		EventName:  "message",
		Agent:      agent,
		Message: MessageEvent{
			ID:   r.Message.ID,
			Body: MessageBody{Text: r.Message.Text, Type: "TEXT", Data: MessageData{QuickReplies: qr}},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: encode message: %w", err)
	}
	return &ivr.OutboxItem{
		ConnectionID:   r.Connection.ID,
		Channel:        ch,
		Recipient:      r.Recipient,
		IdempotencyKey: fmt.Sprintf("%s-%d-msg-%d", ch, r.Connection.ID, r.Message.ID),
		URL:            r.URL,
		Body:           body,
		ContentType:    ContentTypeMessage,
		Status:         ivr.OutboxPending,
		MaxAttempts:    r.MaxAttempts,
		NextAttemptAt:  r.Now,
	}, nil
}

// DecodeMessage decodes an item's [Message] body. A body that is not one is
// a [Permanent] error: no retry will make it readable.
func DecodeMessage(it ivr.OutboxItem) (Message, error) {
	var m Message
	if err := json.Unmarshal(it.Body, &m); err != nil {
		return Message{}, Permanent(fmt.Errorf("outbox: item %d body is not a standard message: %w", it.ID, err))
	}
	return m, nil
}
