// Package messenger is koel's Facebook Messenger channel at fb/{identifier},
// as the seed "Deploying to Facebook Messenger" sets it up and
// spec/channels.md §1 describes the platform.
//
//   - GET fb/{identifier}: Meta's subscription check. hub.mode must be
//     "subscribe" and hub.verify_token the connection's verify token
//     (the seed's "secret challenge key"); the hub.challenge is answered as
//     plain text, anything else 403.
//   - POST fb/{identifier}: an event batch, verified with
//     X-Hub-Signature-256 (HMAC-SHA256 of the raw body with the app
//     secret; the legacy sha1 header only when the 256 one is absent).
//     Every entry[] and messaging[] is read: text messages, quick-reply
//     taps (their payload) and postbacks (their payload, else title) go to
//     the engine; echoes, deliveries, reads and reactions are skipped;
//     attachments without text are skipped. Duplicates are dropped by mid.
//
// The request is answered 200 as soon as the messages and their replies are
// stored; each reply goes out through the outbox to the Send API
// (POST /me/messages, messaging_type RESPONSE, quick replies mapped), with
// the page access token read from the connection at send time, paced per
// page and with Graph errors classified as retryable or final.
//
// A missing or inactive connection answers 404; a bad signature 403 with
// nothing stored; a malformed body 400; a body over 256 KiB 413.
package messenger

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/channels/smf"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
)

// Channel is the Messenger channel; its callback path is fb/{identifier}.
const Channel = ivr.ChannelFacebook

// SendPath is the Send API path under the Graph base URL.
const SendPath = "/me/messages"

// Adapter serves fb/{identifier}.
type Adapter struct {
	Pipeline *platform.Pipeline
}

// Routes registers the Messenger webhook on r.
func (a *Adapter) Routes(r *mux.Router) {
	r.HandleFunc("/fb/{identifier}", platform.MetaVerification(a.Pipeline, Channel,
		func(c ivr.Connection) ivr.Secret { return c.Settings.Messenger.VerifyToken })).Methods(http.MethodGet)
	r.HandleFunc("/fb/{identifier}", platform.Receive(a.Pipeline, platform.Webhook[[]byte]{
		Channel: Channel,
		Read:    platform.Body(platform.MaxBody),
		Verify:  platform.MetaSignature(func(c ivr.Connection) ivr.Secret { return c.Settings.Messenger.AppSecret }),
		Parse:   func(_ ivr.Connection, body []byte) ([]platform.Message, error) { return Parse(body) },
		Respond: func(w http.ResponseWriter, _ ivr.Connection, _ []ivr.Reply) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("EVENT_RECEIVED"))
		},
	})).Methods(http.MethodPost)
}

// Event is the body of a Messenger webhook POST.
type Event struct {
	Object string  `json:"object"`
	Entry  []Entry `json:"entry"`
}

// Entry is one page's batch of messaging events.
type Entry struct {
	ID        string      `json:"id"`
	Time      int64       `json:"time"`
	Messaging []Messaging `json:"messaging"`
}

// Messaging is one messaging event; which field is set says what it is.
type Messaging struct {
	Sender    Party     `json:"sender"`
	Recipient Party     `json:"recipient"`
	Timestamp int64     `json:"timestamp"`
	Message   *InMsg    `json:"message,omitempty"`
	Postback  *Postback `json:"postback,omitempty"`
}

// Party is a sender or recipient.
type Party struct {
	ID string `json:"id"`
}

// InMsg is the message of a messaging event.
type InMsg struct {
	MID        string          `json:"mid"`
	Text       string          `json:"text"`
	IsEcho     bool            `json:"is_echo"`
	QuickReply *QuickReplyTap  `json:"quick_reply,omitempty"`
	Attachment json.RawMessage `json:"attachments,omitempty"`
}

// QuickReplyTap is the quick reply the user tapped.
type QuickReplyTap struct {
	Payload string `json:"payload"`
}

// Postback is a button, Get Started or persistent-menu tap.
type Postback struct {
	MID     string `json:"mid"`
	Title   string `json:"title"`
	Payload string `json:"payload"`
}

