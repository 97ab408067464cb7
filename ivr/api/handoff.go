package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/ivr"
)

// HandoffStore is what the handoff and transcript APIs read.
type HandoffStore interface {
	GetBusiness(ctx context.Context, id int64) (ivr.Business, error)
	GetTeamByName(ctx context.Context, businessID int64, name string) (ivr.Team, error)
	FindUsers(ctx context.Context, businessID int64, externalIDs []string) ([]ivr.User, error)
	ListConversations(ctx context.Context, userID int64) ([]ivr.Conversation, error)
	ListMessages(ctx context.Context, conversationID int64, limit int) ([]ivr.Message, error)
	ListHandoffs(ctx context.Context, businessID int64, statuses []ivr.HandoffStatus) ([]ivr.Handoff, error)
	GetUserByID(ctx context.Context, id int64) (ivr.User, error)
	GetAgent(ctx context.Context, id int64) (ivr.Agent, error)
	ListTeams(ctx context.Context, businessID int64) ([]ivr.Team, error)
}

// HandoffService is the domain service behind the handoff APIs
// (*ivr.Handoffs).
type HandoffService interface {
	Request(ctx context.Context, conv ivr.Conversation, team ivr.Team, countdown int) (ivr.Handoff, error)
	Take(ctx context.Context, businessID, id int64, agentName string) (ivr.Handoff, error)
	HandBack(ctx context.Context, businessID, id int64) (ivr.Handoff, error)
	SendAsAgent(ctx context.Context, businessID, id int64, agentName, text string) (ivr.Message, error)
	Chat(ctx context.Context, businessID, id int64) (ivr.Handoff, error)
}

// Handoff serves POST /integration/external/v1.0/send_chat_to_agent/ and
// the agent API under /agent/v1/{business_id}/.
type Handoff struct {
	Store    HandoffStore
	Handoffs HandoffService
	// AdminToken, when set, is accepted by the agent API instead of the
	// business's token and client id.
	AdminToken string
	Logger     *slog.Logger
}

// SendChatPath is the seed's path of the handoff API.
const SendChatPath = "/integration/external/v1.0/send_chat_to_agent/"

// Routes registers the handoff and agent endpoints on r.
func (h *Handoff) Routes(r *mux.Router) {
	r.HandleFunc(SendChatPath, h.sendChat).Methods(http.MethodPost)
	r.HandleFunc("/agent/v1/{business_id}/queue", h.queue).Methods(http.MethodGet)
	r.HandleFunc("/agent/v1/{business_id}/chats/{chat_id}/take", h.take).Methods(http.MethodPost)
	r.HandleFunc("/agent/v1/{business_id}/chats/{chat_id}/messages", h.message).Methods(http.MethodPost)
	r.HandleFunc("/agent/v1/{business_id}/chats/{chat_id}/hand_back", h.handBack).Methods(http.MethodPost)
}

// Credentials are the headers every integration API carries.
type credentials struct {
	token    string
	clientID string
}

// Header errors of send_chat_to_agent, in the seed's words.
var (
	errClientIDMissing = Errorf(http.StatusUnauthorized, "client_id missing in headers")
	errClientIDInvalid = Errorf(http.StatusUnauthorized, "invalid client_id in headers")
	errAuthInvalid     = Errorf(http.StatusUnauthorized, "invalid authorization in headers")
	errTokenMissing    = Errorf(http.StatusUnauthorized, "token missing in headers")
	errTokenInvalid    = Errorf(http.StatusUnauthorized, "invalid token provided")
)

// sendChatCredentials reads the headers, refusing them in the seed's order
// and words.
func sendChatCredentials(r *http.Request) (credentials, error) {
	clientID := strings.TrimSpace(r.Header.Get("client-id"))
	if clientID == "" {
		return credentials{}, errClientIDMissing
	}
	auth := strings.TrimSpace(r.Header.Get("Authorization"))
	if auth == "" {
		return credentials{}, errTokenMissing
	}
	tok, ok := BearerToken(r)
	if !ok {
		if strings.EqualFold(auth, "bearer") {
			return credentials{}, errTokenMissing
		}
		return credentials{}, errAuthInvalid
	}
	return credentials{token: tok, clientID: clientID}, nil
}

// SendChatRequest is the body of send_chat_to_agent. business_id and
// countdown may be JSON numbers or strings of digits (the seed shows both).
type SendChatRequest struct {
	TeamName   *string         `json:"team_name"`
	UserName   *string         `json:"user_name"`
	BusinessID json.RawMessage `json:"business_id"`
	Countdown  json.RawMessage `json:"countdown"`
}

