// Package metawa is koel's WhatsApp Cloud API channel (Meta's own WhatsApp
// Business Platform) at wa/{identifier}, per spec/channels.md §3.1. It goes
// beyond the seeds: it is how most WhatsApp bots are connected today.
//
//   - GET wa/{identifier}: the same subscription check as Messenger
//     (hub.mode, hub.verify_token, hub.challenge as plain text; 403 on
//     mismatch).
//   - POST wa/{identifier}: X-Hub-Signature-256 over the raw body with the
//     app secret. Every entry[] × changes[] × value.messages[] is read:
//     text (text.body), interactive replies (button_reply / list_reply:
//     their id, which koel sets to the choice's text) and template
//     quick-reply buttons (button.payload). Status callbacks
//     (value.statuses[]), media without a caption and messages addressed
//     to another phone number than the connection's are skipped.
//     Duplicates are dropped by the wamid.
//
// Replies go through the outbox to POST /{phone-number-id}/messages with
// the connection's access token as a bearer header: a text message, or an
// interactive reply-button message when the reply has 1–3 quick replies
// (more are listed in the text). Sends are paced at 80 messages per second
// per number (the Cloud API's default throughput) and Graph error codes
// (130429 rate limit, 131056 pair rate, 131000 temporary, 190 token, …)
// are classified as retryable or final.
//
// Connection settings (meta_whatsapp): phone_number_id, access_token,
// app_secret, verify_token and, for tests, graph_url.
package metawa

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/channels/smf"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
)

// Channel is the WhatsApp Cloud API channel; its callback path is
// wa/{identifier}.
const Channel ivr.Channel = "wa"

// DefaultGraphURL is the Graph API host; GraphVersion is the API version
// called on it.
const (
	DefaultGraphURL = "https://graph.facebook.com"
	GraphVersion    = "v21.0"
)

// DefaultNumberRate is the Cloud API's default throughput per business
// number (messages per second).
const DefaultNumberRate = 80

// PhoneNumberID returns the connection's phone-number id.
func PhoneNumberID(conn ivr.Connection) string { return conn.Settings.MetaWhatsApp.PhoneNumberID }

// Adapter serves wa/{identifier}.
type Adapter struct {
	Pipeline *platform.Pipeline
}

// Routes registers the Cloud API webhook on r.
func (a *Adapter) Routes(r *mux.Router) {
	r.HandleFunc("/wa/{identifier}", platform.MetaVerification(a.Pipeline, Channel,
		func(c ivr.Connection) ivr.Secret { return c.Settings.MetaWhatsApp.VerifyToken })).Methods(http.MethodGet)
	r.HandleFunc("/wa/{identifier}", platform.Receive(a.Pipeline, platform.Webhook[[]byte]{
		Channel: Channel,
		Read:    platform.Body(platform.MaxBody),
		Verify:  platform.MetaSignature(func(c ivr.Connection) ivr.Secret { return c.Settings.MetaWhatsApp.AppSecret }),
		Parse: func(conn ivr.Connection, body []byte) ([]platform.Message, error) {
			return Parse(body, PhoneNumberID(conn))
		},
	})).Methods(http.MethodPost)
}

