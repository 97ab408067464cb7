// Package infobip is koel's Infobip WhatsApp channel at
// infobip/{identifier}, per the seed "Adding the WhatsApp Channel using
// Infobip Application" and spec/channels.md §3.2.
//
// Infobip forwards inbound WhatsApp messages as {"results": [...],
// "messageCount", "pendingMessageCount"}; every result is read (TEXT,
// BUTTON, INTERACTIVE_BUTTON_REPLY / INTERACTIVE_LIST_REPLY, IMAGE with a
// caption) and messageId is the dedupe key. Infobip signs nothing by
// default; its forwarding "can be secured with additional authorization
// header", so the connection's inbound_token must arrive as the
// Authorization header ("App <token>", "Bearer <token>" or the bare token),
// compared in constant time; a connection without one refuses every
// request (401) rather than take unauthenticated messages.
//
// Replies go through the outbox to POST {base_url}/whatsapp/1/message/text
// with "Authorization: App <api_key>", {"from": sender, "to": user,
// "content": {"text": …}}; base_url is the account's own
// (https://xxxxx.api.infobip.com). A reply with 1–3 quick replies goes to
// POST {base_url}/whatsapp/1/message/interactive/buttons instead, as REPLY
// buttons (ids are the choices' text, so a tap reads like typing it); more
// are listed in the text. 429 (E429) is retried after Retry-After.
package infobip

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/channels/smf"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
)

// Channel is the Infobip channel; its callback path is infobip/{identifier}.
const Channel ivr.Channel = "infobip"

// Send paths under the account's base URL: text, and interactive reply
// buttons.
const (
	SendPath        = "/whatsapp/1/message/text"
	SendButtonsPath = "/whatsapp/1/message/interactive/buttons"
)

// Adapter serves infobip/{identifier}.
type Adapter struct {
	Pipeline *platform.Pipeline
}

// Routes registers the Infobip webhook on r.
func (a *Adapter) Routes(r *mux.Router) {
	r.HandleFunc("/infobip/{identifier}", platform.Receive(a.Pipeline, platform.Webhook[[]byte]{
		Channel:   Channel,
		Authorize: platform.SharedSecretAuth(func(c ivr.Connection) ivr.Secret { return c.Settings.Infobip.InboundToken }),
		Read:      platform.Body(platform.MaxBody),
		Parse:     func(_ ivr.Connection, body []byte) ([]platform.Message, error) { return Parse(body) },
	})).Methods(http.MethodPost)
}

// Inbound is Infobip's forwarded-messages body.
type Inbound struct {
	Results             *[]Result `json:"results"`
	MessageCount        int       `json:"messageCount"`
	PendingMessageCount int       `json:"pendingMessageCount"`
}

// Result is one inbound message.
type Result struct {
	From            string  `json:"from"`
	To              string  `json:"to"`
	IntegrationType string  `json:"integrationType"`
	ReceivedAt      string  `json:"receivedAt"`
	MessageID       string  `json:"messageId"`
	Message         Content `json:"message"`
	Contact         struct {
		Name string `json:"name"`
	} `json:"contact"`
}

// Content is the message of a result.
type Content struct {
	Type    string `json:"type"`
	Text    string `json:"text"`
	Payload string `json:"payload"`
	ID      string `json:"id"`
	Title   string `json:"title"`
	Caption string `json:"caption"`
}

// Parse reads a forwarded-messages body into user messages.
func Parse(body []byte) ([]platform.Message, error) {
	var in Inbound
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, api.Errorf(http.StatusBadRequest, "malformed JSON")
	}
	if in.Results == nil {
		return nil, api.Errorf(http.StatusBadRequest, "results missing")
	}
	var out []platform.Message
	for i, r := range *in.Results {
		if r.MessageID == "" || r.From == "" {
			return nil, api.Errorf(http.StatusBadRequest, "result %d: messageId and from are required", i+1)
		}
		if text := text(r.Message); text != "" {
			out = append(out, platform.Message{ID: r.MessageID, From: r.From, To: r.To, Text: text})
		}
	}
	return out, nil
}

func text(c Content) string {
	switch c.Type {
	case "TEXT":
		return c.Text
	case "BUTTON":
		if c.Payload != "" {
			return c.Payload
		}
		return c.Text
	case "INTERACTIVE_BUTTON_REPLY", "INTERACTIVE_LIST_REPLY":
		if c.ID != "" {
			return c.ID
		}
		return c.Title
	case "IMAGE", "VIDEO", "DOCUMENT":
		return c.Caption
	}
	return ""
}

// SendRequest is the text send body.
type SendRequest struct {
	From    string      `json:"from"`
	To      string      `json:"to"`
	Content SendContent `json:"content"`
}

// SendContent is a text message's content.
type SendContent struct {
	Text string `json:"text"`
}

// ButtonsRequest is the interactive reply-buttons send body.
type ButtonsRequest struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Content struct {
		Body struct {
			Text string `json:"text"`
		} `json:"body"`
		Action struct {
			Buttons []Button `json:"buttons"`
		} `json:"action"`
	} `json:"content"`
}

// Button is one REPLY button.
type Button struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Title string `json:"title"`
}

// Render renders a message as a WhatsApp send from the connection's sender
// number: reply buttons for 1–3 quick replies, text otherwise.
func Render(conn ivr.Connection, to string, m smf.Message) (platform.Request, error) {
	from := conn.Settings.Infobip.Sender
	if from == "" {
		return platform.Request{}, errors.New("connection has no sender")
	}
	if n := len(m.QuickReplies); n > 0 && n <= smf.WhatsAppInteractive.MaxQuickReplies && len([]rune(m.Text)) <= smf.WhatsAppInteractive.MaxText {
		fit := smf.WhatsAppInteractive.Fit(m)
		req := ButtonsRequest{From: from, To: to}
		req.Content.Body.Text = fit.Text
		for _, q := range fit.QuickReplies {
			req.Content.Action.Buttons = append(req.Content.Action.Buttons, Button{Type: "REPLY", ID: q.Payload, Title: q.Title})
		}
		body, err := json.Marshal(req)
		if err != nil {
			return platform.Request{}, fmt.Errorf("infobip: encode buttons request: %w", err)
		}
		return platform.Request{Path: SendButtonsPath, Body: body, ContentType: "application/json"}, nil
	}
	body, err := json.Marshal(SendRequest{From: from, To: to, Content: SendContent{Text: smf.WhatsAppText.Fit(m).Text}})
	if err != nil {
		return platform.Request{}, fmt.Errorf("infobip: encode send request: %w", err)
	}
	return platform.Request{Path: SendPath, Body: body, ContentType: "application/json"}, nil
}

// NewSender returns the Infobip outbox sender; the base URL is the
// connection's base_url.
func NewSender(http *platform.Sender) *platform.APISender {
	return &platform.APISender{
		HTTP:    http,
		Channel: Channel,
		Base:    func(conn ivr.Connection) string { return conn.Settings.Infobip.BaseURL },
		Render:  Render,
		Auth:    authorize,
		Pace:    platform.NewLimiter(80, 80),
	}
}

func authorize(conn ivr.Connection, req *http.Request) error {
	if !conn.Settings.Infobip.APIKey.IsSet() {
		return errors.New("connection has no api_key")
	}
	req.Header.Set("Authorization", "App "+conn.Settings.Infobip.APIKey.Reveal())
	return nil
}
