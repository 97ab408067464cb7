// Package gupshup is koel's Gupshup WhatsApp channel at
// gupshup/{identifier}, per the seed "Adding the WhatsApp Channel Using
// GupShup Application" and spec/channels.md §3.3.
//
// # Inbound
//
// Both of Gupshup's callback formats are read, told apart by shape:
//
//   - Enterprise (the seed's): flat fields waNumber (the business number),
//     mobile (the user), name, type (text, interactive, button, …), text,
//     interactive (a JSON string: button_reply, list_reply or a WhatsApp Pay
//     payment) and timestamp (ms). It carries no message id, so the dedupe
//     key is mobile + timestamp + type.
//   - Self-serve v2: {"app", "timestamp", "version": 2, "type": "message",
//     "payload": {"id", "source", "type", "payload": {...}, "sender": {...}}};
//     only type "message" is inbound text (user, system, message-event and
//     billing events are acknowledged and skipped); payload.id is the
//     dedupe key.
//
// A payment is handed to the bot as one line of text, "Payment <status>:
// <amount> <currency>, transaction <id>, reference <ref>", so the
// transcript keeps it and the bot can answer.
//
// # Associate an App
//
// When the connection has an app_token (the associated app's client
// secret), every request must carry "Authorization: [Bearer ]<token>": an
// HS256 JWT signed with that secret and not expired, as the associated app
// issues them, or the app_token itself (a static token), compared in
// constant time. Errors follow the seed's
// table: no Authorization header 401 "Access token not found"; a wrong or
// expired token 401 "Invalid access"; a missing JSON body, an unknown
// identifier in the URL (the seed's "streamId") or a body without "mobile"
// 500 "Internal Server Error". An inactive connection answers 404.
//
// # Outbound
//
// Replies go through the outbox to POST {api}/wa/api/v1/msg,
// form-encoded, header "apikey: <api_key>": channel=whatsapp,
// source=<source> (the business number), src.name=<app_name>,
// destination=<user>, message={"type":"text","text":…}; a reply with 1–3
// quick replies is a quick_reply message ({"type":"quick_reply","msgid",
// "content":{"type":"text","text"},"options":[{"type":"text","title"}]});
// more are listed in the text.
package gupshup

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/channels/smf"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
)

// Channel is the Gupshup channel; its callback path is gupshup/{identifier}.
const Channel ivr.Channel = "gupshup"

// DefaultAPIURL is Gupshup's API base.
const DefaultAPIURL = "https://api.gupshup.io"

// SendPath is the session-message send path.
const SendPath = "/wa/api/v1/msg"

// Errors of the seed's table.
var (
	errNoToken      = api.Errorf(http.StatusUnauthorized, "Access token not found")
	errInvalidToken = api.Errorf(http.StatusUnauthorized, "Invalid access")
	errInternal     = api.Errorf(http.StatusInternalServerError, "Internal Server Error")
)

// Adapter serves gupshup/{identifier}.
type Adapter struct {
	Pipeline *platform.Pipeline
	// Now returns the time for token expiry (nil: time.Now).
	Now func() time.Time
}

// Routes registers the Gupshup webhook on r.
func (a *Adapter) Routes(r *mux.Router) {
	r.HandleFunc("/gupshup/{identifier}", platform.Receive(a.Pipeline, platform.Webhook[[]byte]{
		Channel:   Channel,
		Lookup:    a.connection,
		Authorize: a.authorize,
		Read: func(w http.ResponseWriter, r *http.Request) ([]byte, error) {
			body, err := platform.ReadBody(w, r, platform.MaxBody)
			var ae *api.Error
			if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
				return nil, errInternal // the seed: JSON request body is missing → 500
			}
			return body, err
		},
		Parse: func(_ ivr.Connection, body []byte) ([]platform.Message, error) { return Parse(body) },
	})).Methods(http.MethodPost)
}

// connection finds the active connection; an unknown one is the seed's
// 500 for an invalid streamId.
func (a *Adapter) connection(r *http.Request, identifier string) (ivr.Connection, error) {
	conn, err := a.Pipeline.Connections.GetConnection(r.Context(), Channel, identifier)
	switch {
	case errors.Is(err, ivr.ErrNotFound):
		a.Pipeline.Metrics.Rejected(Channel, platform.RejectNotFound)
		return ivr.Connection{}, errInternal // the seed: invalid streamId → 500
	case err != nil:
		return ivr.Connection{}, fmt.Errorf("gupshup: get connection: %w", err)
	case !conn.Active:
		a.Pipeline.Metrics.Rejected(Channel, platform.RejectNotFound)
		return ivr.Connection{}, fmt.Errorf("gupshup connection: %w", ivr.ErrConnectionInactive)
	}
	return conn, nil
}

