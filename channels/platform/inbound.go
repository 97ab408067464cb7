package platform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
	"github.com/koelvoice/koel/ivr/outbox"
)

// MaxBody caps an inbound platform request (bytes). Platforms batch a few
// events per request; 256 KiB holds far more than any text batch.
const MaxBody = 256 << 10

// MaxIDBytes caps platform user and message ids.
const MaxIDBytes = 256

// MaxBatch caps the messages of one inbound request.
const MaxBatch = 100

// Connections finds a connection by channel and identifier.
type Connections interface {
	GetConnection(ctx context.Context, channel ivr.Channel, identifier string) (ivr.Connection, error)
}

// Engine runs one conversation turn.
type Engine interface {
	Handle(ctx context.Context, in ivr.Inbound) (ivr.Reply, error)
}

// Notifier is told when new deliveries were stored (the outbox dispatcher).
type Notifier interface{ Notify() }

// Message is one user message parsed from a platform's webhook.
type Message struct {
	// ID is the platform's message id, the dedupe key (mid, MessageSid,
	// wamid, messageId, …).
	ID string
	// From is the platform's id of the user (PSID, WhatsApp number, openid).
	From string
	// To is the business address the user wrote to, when the platform
	// gives one (Twilio To, Infobip to, Gupshup waNumber, Cloud API
	// phone_number_id); replies are sent from it.
	To string
	// Text is what the user wrote, or the payload of the button they tapped.
	Text string
}

// Pipeline runs parsed platform messages through the engine.
type Pipeline struct {
	Connections Connections
	Engine      Engine
	Notifier    Notifier // may be nil
	Metrics     *Metrics // may be nil
	Logger      *slog.Logger
	// MaxAttempts bounds deliveries of one reply (0: outbox default).
	MaxAttempts int
	// Now returns the time (nil: time.Now).
	Now func() time.Time
}

func (p *Pipeline) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Pipeline) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Connection returns the active connection of ch named identifier. A
// missing connection is a 404, and so is an inactive one
// ([ivr.ErrConnectionInactive]): it stores nothing.
func (p *Pipeline) Connection(ctx context.Context, ch ivr.Channel, identifier string) (ivr.Connection, error) {
	if identifier == "" || len(identifier) > MaxIDBytes {
		p.Metrics.Rejected(ch, RejectNotFound)
		return ivr.Connection{}, api.Errorf(http.StatusNotFound, "no such connection")
	}
	conn, err := p.Connections.GetConnection(ctx, ch, identifier)
	if errors.Is(err, ivr.ErrNotFound) {
		p.Metrics.Rejected(ch, RejectNotFound)
		return ivr.Connection{}, api.Errorf(http.StatusNotFound, "no such connection")
	}
	if err == nil && !conn.Active {
		p.Metrics.Rejected(ch, RejectNotFound)
		return ivr.Connection{}, fmt.Errorf("%s connection %q: %w", ch, identifier, ivr.ErrConnectionInactive)
	}
	if err != nil {
		return ivr.Connection{}, fmt.Errorf("platform: get %s connection: %w", ch, err)
	}
	return conn, nil
}

// ReadBody reads r's body, refusing more than max bytes (413) and an empty
// body (400).
func ReadBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	if max <= 0 {
		max = MaxBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, api.Errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", max)
	}
	if err != nil {
		return nil, api.Errorf(http.StatusBadRequest, "reading the request body failed")
	}
	if len(body) == 0 {
		return nil, api.Errorf(http.StatusBadRequest, "request body is empty")
	}
	return body, nil
}

// Validate checks messages before anything is stored: ids present and
// capped, text valid UTF-8 without NUL bytes and within [ivr.MaxTextBytes].
func Validate(msgs []Message) error {
	if len(msgs) > MaxBatch {
		return api.Errorf(http.StatusRequestEntityTooLarge, "%d messages in one request (limit %d)", len(msgs), MaxBatch)
	}
	for i, m := range msgs {
		switch {
		case m.From == "":
			return api.Errorf(http.StatusBadRequest, "message %d: sender id missing", i+1)
		case len(m.From) > MaxIDBytes || len(m.ID) > MaxIDBytes || len(m.To) > MaxIDBytes:
			return api.Errorf(http.StatusBadRequest, "message %d: id longer than %d bytes", i+1, MaxIDBytes)
		case !validText(m.From) || !validText(m.ID) || !validText(m.To):
			return api.Errorf(http.StatusBadRequest, "message %d: ids must be UTF-8 text without NUL bytes", i+1)
		case strings.TrimSpace(m.Text) == "":
			return api.Errorf(http.StatusBadRequest, "message %d: text is empty", i+1)
		case len(m.Text) > ivr.MaxTextBytes:
			return api.Errorf(http.StatusRequestEntityTooLarge, "message %d: text is longer than %d bytes", i+1, ivr.MaxTextBytes)
		case !validText(m.Text):
			return api.Errorf(http.StatusBadRequest, "message %d: text must be UTF-8 without NUL bytes", i+1)
		}
	}
	return nil
}