// flexInt reads a JSON number or a string of digits; present is false for
// an absent or null value or an empty string.
func flexInt(raw json.RawMessage) (v int64, present, ok bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false, true
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, true, false
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return 0, false, true
		}
	} else {
		s = string(raw)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, true, false
	}
	return n, true, true
}

func (h *Handoff) sendChat(w http.ResponseWriter, r *http.Request) {
	if err := h.serveSendChat(w, r); err != nil {
		Fail(w, r, h.Logger, "send chat to agent failed", err)
	}
}

func (h *Handoff) serveSendChat(w http.ResponseWriter, r *http.Request) error {
	cred, err := sendChatCredentials(r)
	if err != nil {
		return err
	}
	var req SendChatRequest
	if err := DecodeJSON(w, r, 0, &req); err != nil {
		return err
	}
	userName := trimmed(req.UserName)
	teamName := trimmed(req.TeamName)
	businessID, hasBusiness, okBusiness := flexInt(req.BusinessID)
	switch {
	case userName == "":
		return Errorf(http.StatusBadRequest, "user_name missing in the request")
	case !hasBusiness && okBusiness:
		return Errorf(http.StatusBadRequest, "business_id missing in the request")
	case teamName == "":
		return Errorf(http.StatusBadRequest, "team_name missing in the request")
	case !okBusiness || businessID <= 0:
		return Errorf(http.StatusBadRequest, "invalid business_id provided")
	}
	if err := ivr.CheckText("user_name", userName, ivr.MaxExternalIDBytes); err != nil {
		return err
	}
	if err := ivr.CheckText("team_name", teamName, 256); err != nil {
		return err
	}
	countdown := ivr.DefaultCountdown
	if n, present, ok := flexInt(req.Countdown); !ok || (present && (n < ivr.MinCountdown || n > ivr.MaxCountdown)) {
		return Errorf(http.StatusBadRequest, "countdown must be a number of seconds from %d to %d", ivr.MinCountdown, ivr.MaxCountdown)
	} else if present {
		countdown = int(n)
	}

	b, err := h.business(r.Context(), businessID, cred, errTokenInvalid, errClientIDInvalid,
		Errorf(http.StatusNotFound, "invalid business_id provided"))
	if err != nil {
		return err
	}
	if !b.Active {
		return Errorf(http.StatusForbidden, "business %q is inactive", strconv.FormatInt(b.ID, 10))
	}
	team, err := h.Store.GetTeamByName(r.Context(), b.ID, teamName)
	if errors.Is(err, ivr.ErrNotFound) {
		return Errorf(http.StatusNotFound, "invalid team_name provided")
	}
	if err != nil {
		return fmt.Errorf("get team: %w", err)
	}
	if !team.Active {
		return Errorf(http.StatusForbidden, "team %q is inactive", team.Name)
	}
	p, err := FindPerson(r.Context(), h.Store, b.ID, userName)
	if err != nil {
		return err
	}
	if len(p.Users) == 0 {
		return Errorf(http.StatusNotFound, "invalid user_name")
	}
	conv, ok, err := p.latestWithUserMessage(r.Context(), h.Store)
	if err != nil {
		return err
	}
	if !ok {
		return Errorf(http.StatusConflict, "user has not sent a message")
	}
	if _, err := h.Handoffs.Request(r.Context(), conv, team, countdown); err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, map[string]bool{"success": true})
	return nil
}

func trimmed(p *string) string {
	if p == nil {
		return ""
	}
	return strings.TrimSpace(*p)
}

// business loads the business and checks the token and client id in
// constant time; each failure answers with the given error.
func (h *Handoff) business(ctx context.Context, id int64, cred credentials, badToken, badClient, notFound error) (ivr.Business, error) {
	return checkBusiness(ctx, h.Store, id, cred, badToken, badClient, notFound)
}

func checkBusiness(ctx context.Context, st interface {
	GetBusiness(ctx context.Context, id int64) (ivr.Business, error)
}, id int64, cred credentials, badToken, badClient, notFound error) (ivr.Business, error) {
	b, err := st.GetBusiness(ctx, id)
	if errors.Is(err, ivr.ErrNotFound) {
		return ivr.Business{}, notFound
	}
	if err != nil {
		return ivr.Business{}, fmt.Errorf("get business: %w", err)
	}
	if !ivr.TokenMatches(b.TokenHash, cred.token) {
		return ivr.Business{}, badToken
	}
	if subtle.ConstantTimeCompare([]byte(b.ClientID), []byte(cred.clientID)) != 1 {
		return ivr.Business{}, badClient
	}
	return b, nil
}