// authorize is the "Associate an App" token check, when the connection has
// a token: the static token or a JWT signed with it, bare or after
// "Bearer".
func (a *Adapter) authorize(conn ivr.Connection, r *http.Request) error {
	secret := conn.Settings.Gupshup.AppToken.Reveal()
	if secret == "" {
		return nil
	}
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if h == "" {
		return errNoToken
	}
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		h = strings.TrimSpace(h[7:])
	}
	if !platform.EqualSecret(h, secret) && VerifyJWT(h, secret, a.now()) != nil {
		return errInvalidToken
	}
	return nil
}

func (a *Adapter) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// ErrBadToken means an Associate-an-App token is malformed, wrongly signed
// or expired.
var ErrBadToken = errors.New("gupshup: bad token")

// VerifyJWT checks an HS256 JWT against secret: the header's alg must be
// HS256, the signature must match (constant time), and exp / nbf, when
// present, must hold at now.
func VerifyJWT(token, secret string, now time.Time) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || secret == "" {
		return ErrBadToken
	}
	var head struct {
		Alg string `json:"alg"`
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hb, &head) != nil || head.Alg != "HS256" {
		return ErrBadToken
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return ErrBadToken
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return ErrBadToken
	}
	var claims struct {
		Exp *float64 `json:"exp"`
		Nbf *float64 `json:"nbf"`
	}
	cb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(cb, &claims) != nil {
		return ErrBadToken
	}
	sec := float64(now.Unix())
	if (claims.Exp != nil && sec >= *claims.Exp) || (claims.Nbf != nil && sec < *claims.Nbf) {
		return ErrBadToken
	}
	return nil
}

// SignJWT returns an HS256 JWT of claims signed with secret (what an
// associated app sends; tests and tools use it).
func SignJWT(claims map[string]any, secret string) string {
	head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	cb, _ := json.Marshal(claims)
	body := base64.RawURLEncoding.EncodeToString(cb)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(head + "." + body))
	return head + "." + body + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// Enterprise is the seed's flat inbound shape.
type Enterprise struct {
	WANumber    string          `json:"waNumber"`
	Mobile      string          `json:"mobile"`
	Name        string          `json:"name"`
	Type        string          `json:"type"`
	Text        json.RawMessage `json:"text"`
	Interactive string          `json:"interactive"`
	Button      string          `json:"button"`
	Timestamp   json.RawMessage `json:"timestamp"`
}

// V2 is the self-serve inbound shape.
type V2 struct {
	App       string `json:"app"`
	Timestamp int64  `json:"timestamp"`
	Version   int    `json:"version"`
	Type      string `json:"type"`
	Payload   struct {
		ID      string          `json:"id"`
		Source  string          `json:"source"`
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload"`
		Sender  struct {
			Phone string `json:"phone"`
			Name  string `json:"name"`
		} `json:"sender"`
	} `json:"payload"`
}

// Parse reads either inbound format into user messages. A body that is not
// JSON or has neither shape's user field (mobile / payload.source) is the
// seed's 500.
func Parse(body []byte) ([]platform.Message, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, errInternal
	}
	if _, ok := probe["payload"]; ok {
		return parseV2(body)
	}
	var e Enterprise
	if err := json.Unmarshal(body, &e); err != nil || strings.TrimSpace(e.Mobile) == "" {
		return nil, errInternal // the seed: missing "mobile" → 500
	}
	ts := strings.Trim(string(e.Timestamp), `"`)
	msg := platform.Message{ID: "ent:" + e.Mobile + ":" + ts + ":" + e.Type, From: e.Mobile, To: e.WANumber}
	switch e.Type {
	case "text":
		msg.Text = stringOrField(e.Text, "body")
	case "interactive":
		t, err := interactiveText(e.Interactive)
		if err != nil {
			return nil, api.Errorf(http.StatusBadRequest, "interactive: %v", err)
		}
		msg.Text = t
	case "button":
		msg.Text = fieldOf(e.Button, "payload", "text")
	}
	if msg.Text == "" {
		return nil, nil // media, location, …: acknowledged, nothing for the bot
	}
	return []platform.Message{msg}, nil
}

func parseV2(body []byte) ([]platform.Message, error) {
	var v V2
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, errInternal
	}
	if v.Type != "message" {
		return nil, nil // user, system, message-event, billing events
	}
	from := v.Payload.Source
	if from == "" {
		from = v.Payload.Sender.Phone
	}
	if from == "" {
		return nil, errInternal
	}
	var inner struct {
		Text    string `json:"text"`
		Title   string `json:"title"`
		ID      string `json:"id"`
		Reply   string `json:"reply"`
		Caption string `json:"caption"`
	}
	_ = json.Unmarshal(v.Payload.Payload, &inner)
	text := ""
	switch v.Payload.Type {
	case "text":
		text = inner.Text
	case "button_reply", "list_reply", "quick_reply":
		text = inner.Title
		if text == "" {
			text = inner.Reply
		}
	case "image", "video", "file":
		text = inner.Caption
	}
	if text == "" {
		return nil, nil
	}
	return []platform.Message{{ID: v.Payload.ID, From: from, Text: text}}, nil
}

