// Package webchat is koel's other-channels API, as the seed
// other-channels-api.md describes BotDistrikt's: custom frontends (mobile
// apps, devices, smart speakers) register their users and send messages as
// them, and get the bot's answers back synchronously.
//
// A Website Chat app is a connection of channel "webchat" whose identifier
// is the app id in the path; its custom_domains are the "custom domains"
// that act like passwords.
//
//   - POST /api/webchat_apps/{id}/user {"domain", "webchat_id"?, "user"?}:
//     the domain must be one of the app's custom domains (constant time),
//     else 401 with the seed's AUTHORIZATION_REQUIRED body. An unguessable
//     webchat_id ("webchat." + 26 base32 characters from crypto/rand) is
//     generated when none is given. The bot_user object comes back in the
//     seed's shape. Registering an existing webchat_id returns it again.
//     The names given in "user" (first_name, last_name) and the domain are
//     kept as the user's profile (a later registration without names keeps
//     them) and shown in every bot_user koel returns.
//   - POST /api/webchat_apps/{id}/message with "Authorization: <webchat_id>"
//     and {"domain", "message": {"text" | "payload", "id"?}}: the domain and
//     a registered webchat_id are required, else the same 401. The answer
//     holds webchat_responses (one per bot message), webchat_quickreplies
//     (the last message's) and the user, in the seed's shape. A message id,
//     when given, makes a retried request answered once.
//   - The event webhook: when the app has an event_webhook_url, every
//     message koel sends the user is also POSTed there through the outbox,
//     with X-Botdistrikt-Source "bot" (the bot's replies; source id the
//     business id), "human" (an agent's message; source id the agent) or
//     "broadcast" (source id the broadcast), an Idempotency-Key and, when
//     event_webhook_secret is set, X-Koel-Timestamp and X-Koel-Signature
//     (HMAC-SHA256 over timestamp + "." + body, as the webhook channel).
package webchat

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/channels/smf"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
)

// Channel is the other-channels API's channel.
const Channel = ivr.ChannelWebchat

// MaxBody caps request bodies (bytes).
const MaxBody = 32 << 10

// MaxWebchatIDBytes caps a webchat_id.
const MaxWebchatIDBytes = 128

// MaxNameBytes caps a user's first and last name.
const MaxNameBytes = 256

// Store is what the API needs besides the pipeline.
type Store interface {
	GetUser(ctx context.Context, businessID int64, channel ivr.Channel, externalID string) (ivr.User, error)
	RegisterUser(ctx context.Context, businessID int64, channel ivr.Channel, externalID string) (ivr.User, error)
	SetUserProfile(ctx context.Context, p *ivr.UserProfile) error
	GetUserProfile(ctx context.Context, userID int64) (ivr.UserProfile, error)
}

// API serves /api/webchat_apps/{id}/user and /message.
type API struct {
	Pipeline *platform.Pipeline
	Store    Store
}

// Routes registers the other-channels API on r.
func (a *API) Routes(r *mux.Router) {
	r.HandleFunc("/api/webchat_apps/{id}/user", a.user).Methods(http.MethodPost)
	r.HandleFunc("/api/webchat_apps/{id}/message", a.message).Methods(http.MethodPost)
}

// ErrorBody is the seed's 401 body.
type ErrorBody struct {
	Errors []ErrorItem `json:"errors"`
}

// ErrorItem is one error of an ErrorBody.
type ErrorItem struct {
	Status int            `json:"status"`
	Source map[string]any `json:"source"`
	Title  string         `json:"title"`
	Code   string         `json:"code"`
	Detail string         `json:"detail"`
}

var errAuthorization = errors.New("webchat: authorization required")

func writeAuthRequired(w http.ResponseWriter) {
	api.WriteJSON(w, http.StatusUnauthorized, ErrorBody{Errors: []ErrorItem{{
		Status: http.StatusUnauthorized, Source: map[string]any{}, Title: "Error",
		Code: "AUTHORIZATION_REQUIRED", Detail: "Authorization Required",
	}}})
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errAuthorization) {
		a.Pipeline.Metrics.Rejected(Channel, platform.RejectSignature)
		writeAuthRequired(w)
		return
	}
	a.Pipeline.Fail(w, r, Channel, err)
}

// domainAllowed reports whether domain is one of the app's custom domains,
// comparing every one in constant time.
func domainAllowed(conn ivr.Connection, domain string) bool {
	domain = strings.TrimSpace(domain)
	ok := false
	for _, d := range conn.Settings.Webchat.CustomDomains {
		// Every domain is compared, so timing does not say which matched.
		if platform.EqualSecret(domain, strings.TrimSpace(d)) {
			ok = true
		}
	}
	return domain != "" && ok
}

// UserRequest is the body of POST …/user.
type UserRequest struct {
	Domain    string       `json:"domain"`
	WebchatID string       `json:"webchat_id"`
	User      *UserProfile `json:"user"`
}

// UserProfile holds the bot_user fields a frontend may pre-populate.
type UserProfile struct {
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
}