// Person is everyone a user_name names in a business: the user on each
// channel with that id (a phone number is the same person by voice and on
// WhatsApp).
type Person struct {
	Users []ivr.User
}

// UserNameCandidates returns the external ids a user_name may be stored
// as: itself, and for a phone number its usual spellings (+91…, 91…,
// whatsapp:+91…, the national 0… form and the bare 10 digits).
func UserNameCandidates(name string) []string {
	out := []string{name}
	digits := strings.TrimPrefix(strings.TrimPrefix(name, "whatsapp:"), "+")
	digits = strings.NewReplacer(" ", "", "-", "").Replace(digits)
	if len(digits) < 8 || len(digits) > 15 || strings.Trim(digits, "0123456789") != "" {
		return out
	}
	add := func(s string) {
		for _, o := range out {
			if o == s {
				return
			}
		}
		out = append(out, s)
	}
	add(digits)
	add("+" + digits)
	add("whatsapp:+" + digits)
	if len(digits) > 10 {
		last := digits[len(digits)-10:]
		add(last)
		add("0" + last)
	}
	if len(digits) == 11 && digits[0] == '0' {
		add("+91" + digits[1:])
		add("91" + digits[1:])
		add("whatsapp:+91" + digits[1:])
	}
	if len(digits) == 10 {
		add("0" + digits)
		add("+91" + digits)
		add("91" + digits)
		add("whatsapp:+91" + digits)
	}
	return out
}

// FindPerson finds the users a user_name names.
func FindPerson(ctx context.Context, st interface {
	FindUsers(ctx context.Context, businessID int64, externalIDs []string) ([]ivr.User, error)
}, businessID int64, userName string) (Person, error) {
	users, err := st.FindUsers(ctx, businessID, UserNameCandidates(userName))
	if err != nil {
		return Person{}, fmt.Errorf("find users: %w", err)
	}
	return Person{Users: users}, nil
}

// Timeline is the person's conversations on every channel, oldest first;
// conversation_no N of a person is Timeline()[N-1]. For a person known on
// one channel it is that user's own numbering.
func (p Person) Timeline(ctx context.Context, st interface {
	ListConversations(ctx context.Context, userID int64) ([]ivr.Conversation, error)
}) ([]ivr.Conversation, error) {
	var all []ivr.Conversation
	for _, u := range p.Users {
		cs, err := st.ListConversations(ctx, u.ID)
		if err != nil {
			return nil, fmt.Errorf("list conversations: %w", err)
		}
		all = append(all, cs...)
	}
	if len(p.Users) > 1 {
		sortConversations(all)
	}
	return all, nil
}

func sortConversations(cs []ivr.Conversation) {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && earlier(cs[j], cs[j-1]); j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

func earlier(a, b ivr.Conversation) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return a.ID < b.ID
}

// latestWithUserMessage returns the person's newest conversation that holds
// a message from the user.
func (p Person) latestWithUserMessage(ctx context.Context, st HandoffStore) (ivr.Conversation, bool, error) {
	tl, err := p.Timeline(ctx, st)
	if err != nil {
		return ivr.Conversation{}, false, err
	}
	for i := len(tl) - 1; i >= 0; i-- {
		msgs, err := st.ListMessages(ctx, tl[i].ID, 0)
		if err != nil {
			return ivr.Conversation{}, false, fmt.Errorf("list messages: %w", err)
		}
		for _, m := range msgs {
			if m.Sender == ivr.SenderUser {
				return tl[i], true, nil
			}
		}
	}
	return ivr.Conversation{}, false, nil
}

// agentAuth authorizes the agent API: the admin token, or the business's
// token with its client id.
func (h *Handoff) agentAuth(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(mux.Vars(r)["business_id"], 10, 64)
	if err != nil || id <= 0 {
		return 0, Errorf(http.StatusNotFound, "invalid business_id provided")
	}
	tok, ok := BearerToken(r)
	if !ok {
		return 0, errTokenMissing
	}
	if h.AdminToken != "" {
		got, want := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(h.AdminToken))
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			if _, err := h.Store.GetBusiness(r.Context(), id); errors.Is(err, ivr.ErrNotFound) {
				return 0, Errorf(http.StatusNotFound, "invalid business_id provided")
			} else if err != nil {
				return 0, fmt.Errorf("get business: %w", err)
			}
			return id, nil
		}
	}
	clientID := strings.TrimSpace(r.Header.Get("client-id"))
	if clientID == "" {
		return 0, errClientIDMissing
	}
	if _, err := h.business(r.Context(), id, credentials{token: tok, clientID: clientID}, errTokenInvalid, errClientIDInvalid,
		errTokenInvalid); err != nil {
		return 0, err
	}
	return id, nil
}