// Parse reads a webhook body into the user messages it carries, in order.
// A body that is not a page event batch is a 400 *api.Error.
func Parse(body []byte) ([]platform.Message, error) {
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, api.Errorf(http.StatusBadRequest, "malformed JSON")
	}
	if ev.Object != "page" {
		return nil, api.Errorf(http.StatusBadRequest, "object must be \"page\"")
	}
	var out []platform.Message
	for _, e := range ev.Entry {
		for _, m := range e.Messaging {
			pm, ok := message(m)
			if ok {
				out = append(out, pm)
			}
		}
	}
	return out, nil
}

func message(m Messaging) (platform.Message, bool) {
	switch {
	case m.Message != nil:
		if m.Message.IsEcho {
			return platform.Message{}, false
		}
		text := m.Message.Text
		if m.Message.QuickReply != nil && m.Message.QuickReply.Payload != "" {
			text = m.Message.QuickReply.Payload
		}
		if text == "" {
			return platform.Message{}, false // attachments only
		}
		return platform.Message{ID: m.Message.MID, From: m.Sender.ID, To: m.Recipient.ID, Text: text}, true
	case m.Postback != nil:
		text := m.Postback.Payload
		if text == "" {
			text = m.Postback.Title
		}
		if text == "" {
			return platform.Message{}, false
		}
		id := m.Postback.MID
		if id == "" {
			// Postbacks before Graph v11 carry no mid.
			id = "postback:" + m.Sender.ID + ":" + strconv.FormatInt(m.Timestamp, 10)
		}
		return platform.Message{ID: id, From: m.Sender.ID, To: m.Recipient.ID, Text: text}, true
	}
	return platform.Message{}, false // delivery, read, reaction, optin, …
}

// SendRequest is the Send API body koel posts.
type SendRequest struct {
	Recipient     Party      `json:"recipient"`
	MessagingType string     `json:"messaging_type"`
	Message       OutMessage `json:"message"`
}

// OutMessage is a Send API message: text with quick replies, or a button
// template attachment.
type OutMessage struct {
	Text         string          `json:"text,omitempty"`
	QuickReplies []OutQuickReply `json:"quick_replies,omitempty"`
	Attachment   *Attachment     `json:"attachment,omitempty"`
}

// OutQuickReply is one Send API quick reply.
type OutQuickReply struct {
	ContentType string `json:"content_type"`
	Title       string `json:"title"`
	Payload     string `json:"payload"`
}

// Attachment is a template attachment.
type Attachment struct {
	Type    string          `json:"type"`
	Payload TemplatePayload `json:"payload"`
}

// TemplatePayload is a button template.
type TemplatePayload struct {
	TemplateType string      `json:"template_type"`
	Text         string      `json:"text"`
	Buttons      []OutButton `json:"buttons"`
}

// OutButton is a postback or web_url button.
type OutButton struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Payload string `json:"payload,omitempty"`
	URL     string `json:"url,omitempty"`
}

// Render renders a Standard Message Format message to psid; it is the
// sender's [platform.Renderer].
func Render(_ ivr.Connection, psid string, m smf.Message) (platform.Request, error) {
	return RenderSMF(psid, m)
}

// RenderSMF renders a Standard Message Format message to psid within
// Messenger's limits: quick replies as quick_replies, buttons as a button
// template.
func RenderSMF(psid string, m smf.Message) (platform.Request, error) {
	m = smf.Messenger.Fit(m)
	out := OutMessage{Text: m.Text}
	for _, q := range m.QuickReplies {
		out.QuickReplies = append(out.QuickReplies, OutQuickReply{ContentType: "text", Title: q.Title, Payload: q.Payload})
	}
	if len(m.Buttons) > 0 {
		tp := TemplatePayload{TemplateType: "button", Text: m.Text}
		for _, b := range m.Buttons {
			tp.Buttons = append(tp.Buttons, OutButton{Type: b.Type, Title: b.Title, Payload: b.Payload, URL: b.URL})
		}
		out.Text = ""
		out.Attachment = &Attachment{Type: "template", Payload: tp}
	}
	body, err := json.Marshal(SendRequest{Recipient: Party{ID: psid}, MessagingType: "RESPONSE", Message: out})
	if err != nil {
		return platform.Request{}, fmt.Errorf("messenger: encode send request: %w", err)
	}
	return platform.Request{Path: SendPath, Body: body, ContentType: "application/json"}, nil
}
