// Package karix is koel's Karix (Tanla) WhatsApp channel at
// karix/{identifier}, per the seed "Adding the WhatsApp Channel Using Karix
// Application".
//
// # Assumptions
//
// Karix does not publish its WhatsApp webhook or send API (spec/channels.md
// §3.4: the "Karix RCM API for WhatsApp" guide is only available from the
// Karix account team). The seed tells what an integration is configured
// with: a vendor, an account key, a "From" number and a webhook URL shared
// with Karix support. This package assumes, and should be checked against
// the account team's guide before production use:
//
//   - Inbound: a JSON POST of Karix's message object, either bare or
//     wrapped as {"data": [ ... ]}:
//     {"uid": "<message id>", "channel": "whatsapp", "direction":
//     "inbound", "source": "<user number>", "destination": "<business
//     number>", "content_type": "text", "content": {"text": "…"}}.
//     Only direction "inbound" (or absent) with text content is read; uid
//     is the dedupe key (at-least-once delivery, as the spec advises).
//   - Inbound authentication: Karix signs nothing publicly documented, so
//     the connection's api_key (the seed's Account Key, which both sides
//     hold) must arrive as the Authorization header ("Bearer <key>" or the
//     bare key), compared in constant time; a connection without one
//     refuses every request (401).
//   - Send: POST {api}/message/ (default https://api.karix.io, or the
//     connection's api_base_url), JSON {"channel": "whatsapp", "source":
//     <sender>, "destination": ["<user>"], "content": {"text": "…"}},
//     header "Authorization: Bearer <api_key>" (the seed's Account Key) and
//     "api-version: 2.0". Any 2xx is success; 429 and 5xx are retried.
package karix

import (
	"bytes"
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

// Channel is the Karix channel; its callback path is karix/{identifier}.
const Channel ivr.Channel = "karix"

// DefaultAPIURL is the assumed Karix API base.
const DefaultAPIURL = "https://api.karix.io"

// SendPath is the assumed send path.
const SendPath = "/message/"

// Adapter serves karix/{identifier}.
type Adapter struct {
	Pipeline *platform.Pipeline
}

// Routes registers the Karix webhook on r.
func (a *Adapter) Routes(r *mux.Router) {
	r.HandleFunc("/karix/{identifier}", platform.Receive(a.Pipeline, platform.Webhook[[]byte]{
		Channel:   Channel,
		Authorize: platform.SharedSecretAuth(func(c ivr.Connection) ivr.Secret { return c.Settings.Karix.APIKey }),
		Read:      platform.Body(platform.MaxBody),
		Parse:     func(_ ivr.Connection, body []byte) ([]platform.Message, error) { return Parse(body) },
	})).Methods(http.MethodPost)
}

// Message is Karix's (assumed) message object.
type Message struct {
	UID         string `json:"uid"`
	Channel     string `json:"channel"`
	Direction   string `json:"direction"`
	Source      string `json:"source"`
	Destination string `json:"destination"`
	ContentType string `json:"content_type"`
	Content     struct {
		Text string `json:"text"`
	} `json:"content"`
}

// Parse reads a bare message object or {"data": [...]}.
func Parse(body []byte) ([]platform.Message, error) {
	var list []Message
	trimmed := bytes.TrimSpace(body)
	var wrapped struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(trimmed, &wrapped); err != nil {
		return nil, api.Errorf(http.StatusBadRequest, "malformed JSON")
	}
	if len(wrapped.Data) > 0 {
		if err := json.Unmarshal(wrapped.Data, &list); err != nil {
			var one Message
			if err := json.Unmarshal(wrapped.Data, &one); err != nil {
				return nil, api.Errorf(http.StatusBadRequest, "data must be a message or a list of messages")
			}
			list = []Message{one}
		}
	} else {
		var one Message
		if err := json.Unmarshal(trimmed, &one); err != nil {
			return nil, api.Errorf(http.StatusBadRequest, "malformed message")
		}
		list = []Message{one}
	}
	var out []platform.Message
	for i, m := range list {
		if m.Direction != "" && m.Direction != "inbound" {
			continue // delivery reports and echoes of outbound messages
		}
		if m.UID == "" || m.Source == "" {
			return nil, api.Errorf(http.StatusBadRequest, "message %d: uid and source are required", i+1)
		}
		if m.Channel != "" && m.Channel != "whatsapp" {
			continue
		}
		if m.Content.Text != "" {
			out = append(out, platform.Message{ID: m.UID, From: m.Source, To: m.Destination, Text: m.Content.Text})
		}
	}
	return out, nil
}

// SendRequest is the (assumed) send body.
type SendRequest struct {
	Channel     string   `json:"channel"`
	Source      string   `json:"source"`
	Destination []string `json:"destination"`
	Content     struct {
		Text string `json:"text"`
	} `json:"content"`
}

// Render renders a message as a send from the connection's sender.
func Render(conn ivr.Connection, to string, m smf.Message) (platform.Request, error) {
	from := conn.Settings.Karix.Sender
	if from == "" {
		return platform.Request{}, errors.New("connection has no sender")
	}
	req := SendRequest{Channel: "whatsapp", Source: from, Destination: []string{to}}
	req.Content.Text = smf.WhatsAppText.Fit(m).Text
	body, err := json.Marshal(req)
	if err != nil {
		return platform.Request{}, fmt.Errorf("karix: encode send request: %w", err)
	}
	return platform.Request{Path: SendPath, Body: body, ContentType: "application/json"}, nil
}

// NewSender returns the Karix outbox sender.
func NewSender(http *platform.Sender) *platform.APISender {
	return &platform.APISender{
		HTTP:    http,
		Channel: Channel,
		Base:    func(conn ivr.Connection) string { return platform.Or(conn.Settings.Karix.BaseURL, DefaultAPIURL) },
		Render:  Render,
		Auth:    authorize,
		Pace:    platform.NewLimiter(80, 80),
	}
}

func authorize(conn ivr.Connection, req *http.Request) error {
	if !conn.Settings.Karix.APIKey.IsSet() {
		return errors.New("connection has no api_key")
	}
	req.Header.Set("Authorization", "Bearer "+conn.Settings.Karix.APIKey.Reveal())
	req.Header.Set("api-version", "2.0")
	return nil
}