func chatID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(mux.Vars(r)["chat_id"], 10, 64)
	if err != nil || id <= 0 {
		return 0, ivr.ErrHandoffNotFound
	}
	return id, nil
}

// QueueChat is one chat of the agent API's queue.
type QueueChat struct {
	ChatID         int64  `json:"chat_id"`
	Status         string `json:"status"`
	Team           string `json:"team"`
	Agent          string `json:"agent,omitempty"`
	UserName       string `json:"user_name"`
	Channel        string `json:"channel"`
	ConversationID int64  `json:"conversation_id"`
	QueuedAt       string `json:"queued_at"`
}

func (h *Handoff) queue(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		id, err := h.agentAuth(r)
		if err != nil {
			return err
		}
		list, err := h.Store.ListHandoffs(r.Context(), id, []ivr.HandoffStatus{ivr.HandoffQueued, ivr.HandoffTaken})
		if err != nil {
			return fmt.Errorf("list handoffs: %w", err)
		}
		teams, err := h.Store.ListTeams(r.Context(), id)
		if err != nil {
			return fmt.Errorf("list teams: %w", err)
		}
		names := map[int64]string{}
		for _, t := range teams {
			names[t.ID] = t.Name
		}
		out := make([]QueueChat, 0, len(list))
		for _, ho := range list {
			u, err := h.Store.GetUserByID(r.Context(), ho.UserID)
			if err != nil {
				return fmt.Errorf("get user: %w", err)
			}
			c := QueueChat{ChatID: ho.ID, Status: string(ho.Status), Team: names[ho.TeamID], UserName: u.ExternalID,
				Channel: string(u.Channel), ConversationID: ho.ConversationID, QueuedAt: ho.DueAt.UTC().Format(time.RFC3339)}
			if ho.AgentID != 0 {
				if a, err := h.Store.GetAgent(r.Context(), ho.AgentID); err == nil {
					c.Agent = a.Name
				}
			}
			out = append(out, c)
		}
		WriteJSON(w, http.StatusOK, map[string]any{"chats": out})
		return nil
	}()
	if err != nil {
		Fail(w, r, h.Logger, "agent queue failed", err)
	}
}

// AgentRequest is the body of the agent API's POST endpoints.
type AgentRequest struct {
	AgentName string `json:"agent_name"`
	Text      string `json:"text,omitempty"`
}

func (h *Handoff) agentStep(w http.ResponseWriter, r *http.Request, step func(businessID, chat int64, req AgentRequest) (any, error)) {
	err := func() error {
		id, err := h.agentAuth(r)
		if err != nil {
			return err
		}
		chat, err := chatID(r)
		if err != nil {
			return err
		}
		var req AgentRequest
		if err := DecodeJSON(w, r, 0, &req); err != nil {
			return err
		}
		if strings.TrimSpace(req.AgentName) == "" {
			return Errorf(http.StatusBadRequest, "agent_name missing in the request")
		}
		v, err := step(id, chat, req)
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusOK, v)
		return nil
	}()
	if err != nil {
		Fail(w, r, h.Logger, "agent API failed", err)
	}
}

func (h *Handoff) take(w http.ResponseWriter, r *http.Request) {
	h.agentStep(w, r, func(b, chat int64, req AgentRequest) (any, error) {
		ho, err := h.Handoffs.Take(r.Context(), b, chat, req.AgentName)
		if err != nil {
			return nil, err
		}
		return map[string]any{"success": true, "chat_id": ho.ID, "status": ho.Status}, nil
	})
}

func (h *Handoff) message(w http.ResponseWriter, r *http.Request) {
	h.agentStep(w, r, func(b, chat int64, req AgentRequest) (any, error) {
		m, err := h.Handoffs.SendAsAgent(r.Context(), b, chat, req.AgentName, req.Text)
		if err != nil {
			return nil, err
		}
		return map[string]any{"success": true, "message_id": m.ID, "sender": m.Sender}, nil
	})
}

func (h *Handoff) handBack(w http.ResponseWriter, r *http.Request) {
	h.agentStep(w, r, func(b, chat int64, req AgentRequest) (any, error) {
		ho, err := h.Handoffs.HandBack(r.Context(), b, chat)
		if err != nil {
			return nil, err
		}
		return map[string]any{"success": true, "chat_id": ho.ID, "status": ho.Status}, nil
	})
}
