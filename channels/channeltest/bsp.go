package channeltest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
)

// InfobipSend is the text send body the Infobip fake accepts.
type InfobipSend struct {
	From         string `json:"from"`
	To           string `json:"to"`
	MessageID    string `json:"messageId,omitempty"`
	CallbackData string `json:"callbackData,omitempty"`
	NotifyURL    string `json:"notifyUrl,omitempty"`
	Content      struct {
		Text       string `json:"text"`
		PreviewURL bool   `json:"previewUrl,omitempty"`
	} `json:"content"`
}

func infobipError(status int, id, text string) (int, string) {
	return status, fmt.Sprintf(`{"requestError":{"serviceException":{"messageId":%q,"text":%q}}}`, id, text)
}

// InfobipTooManyRequests is Infobip's throttling answer.
var InfobipTooManyRequests = Failure{Status: 429, RetryAfter: "1", Body: `{"errorCode":"E429","description":"Too many requests","action":"Retry later"}`}

// NewInfobip starts a fake Infobip API accepting
// POST /whatsapp/1/message/text with "Authorization: App <key>".
func NewInfobip(t testing.TB, apiKey string) *Platform {
	check := func(r *http.Request, body []byte) (int, string) {
		if r.Header.Get("Authorization") != "App "+apiKey {
			return infobipError(401, "UNAUTHORIZED", "Invalid login details")
		}
		if r.Method == http.MethodPost && r.URL.Path == "/whatsapp/1/message/interactive/buttons" {
			return checkInfobipButtons(body)
		}
		if r.Method != http.MethodPost || r.URL.Path != "/whatsapp/1/message/text" {
			return infobipError(404, "NOT_FOUND", "Requested URL not found: "+r.URL.Path)
		}
		var s InfobipSend
		if err := strictJSON(body, &s); err != nil {
			return infobipError(400, "BAD_REQUEST", err.Error())
		}
		if s.From == "" || s.To == "" || s.Content.Text == "" || runeLen(s.Content.Text) > 4096 {
			return infobipError(400, "BAD_REQUEST", "from, to and content.text (at most 4096 characters) are required")
		}
		return 0, ""
	}
	accept := func(_ *http.Request, body []byte, n int) (int, string) {
		var s InfobipSend
		_ = json.Unmarshal(body, &s)
		return 200, fmt.Sprintf(`{"to":%q,"messageCount":1,"messageId":"ib-%d","status":{"groupId":1,"groupName":"PENDING","id":7,"name":"PENDING_ENROUTE","description":"Message sent to next instance"}}`, s.To, n)
	}
	return newPlatform(t, check, accept)
}

// InfobipButtons is the interactive reply-buttons body the Infobip fake
// accepts.
type InfobipButtons struct {
	From         string `json:"from"`
	To           string `json:"to"`
	MessageID    string `json:"messageId,omitempty"`
	CallbackData string `json:"callbackData,omitempty"`
	Content      struct {
		Body struct {
			Text string `json:"text"`
		} `json:"body"`
		Action struct {
			Buttons []struct {
				Type  string `json:"type"`
				ID    string `json:"id"`
				Title string `json:"title"`
			} `json:"buttons"`
		} `json:"action"`
	} `json:"content"`
}

func checkInfobipButtons(body []byte) (int, string) {
	var s InfobipButtons
	if err := strictJSON(body, &s); err != nil {
		return infobipError(400, "BAD_REQUEST", err.Error())
	}
	b := s.Content.Action.Buttons
	if s.From == "" || s.To == "" || s.Content.Body.Text == "" || runeLen(s.Content.Body.Text) > 1024 || len(b) == 0 || len(b) > 3 {
		return infobipError(400, "BAD_REQUEST", "from, to, body text (at most 1024) and 1 to 3 buttons are required")
	}
	for _, x := range b {
		if x.Type != "REPLY" || x.ID == "" || len(x.ID) > 256 || x.Title == "" || runeLen(x.Title) > 20 {
			return infobipError(400, "BAD_REQUEST", "invalid button")
		}
	}
	return 0, ""
}