// interactiveText reads the enterprise "interactive" JSON string: a
// button or list reply's title, or a payment as one line of text.
func interactiveText(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty")
	}
	var in struct {
		Type        string `json:"type"`
		ButtonReply *struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		} `json:"button_reply"`
		ListReply *struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		} `json:"list_reply"`
		Payment *struct {
			TransactionID string `json:"transaction_id"`
			ReferenceID   string `json:"reference_id"`
			TotalAmount   struct {
				Offset int64 `json:"offset"`
				Value  int64 `json:"value"`
			} `json:"total_amount"`
			Currency        string `json:"currency"`
			TransactionType string `json:"transaction_type"`
			Status          string `json:"status"`
		} `json:"payment"`
	}
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return "", errors.New("not a JSON object")
	}
	switch {
	case in.ButtonReply != nil:
		return in.ButtonReply.Title, nil
	case in.ListReply != nil:
		return in.ListReply.Title, nil
	case in.Payment != nil:
		p := in.Payment
		amount := strconv.FormatInt(p.TotalAmount.Value, 10)
		if p.TotalAmount.Offset > 1 {
			amount = strconv.FormatFloat(float64(p.TotalAmount.Value)/float64(p.TotalAmount.Offset), 'f', 2, 64)
		}
		return fmt.Sprintf("Payment %s: %s %s, transaction %s, reference %s", p.Status, amount, p.Currency, p.TransactionID, p.ReferenceID), nil
	}
	return "", nil
}

// stringOrField reads a JSON string, or field of a JSON object.
func stringOrField(raw json.RawMessage, field string) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) == nil {
		if v, ok := m[field].(string); ok {
			return v
		}
	}
	return ""
}

// fieldOf reads the first non-empty string field of a JSON object s, or s
// itself when it is not JSON.
func fieldOf(s string, fields ...string) string {
	var m map[string]any
	if json.Unmarshal([]byte(s), &m) != nil {
		return s
	}
	for _, f := range fields {
		if v, ok := m[f].(string); ok && v != "" {
			return v
		}
	}
	return ""
}

// QuickReplyMessage is Gupshup's quick_reply session message.
type QuickReplyMessage struct {
	Type    string             `json:"type"`
	MsgID   string             `json:"msgid"`
	Content QuickReplyContent  `json:"content"`
	Options []QuickReplyOption `json:"options"`
}

// QuickReplyContent is the text of a quick_reply message.
type QuickReplyContent struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// QuickReplyOption is one choice of a quick_reply message.
type QuickReplyOption struct {
	Type  string `json:"type"`
	Title string `json:"title"`
}

// Render renders a message as a session-message form from the
// connection's source number.
func Render(conn ivr.Connection, to string, m smf.Message) (platform.Request, error) {
	source := conn.Settings.Gupshup.Source
	if source == "" {
		return platform.Request{}, errors.New("connection has no source")
	}
	var msg []byte
	var err error
	if n := len(m.QuickReplies); n > 0 && n <= smf.WhatsAppInteractive.MaxQuickReplies && len([]rune(m.Text)) <= smf.WhatsAppInteractive.MaxText {
		fit := smf.WhatsAppInteractive.Fit(m)
		qr := QuickReplyMessage{Type: "quick_reply", MsgID: "qr", Content: QuickReplyContent{Type: "text", Text: fit.Text}}
		for _, q := range fit.QuickReplies {
			qr.Options = append(qr.Options, QuickReplyOption{Type: "text", Title: q.Title})
		}
		msg, err = json.Marshal(qr)
	} else {
		msg, err = json.Marshal(map[string]string{"type": "text", "text": smf.WhatsAppText.Fit(m).Text})
	}
	if err != nil {
		return platform.Request{}, fmt.Errorf("gupshup: encode message: %w", err)
	}
	form := url.Values{"channel": {"whatsapp"}, "source": {source}, "destination": {to}, "message": {string(msg)}}
	if app := conn.Settings.Gupshup.AppName; app != "" {
		form.Set("src.name", app)
	}
	return platform.Request{Path: SendPath, Body: []byte(form.Encode()), ContentType: "application/x-www-form-urlencoded"}, nil
}

// NewSender returns the Gupshup outbox sender.
func NewSender(http *platform.Sender) *platform.APISender {
	return &platform.APISender{
		HTTP:    http,
		Channel: Channel,
		Base:    func(conn ivr.Connection) string { return platform.Or(conn.Settings.Gupshup.BaseURL, DefaultAPIURL) },
		Render:  Render,
		Auth:    authorize,
		Pace:    platform.NewLimiter(80, 80),
	}
}

func authorize(conn ivr.Connection, req *http.Request) error {
	if !conn.Settings.Gupshup.APIKey.IsSet() {
		return errors.New("connection has no api_key")
	}
	req.Header.Set("apikey", conn.Settings.Gupshup.APIKey.Reveal())
	return nil
}