// BotUser is the seed's bot_user object.
type BotUser struct {
	WebchatID     string            `json:"webchat_id"`
	FirstName     string            `json:"first_name"`
	LastName      string            `json:"last_name"`
	Active        bool              `json:"active"`
	IsGroup       bool              `json:"is_group"`
	Channel       string            `json:"channel"`
	LastMessageAt string            `json:"last_message_at"`
	Attributes    map[string]string `json:"attributes"`
	Sessions      int               `json:"sessions"`
	Impressions   int               `json:"impressions"`
	Clicks        int               `json:"clicks"`
	Delay         int               `json:"delay"`
	Sentiment     float64           `json:"sentiment"`
	ID            int64             `json:"id"`
	BotID         int64             `json:"bot_id"`
	IsDeleted     bool              `json:"_isDeleted"`
	CreatedAt     string            `json:"created_at"`
	UpdatedAt     string            `json:"updated_at"`
	WebchatAppID  string            `json:"webchat_app_id,omitempty"`
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func botUser(conn ivr.Connection, u ivr.User, p ivr.UserProfile, last time.Time) BotUser {
	first, lastName, domain := "Webchat Guest "+strconv.FormatInt(u.ID, 10), "", p.Source
	if strings.TrimSpace(p.FirstName) != "" {
		first, lastName = p.FirstName, p.LastName
	}
	if last.IsZero() {
		last = u.CreatedAt
	}
	return BotUser{
		WebchatID: u.ExternalID, FirstName: first, LastName: lastName, Active: true, Channel: "web",
		LastMessageAt: isoTime(last),
		Attributes:    map[string]string{"webchat_id": u.ExternalID, "source": domain},
		ID:            u.ID, BotID: conn.BusinessID,
		CreatedAt: isoTime(u.CreatedAt), UpdatedAt: isoTime(last),
		WebchatAppID: conn.Identifier,
	}
}

// NewWebchatID returns an unguessable webchat id: "webchat." and 128
// random bits in lower-case base32.
func NewWebchatID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("webchat: random id: %w", err)
	}
	return "webchat." + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])), nil
}

func validWebchatID(id string) error {
	if len(id) > MaxWebchatIDBytes {
		return api.Errorf(http.StatusBadRequest, "webchat_id is longer than %d bytes", MaxWebchatIDBytes)
	}
	for _, r := range id {
		if r < 0x21 || r > 0x7e {
			return api.Errorf(http.StatusBadRequest, "webchat_id must be printable ASCII without spaces")
		}
	}
	return nil
}

func (a *API) user(w http.ResponseWriter, r *http.Request) {
	if err := a.serveUser(w, r); err != nil {
		a.fail(w, r, err)
	}
}

func (a *API) serveUser(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	conn, err := a.Pipeline.Connection(ctx, Channel, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	var req UserRequest
	if err := api.DecodeJSON(w, r, MaxBody, &req); err != nil {
		return err
	}
	if !domainAllowed(conn, req.Domain) {
		return errAuthorization
	}
	id := strings.TrimSpace(req.WebchatID)
	if id == "" {
		if id, err = NewWebchatID(); err != nil {
			return err
		}
	} else if err := validWebchatID(id); err != nil {
		return err
	}
	if req.User != nil {
		for field, v := range map[string]string{"user.first_name": req.User.FirstName, "user.last_name": req.User.LastName} {
			if err := ivr.CheckText(field, v, MaxNameBytes); err != nil {
				return err
			}
		}
	}
	u, err := a.Store.RegisterUser(ctx, conn.BusinessID, Channel, id)
	if err != nil {
		return fmt.Errorf("webchat: register user: %w", err)
	}
	p, err := a.Store.GetUserProfile(ctx, u.ID)
	if err != nil && !errors.Is(err, ivr.ErrNotFound) {
		return fmt.Errorf("webchat: get profile: %w", err)
	}
	p.UserID, p.Source = u.ID, strings.TrimSpace(req.Domain)
	if req.User != nil && strings.TrimSpace(req.User.FirstName) != "" {
		p.FirstName, p.LastName = req.User.FirstName, req.User.LastName
	}
	if err := a.Store.SetUserProfile(ctx, &p); err != nil {
		return fmt.Errorf("webchat: set profile: %w", err)
	}
	api.WriteJSON(w, http.StatusOK, botUser(conn, u, p, time.Time{}))
	return nil
}

// MessageRequest is the body of POST …/message.
type MessageRequest struct {
	Domain  string          `json:"domain"`
	User    json.RawMessage `json:"user"`
	Message *UserMessage    `json:"message"`
}

// UserMessage is the seed's bot_user_message as a frontend sends it: the
// text typed, or the payload of a tapped quick reply or button.
type UserMessage struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Text    string `json:"text"`
	Payload string `json:"payload"`
}

// MessageResponse is the 200 answer of POST …/message.
type MessageResponse struct {
	WebchatResponses    []Response   `json:"webchat_responses"`
	WebchatQuickReplies []QuickReply `json:"webchat_quickreplies"`
	User                BotUser      `json:"user"`
}