// Notification is the body of a Cloud API webhook POST.
type Notification struct {
	Object string `json:"object"`
	Entry  []struct {
		ID      string `json:"id"`
		Changes []struct {
			Field string `json:"field"`
			Value Value  `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

// Value is one change's value: messages, or status callbacks.
type Value struct {
	MessagingProduct string `json:"messaging_product"`
	Metadata         struct {
		DisplayPhoneNumber string `json:"display_phone_number"`
		PhoneNumberID      string `json:"phone_number_id"`
	} `json:"metadata"`
	Messages []InMessage      `json:"messages"`
	Statuses []map[string]any `json:"statuses"`
}

// InMessage is one user message.
type InMessage struct {
	From      string `json:"from"`
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
	Type      string `json:"type"`
	Text      *struct {
		Body string `json:"body"`
	} `json:"text"`
	Interactive *struct {
		Type        string `json:"type"`
		ButtonReply *Reply `json:"button_reply"`
		ListReply   *Reply `json:"list_reply"`
	} `json:"interactive"`
	Button *struct {
		Payload string `json:"payload"`
		Text    string `json:"text"`
	} `json:"button"`
	Image *struct {
		Caption string `json:"caption"`
	} `json:"image"`
}

// Reply is an interactive button or list choice.
type Reply struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// Parse reads a notification into its user messages, keeping only those
// addressed to phoneNumberID (all when it is empty).
func Parse(body []byte, phoneNumberID string) ([]platform.Message, error) {
	var n Notification
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, api.Errorf(http.StatusBadRequest, "malformed JSON")
	}
	if n.Object != "whatsapp_business_account" {
		return nil, api.Errorf(http.StatusBadRequest, "object must be \"whatsapp_business_account\"")
	}
	var out []platform.Message
	for _, e := range n.Entry {
		for _, c := range e.Changes {
			v := c.Value
			if phoneNumberID != "" && v.Metadata.PhoneNumberID != phoneNumberID {
				continue
			}
			for _, m := range v.Messages {
				if text := messageText(m); text != "" {
					out = append(out, platform.Message{ID: m.ID, From: m.From, To: v.Metadata.PhoneNumberID, Text: text})
				}
			}
		}
	}
	return out, nil
}

func messageText(m InMessage) string {
	switch m.Type {
	case "text":
		if m.Text != nil {
			return m.Text.Body
		}
	case "interactive":
		if i := m.Interactive; i != nil {
			for _, r := range []*Reply{i.ButtonReply, i.ListReply} {
				if r != nil {
					if r.ID != "" {
						return r.ID
					}
					return r.Title
				}
			}
		}
	case "button":
		if m.Button != nil {
			if m.Button.Payload != "" {
				return m.Button.Payload
			}
			return m.Button.Text
		}
	case "image":
		if m.Image != nil {
			return m.Image.Caption
		}
	}
	return ""
}

// SendRequest is the /messages body koel posts.
type SendRequest struct {
	MessagingProduct string       `json:"messaging_product"`
	RecipientType    string       `json:"recipient_type"`
	To               string       `json:"to"`
	Type             string       `json:"type"`
	Text             *TextBody    `json:"text,omitempty"`
	Interactive      *Interactive `json:"interactive,omitempty"`
}

// TextBody is a text message.
type TextBody struct {
	Body string `json:"body"`
}

// Interactive is a reply-button message.
type Interactive struct {
	Type   string          `json:"type"`
	Body   InteractiveBody `json:"body"`
	Action Action          `json:"action"`
}

// InteractiveBody is the text of an interactive message.
type InteractiveBody struct {
	Text string `json:"text"`
}

// Action holds the reply buttons.
type Action struct {
	Buttons []ReplyButton `json:"buttons"`
}

// ReplyButton is one reply button.
type ReplyButton struct {
	Type  string `json:"type"`
	Reply Reply  `json:"reply"`
}

// Render renders a Standard Message Format message to a WhatsApp number:
// reply buttons for 1–3 quick replies (button ids are the choices' text, so
// a tap reads to the bot like typing it), plain text otherwise.
func Render(conn ivr.Connection, to string, m smf.Message) (platform.Request, error) {
	id := PhoneNumberID(conn)
	if id == "" {
		return platform.Request{}, errors.New("connection has no phone_number_id")
	}
	req := SendRequest{MessagingProduct: "whatsapp", RecipientType: "individual", To: to}
	if n := len(m.QuickReplies); n > 0 && n <= smf.WhatsAppInteractive.MaxQuickReplies && len([]rune(m.Text)) <= smf.WhatsAppInteractive.MaxText {
		fit := smf.WhatsAppInteractive.Fit(m)
		in := &Interactive{Type: "button", Body: InteractiveBody{Text: fit.Text}}
		for _, q := range fit.QuickReplies {
			in.Action.Buttons = append(in.Action.Buttons, ReplyButton{Type: "reply", Reply: Reply{ID: q.Payload, Title: q.Title}})
		}
		req.Type, req.Interactive = "interactive", in
	} else {
		fit := smf.WhatsAppText.Fit(m)
		req.Type, req.Text = "text", &TextBody{Body: fit.Text}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return platform.Request{}, fmt.Errorf("metawa: encode send request: %w", err)
	}
	return platform.Request{Path: "/" + id + "/messages", Body: body, ContentType: "application/json"}, nil
}

// NewSender returns the Cloud API outbox sender.
func NewSender(http *platform.Sender) *platform.APISender {
	return &platform.APISender{
		HTTP:    http,
		Channel: Channel,
		Base: func(conn ivr.Connection) string {
			return strings.TrimRight(platform.Or(conn.Settings.MetaWhatsApp.GraphURL, DefaultGraphURL), "/") + "/" + GraphVersion
		},
		Render:   Render,
		Auth:     authorize,
		Classify: platform.ClassifyGraph,
		Pace:     platform.NewLimiter(DefaultNumberRate, DefaultNumberRate),
	}
}

func authorize(conn ivr.Connection, req *http.Request) error {
	if !conn.Settings.MetaWhatsApp.AccessToken.IsSet() {
		return errors.New("connection has no access token")
	}
	req.Header.Set("Authorization", "Bearer "+conn.Settings.MetaWhatsApp.AccessToken.Reveal())
	return nil
}