// NewGupshup starts a fake Gupshup API accepting POST /wa/api/v1/msg,
// form-encoded, with "apikey: <key>".
func NewGupshup(t testing.TB, apiKey string) *Platform {
	check := func(r *http.Request, body []byte) (int, string) {
		if r.Header.Get("apikey") != apiKey {
			return 401, `{"status":"error","message":"Authentication Failed"}`
		}
		if r.Method != http.MethodPost || r.URL.Path != "/wa/api/v1/msg" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			return 404, `{"status":"error","message":"not found"}`
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return 400, `{"status":"error","message":"malformed form"}`
		}
		known := map[string]bool{"channel": true, "source": true, "destination": true, "message": true, "src.name": true, "disablePreview": true}
		for k := range form {
			if !known[k] {
				return 400, fmt.Sprintf(`{"status":"error","message":"unknown parameter %s"}`, k)
			}
		}
		if form.Get("channel") != "whatsapp" || form.Get("source") == "" || form.Get("destination") == "" || form.Get("message") == "" {
			return 400, `{"status":"error","message":"channel, source, destination and message are required"}`
		}
		var m GupshupMessage
		if err := strictJSON([]byte(form.Get("message")), &m); err != nil {
			return 400, `{"status":"error","message":"Invalid message"}`
		}
		switch m.Type {
		case "text":
			if m.Text == "" || runeLen(m.Text) > 4096 || m.Content != nil || m.Options != nil {
				return 400, `{"status":"error","message":"Invalid text message"}`
			}
		case "quick_reply":
			if m.Content == nil || m.Content.Type != "text" || m.Content.Text == "" || runeLen(m.Content.Text) > 1024 || m.MsgID == "" || len(m.Options) == 0 || len(m.Options) > 3 {
				return 400, `{"status":"error","message":"Invalid quick_reply message"}`
			}
			for _, o := range m.Options {
				if o.Type != "text" || o.Title == "" || runeLen(o.Title) > 20 {
					return 400, `{"status":"error","message":"Invalid quick_reply option"}`
				}
			}
		default:
			return 400, `{"status":"error","message":"Invalid message type"}`
		}
		return 0, ""
	}
	accept := func(_ *http.Request, _ []byte, n int) (int, string) {
		return 202, fmt.Sprintf(`{"status":"submitted","messageId":"gs-%d"}`, n)
	}
	return newPlatform(t, check, accept)
}

// GupshupMessage is the message parameter the Gupshup fake accepts: text
// or quick_reply.
type GupshupMessage struct {
	Type    string `json:"type"`
	Text    string `json:"text,omitempty"`
	MsgID   string `json:"msgid,omitempty"`
	Content *struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content,omitempty"`
	Options []struct {
		Type  string `json:"type"`
		Title string `json:"title"`
	} `json:"options,omitempty"`
}

// KarixSend is the (assumed) Karix send body.
type KarixSend struct {
	Channel     string   `json:"channel"`
	Source      string   `json:"source"`
	Destination []string `json:"destination"`
	Content     struct {
		Text string `json:"text"`
	} `json:"content"`
}

// NewKarix starts a fake Karix API accepting POST /message/ with
// "Authorization: Bearer <key>" and api-version 2.0 (the assumptions of
// package karix).
func NewKarix(t testing.TB, apiKey string) *Platform {
	check := func(r *http.Request, body []byte) (int, string) {
		if r.Header.Get("Authorization") != "Bearer "+apiKey {
			return 401, `{"error":{"message":"Authentication failed"}}`
		}
		if r.Method != http.MethodPost || r.URL.Path != "/message/" || r.Header.Get("api-version") != "2.0" {
			return 404, `{"error":{"message":"not found"}}`
		}
		var s KarixSend
		if err := strictJSON(body, &s); err != nil || s.Channel != "whatsapp" || s.Source == "" || len(s.Destination) != 1 || s.Content.Text == "" {
			return 400, `{"error":{"message":"invalid message"}}`
		}
		return 0, ""
	}
	accept := func(_ *http.Request, _ []byte, n int) (int, string) {
		return 202, fmt.Sprintf(`{"objects":[{"uid":"kx-%d","status":"queued"}]}`, n)
	}
	return newPlatform(t, check, accept)
}

// JioSend is the custom-message body the Jio fake accepts.
type JioSend struct {
	MsgType string `json:"msgtype"`
	ToUser  string `json:"touser"`
	Text    struct {
		Content string `json:"content"`
	} `json:"text"`
}

// NewJio starts a fake JioChat API accepting
// POST /custom/custom_send.action with "Authorization: Bearer <token>".
func NewJio(t testing.TB, token string) *Platform {
	check := func(r *http.Request, body []byte) (int, string) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			return 401, `{"errcode":40001,"errmsg":"invalid credential"}`
		}
		if r.Method != http.MethodPost || r.URL.Path != "/custom/custom_send.action" {
			return 404, `{"errcode":404,"errmsg":"not found"}`
		}
		var s JioSend
		if err := strictJSON(body, &s); err != nil || s.MsgType != "text" || s.ToUser == "" || s.Text.Content == "" || runeLen(s.Text.Content) > 1600 {
			return 400, `{"errcode":40008,"errmsg":"invalid message"}`
		}
		return 0, ""
	}
	accept := func(_ *http.Request, _ []byte, _ int) (int, string) {
		return 200, `{"errcode":0,"errmsg":"ok"}`
	}
	return newPlatform(t, check, accept)
}

// NewReceiver starts a fake integrator endpoint that accepts every JSON
// POST (an event webhook, a webhook URL).
func NewReceiver(t testing.TB) *Platform {
	check := func(r *http.Request, body []byte) (int, string) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || !json.Valid(body) {
			return 400, `{"error":"JSON POST expected"}`
		}
		return 0, ""
	}
	return newPlatform(t, check, func(*http.Request, []byte, int) (int, string) { return 200, `{}` })
}