// Response is one bot message of a MessageResponse.
type Response struct {
	Channel             string       `json:"channel"`
	Type                string       `json:"type"`
	ResponsePayload     any          `json:"response_payload"`
	QuickRepliesPayload []QuickReply `json:"quickreplies_payload"`
	ID                  int64        `json:"id"`
	BotID               int64        `json:"bot_id"`
	BotUserID           int64        `json:"bot_user_id"`
	IsDeleted           bool         `json:"_isDeleted"`
	CreatedAt           string       `json:"created_at"`
	UpdatedAt           string       `json:"updated_at"`
}

// RichPayload is a response_payload with buttons.
type RichPayload struct {
	Type    string   `json:"type"`
	Text    string   `json:"text"`
	Buttons []Button `json:"buttons"`
}

// Button is a response_payload button.
type Button struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Payload string `json:"payload,omitempty"`
	URL     string `json:"url,omitempty"`
}

// QuickReply is a webchat quick reply.
type QuickReply struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Render returns a message's webchat response: response_payload is the
// text, or {type, text, buttons} when it has buttons.
func Render(conn ivr.Connection, userID int64, id int64, created time.Time, m smf.Message) Response {
	m = smf.Webchat.Fit(m)
	qr := make([]QuickReply, 0, len(m.QuickReplies))
	for _, q := range m.QuickReplies {
		qr = append(qr, QuickReply{Type: "text", Text: q.Title})
	}
	var payload any = m.Text
	if len(m.Buttons) > 0 {
		rp := RichPayload{Type: "text", Text: m.Text}
		for _, b := range m.Buttons {
			rp.Buttons = append(rp.Buttons, Button{Type: b.Type, Title: b.Title, Payload: b.Payload, URL: b.URL})
		}
		payload = rp
	}
	return Response{Channel: "web", Type: "text", ResponsePayload: payload, QuickRepliesPayload: qr,
		ID: id, BotID: conn.BusinessID, BotUserID: userID, CreatedAt: isoTime(created), UpdatedAt: isoTime(created)}
}

func (a *API) message(w http.ResponseWriter, r *http.Request) {
	if err := a.serveMessage(w, r); err != nil {
		a.fail(w, r, err)
	}
}

func (a *API) serveMessage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	conn, err := a.Pipeline.Connection(ctx, Channel, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	webchatID := strings.TrimSpace(r.Header.Get("Authorization"))
	if webchatID == "" || validWebchatID(webchatID) != nil {
		return errAuthorization
	}
	var req MessageRequest
	if err := api.DecodeJSON(w, r, MaxBody, &req); err != nil {
		return err
	}
	if !domainAllowed(conn, req.Domain) {
		return errAuthorization
	}
	u, err := a.Store.GetUser(ctx, conn.BusinessID, Channel, webchatID)
	if errors.Is(err, ivr.ErrNotFound) || (err == nil && !u.Registered) {
		return errAuthorization
	}
	if err != nil {
		return fmt.Errorf("webchat: get user: %w", err)
	}
	if req.Message == nil {
		return api.Errorf(http.StatusBadRequest, "message missing in the request")
	}
	profile, err := a.Store.GetUserProfile(ctx, u.ID)
	if err != nil && !errors.Is(err, ivr.ErrNotFound) {
		return fmt.Errorf("webchat: get profile: %w", err)
	}
	if profile.Source == "" {
		profile.Source = strings.TrimSpace(req.Domain)
	}
	text := req.Message.Text
	if req.Message.Payload != "" {
		text = req.Message.Payload
	}
	msg := platform.Message{ID: req.Message.ID, From: webchatID, Text: text}
	if err := platform.Validate([]platform.Message{msg}); err != nil {
		return err
	}
	in := ivr.Inbound{
		BusinessID: conn.BusinessID, Connection: conn, Channel: Channel,
		UserExternalID: webchatID, Text: text, ExternalMessageID: msg.ID, RequireRegistered: true,
	}
	if conn.Settings.Webchat.EventWebhookURL != "" {
		in.Deliver = a.Pipeline.Deliverer(conn, webchatID)
	}
	reply, err := a.Pipeline.Engine.Handle(ctx, in)
	if errors.Is(err, ivr.ErrUserNotRegistered) {
		return errAuthorization
	}
	if err != nil {
		return err
	}
	if !reply.Duplicate {
		a.Pipeline.Metrics.Inbound(Channel)
	}
	if in.Deliver != nil && len(reply.Stored) > 0 && a.Pipeline.Notifier != nil {
		a.Pipeline.Notifier.Notify()
	}
	resp := MessageResponse{WebchatResponses: []Response{}, WebchatQuickReplies: []QuickReply{}}
	last := reply.Inbound.CreatedAt
	for i := range reply.Stored {
		m := &reply.Stored[i]
		rr := Render(conn, u.ID, m.ID, m.CreatedAt, smf.FromStored(m))
		resp.WebchatResponses = append(resp.WebchatResponses, rr)
		resp.WebchatQuickReplies = rr.QuickRepliesPayload
		last = m.CreatedAt
	}
	a.Pipeline.Metrics.DeliveredSync(Channel, len(reply.Stored))
	resp.User = botUser(conn, u, profile, last)
	api.WriteJSON(w, http.StatusOK, resp)
	return nil
}
