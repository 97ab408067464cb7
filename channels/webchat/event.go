package webchat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/channels/smf"
	"github.com/koelvoice/koel/channels/webhook"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
)

// Event webhook headers.
const (
	HeaderSource   = "X-Botdistrikt-Source"
	HeaderSourceID = "X-Botdistrikt-Source-Id"
)

// Sources of an event.
const (
	SourceBot       = "bot"
	SourceHuman     = "human"
	SourceBroadcast = "broadcast"
)

// Event is the body POSTed to the event webhook: the message as a
// webchat_responses entry, for the user it was sent to.
type Event struct {
	EventName string   `json:"event_name"`
	WebchatID string   `json:"webchat_id"`
	Source    string   `json:"source"`
	SourceID  string   `json:"source_id"`
	Message   Response `json:"message"`
}

// Source returns the event source and source id of an outbox message: the
// bot (source id: the business), a broadcast (agent name
// "broadcast(<id>)") or a human agent (source id: the agent's id, else
// name).
func Source(m outbox.Message) (string, string) {
	a := m.Agent
	switch {
	case a.IsAutomated:
		return SourceBot, strconv.FormatInt(m.BusinessID, 10)
	case strings.HasPrefix(a.Name, "broadcast(") && strings.HasSuffix(a.Name, ")"):
		return SourceBroadcast, strings.TrimSuffix(strings.TrimPrefix(a.Name, "broadcast("), ")")
	case a.ID != 0:
		return SourceHuman, strconv.FormatInt(a.ID, 10)
	}
	name := strings.TrimSuffix(strings.TrimPrefix(a.Name, "agent("), ")")
	return SourceHuman, name
}

// EventSender delivers webchat items to the app's event webhook. It
// implements outbox.Sender.
type EventSender struct {
	HTTP *platform.Sender
	// Now returns the time (nil: time.Now).
	Now func() time.Time
}

// NewEventSender returns the event webhook sender.
func NewEventSender(http *platform.Sender) *EventSender { return &EventSender{HTTP: http} }

// Send implements outbox.Sender.
func (s *EventSender) Send(ctx context.Context, conn ivr.Connection, item ivr.OutboxItem) error {
	target := conn.Settings.Webchat.EventWebhookURL
	if target == "" {
		s.HTTP.Metrics.Failed(Channel, outbox.ClassConfig)
		return outbox.Permanent(outbox.WithClass(outbox.ClassConfig, errors.New("webchat app has no event webhook url")))
	}
	m, err := outbox.DecodeMessage(item)
	if err != nil {
		return err
	}
	created, _ := time.Parse("2006-01-02T15:04:05.000Z", m.Timestamp)
	src, srcID := Source(m)
	body, err := json.Marshal(Event{
		EventName: "message", WebchatID: item.Recipient, Source: src, SourceID: srcID,
		Message: Render(conn, 0, m.Message.ID, created, smf.FromOutbox(m)),
	})
	if err != nil {
		return outbox.Permanent(fmt.Errorf("webchat: encode event: %w", err))
	}
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(string(body)))
	if err != nil {
		s.HTTP.Metrics.Failed(Channel, outbox.ClassConfig)
		return outbox.Permanent(outbox.WithClass(outbox.ClassConfig, outbox.TransportError("build request for", target, err)))
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderSource, src)
	req.Header.Set(HeaderSourceID, srcID)
	req.Header.Set(webhook.HeaderTimestamp, ts)
	if secret := conn.Settings.Webchat.EventWebhookSecret; secret.IsSet() {
		req.Header.Set(webhook.HeaderSignature, webhook.Sign(secret.Reveal(), ts, body))
	}
	return s.HTTP.Post(ctx, Channel, item, req, nil)
}