func validText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// Handle validates msgs, then runs each through the engine in order. With
// async set, every stored reply becomes an outbox item (the Standard Message
// Format, rendered for the platform by the channel's sender at send time),
// stored in the reply's transaction; otherwise the caller answers in the
// HTTP response from the returned replies. A duplicate delivery of a
// message id is answered once: its Reply has Duplicate set and nothing was
// stored or sent again.
func (p *Pipeline) Handle(ctx context.Context, conn ivr.Connection, msgs []Message, async bool) ([]ivr.Reply, error) {
	if err := Validate(msgs); err != nil {
		p.Metrics.Rejected(conn.Channel, RejectMalformed)
		return nil, err
	}
	replies := make([]ivr.Reply, 0, len(msgs))
	stored := false
	defer func() {
		if stored && p.Notifier != nil {
			p.Notifier.Notify()
		}
	}()
	for _, m := range msgs {
		in := ivr.Inbound{
			BusinessID:        conn.BusinessID,
			Connection:        conn,
			Channel:           conn.Channel,
			UserExternalID:    m.From,
			Text:              m.Text,
			ExternalMessageID: m.ID,
		}
		if async {
			in.Deliver = p.Deliverer(conn, m.From)
		}
		reply, err := p.Engine.Handle(ctx, in)
		if err != nil {
			return replies, err
		}
		if !reply.Duplicate {
			p.Metrics.Inbound(conn.Channel)
		}
		if async && len(reply.Stored) > 0 {
			stored = true
		}
		replies = append(replies, reply)
	}
	return replies, nil
}

// Fail writes err through koel's one error edge (ivr.HTTPStatus via
// api.WriteError); server faults are logged here, with the detail the
// client does not see.
func (p *Pipeline) Fail(w http.ResponseWriter, r *http.Request, ch ivr.Channel, err error) {
	status, _ := ivr.HTTPStatus(err)
	var ae *api.Error
	switch {
	case status >= 500 && !errors.As(err, &ae):
		p.logger().ErrorContext(r.Context(), "channel request failed", "channel", string(ch), "error", err)
	case status == http.StatusRequestEntityTooLarge:
		p.Metrics.Rejected(ch, RejectTooLarge)
	}
	api.WriteError(w, err)
}

// Deliverer returns the engine deliverer that stores each reply to
// recipient on conn as an outbox item.
func (p *Pipeline) Deliverer(conn ivr.Connection, recipient string) ivr.Deliverer {
	return &deliverer{conn: conn, recipient: recipient, maxAttempts: p.MaxAttempts, now: p.now}
}

// deliverer turns a reply into outbox items, one per message, in the
// Standard Message Format and keyed by the message id, so a repeated build of
// the same reply is refused by the store rather than sent twice.
type deliverer struct {
	conn        ivr.Connection
	recipient   string
	maxAttempts int
	now         func() time.Time
}

func (d *deliverer) Deliveries(in ivr.Inbound, _ ivr.User, _ ivr.Conversation, reply []*ivr.Message) ([]*ivr.OutboxItem, error) {
	items := make([]*ivr.OutboxItem, 0, len(reply))
	for _, m := range reply {
		it, err := outbox.NewReplyItem(outbox.Reply{
			Connection:  d.conn,
			BusinessID:  in.BusinessID,
			Recipient:   d.recipient,
			Message:     m,
			MaxAttempts: d.maxAttempts,
			Now:         d.now(),
		})
		if err != nil {
			return nil, fmt.Errorf("%s reply item: %w", d.conn.Channel, err)
		}
		items = append(items, it)
	}
	return items, nil
}
