// Package jio is koel's Jio channel at jio/{identifier}, as the seed
// "Deploying to Jio" sets it up: a callback URL shared with the Jio team
// and the access token they provide.
//
// # The payload implemented
//
// Jio publishes no bot-callback specification (spec/channels.md §4); koel
// implements the JioChat bot protocol as open-source RapidPro/Courier
// implement it, which is WeChat-style:
//
//   - Verification, GET jio/{identifier}?signature=&timestamp=&nonce=&echostr=:
//     signature must be hex(SHA1(the sorted concatenation of the
//     connection's app_secret, timestamp and nonce)); the echostr is
//     answered as plain text, anything else 403.
//   - Inbound, POST jio/{identifier} with the same three query parameters
//     (koel requires the signature on POSTs too; Courier does not check
//     it) — or, instead, "Authorization: Bearer <access_token>" with the
//     token the Jio team provided. JSON: {"ToUsername": "<bot>", "FromUserName": "<openid>",
//     "CreateTime": <ms>, "MsgType": "text", "MsgId": "<id>", "Content":
//     "…"}. MsgType text is handed to the bot; image, video and voice
//     (MediaId) and events (MsgType "event", Event subscribe/unsubscribe)
//     are acknowledged and skipped. A body with neither MsgId nor Event is
//     a 400. MsgId is the dedupe key.
//   - Send: POST {api}/custom/custom_send.action (default
//     https://channels.jiochat.com), "Authorization: Bearer <access_token>"
//     (the token the Jio team provides), {"msgtype": "text", "touser":
//     "<openid>", "text": {"content": "…"}}, at most 1600 characters per
//     message (quick replies are listed in the text). 429 is retried.
package jio

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/channels/smf"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
)

// Channel is the Jio channel; its callback path is jio/{identifier}.
const Channel = ivr.ChannelJio

// DefaultAPIURL is JioChat's API base.
const DefaultAPIURL = "https://channels.jiochat.com"

// SendPath is the custom-message send path.
const SendPath = "/custom/custom_send.action"

// Signature returns the hex SHA-1 of the sorted concatenation of secret,
// timestamp and nonce.
func Signature(secret, timestamp, nonce string) string {
	parts := []string{secret, timestamp, nonce}
	sort.Strings(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, "")))
	return hex.EncodeToString(sum[:])
}

// Adapter serves jio/{identifier}.
type Adapter struct {
	Pipeline *platform.Pipeline
}

// Routes registers the Jio webhook on r.
func (a *Adapter) Routes(r *mux.Router) {
	r.HandleFunc("/jio/{identifier}", a.verify).Methods(http.MethodGet)
	r.HandleFunc("/jio/{identifier}", platform.Receive(a.Pipeline, platform.Webhook[[]byte]{
		Channel: Channel,
		// The signature covers the query, not the body: it is checked
		// before the body is read.
		Authorize: func(conn ivr.Connection, r *http.Request) error {
			if !signed(r, conn.Settings.Jio.AppSecret.Reveal()) && !platform.SharedSecret(r, conn.Settings.Jio.AccessToken.Reveal()) {
				return api.Errorf(http.StatusForbidden, "invalid signature")
			}
			return nil
		},
		Read:  platform.Body(platform.MaxBody),
		Parse: func(_ ivr.Connection, body []byte) ([]platform.Message, error) { return Parse(body) },
	})).Methods(http.MethodPost)
}

func signed(r *http.Request, secret string) bool {
	q := r.URL.Query()
	ts, nonce, sig := q.Get("timestamp"), q.Get("nonce"), strings.ToLower(q.Get("signature"))
	if secret == "" || ts == "" || nonce == "" || len(sig) != sha1.Size*2 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(sig), []byte(Signature(secret, ts, nonce))) == 1
}

func (a *Adapter) verify(w http.ResponseWriter, r *http.Request) {
	conn, err := a.Pipeline.Connection(r.Context(), Channel, mux.Vars(r)["identifier"])
	if err != nil {
		a.Pipeline.Fail(w, r, Channel, err)
		return
	}
	echo := r.URL.Query().Get("echostr")
	if !signed(r, conn.Settings.Jio.AppSecret.Reveal()) {
		a.Pipeline.Metrics.Rejected(Channel, platform.RejectSignature)
		api.WriteError(w, api.Errorf(http.StatusForbidden, "invalid signature"))
		return
	}
	if echo == "" || len(echo) > platform.MaxChallengeBytes || strings.ContainsAny(echo, "<>&\"'\r\n\x00") {
		api.WriteError(w, api.Errorf(http.StatusBadRequest, "echostr missing or malformed"))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write([]byte(echo))
}

// Inbound is a JioChat message or event.
type Inbound struct {
	ToUsername   string          `json:"ToUsername"`
	FromUserName string          `json:"FromUserName"`
	CreateTime   int64           `json:"CreateTime"`
	MsgType      string          `json:"MsgType"`
	MsgID        json.RawMessage `json:"MsgId"`
	Content      string          `json:"Content"`
	MediaID      string          `json:"MediaId"`
	Event        string          `json:"Event"`
}

// Parse reads one inbound message or event.
func Parse(body []byte) ([]platform.Message, error) {
	var in Inbound
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, api.Errorf(http.StatusBadRequest, "malformed JSON")
	}
	id := strings.Trim(string(in.MsgID), `"`)
	if id == "null" {
		id = ""
	}
	if id == "" && in.Event == "" {
		return nil, api.Errorf(http.StatusBadRequest, "MsgId or Event is required")
	}
	if in.FromUserName == "" {
		return nil, api.Errorf(http.StatusBadRequest, "FromUserName is required")
	}
	if in.MsgType != "text" || id == "" || in.Content == "" {
		return nil, nil // media, events
	}
	return []platform.Message{{ID: id, From: in.FromUserName, To: in.ToUsername, Text: in.Content}}, nil
}

// SendRequest is the custom-message body.
type SendRequest struct {
	MsgType string `json:"msgtype"`
	ToUser  string `json:"touser"`
	Text    struct {
		Content string `json:"content"`
	} `json:"text"`
}

// Render renders a message to an openid.
func Render(_ ivr.Connection, to string, m smf.Message) (platform.Request, error) {
	req := SendRequest{MsgType: "text", ToUser: to}
	req.Text.Content = smf.Jio.Fit(m).Text
	body, err := json.Marshal(req)
	if err != nil {
		return platform.Request{}, fmt.Errorf("jio: encode send request: %w", err)
	}
	return platform.Request{Path: SendPath, Body: body, ContentType: "application/json"}, nil
}

// NewSender returns the Jio outbox sender.
func NewSender(http *platform.Sender) *platform.APISender {
	return &platform.APISender{
		HTTP:    http,
		Channel: Channel,
		Base:    func(conn ivr.Connection) string { return platform.Or(conn.Settings.Jio.BaseURL, DefaultAPIURL) },
		Render:  Render,
		Auth:    authorize,
		Pace:    platform.NewLimiter(50, 50),
	}
}

func authorize(conn ivr.Connection, req *http.Request) error {
	if !conn.Settings.Jio.AccessToken.IsSet() {
		return errors.New("connection has no access_token")
	}
	req.Header.Set("Authorization", "Bearer "+conn.Settings.Jio.AccessToken.Reveal())
	return nil
}
