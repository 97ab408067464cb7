package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/ivr"
)

// Engine runs one conversation turn.
type Engine interface {
	Handle(ctx context.Context, in ivr.Inbound) (ivr.Reply, error)
}

// Businesses finds businesses by id.
type Businesses interface {
	GetBusiness(ctx context.Context, id int64) (ivr.Business, error)
}

// Authenticate checks a request's bearer token against the business's API
// token, in constant time. Missing or wrong tokens give 401 with the seed's
// "invalid authorization details"; an unknown business gives 404.
func Authenticate(ctx context.Context, businesses Businesses, r *http.Request, businessID int64) (ivr.Business, error) {
	token, ok := BearerToken(r)
	if !ok {
		return ivr.Business{}, Errorf(http.StatusUnauthorized, "invalid authorization details")
	}
	b, err := businesses.GetBusiness(ctx, businessID)
	if errors.Is(err, ivr.ErrNotFound) {
		return ivr.Business{}, Errorf(http.StatusNotFound, "business %d not found", businessID)
	}
	if err != nil {
		return ivr.Business{}, err
	}
	if !ivr.TokenMatches(b.TokenHash, token) {
		return ivr.Business{}, Errorf(http.StatusUnauthorized, "invalid authorization details")
	}
	if !b.Active {
		return ivr.Business{}, Errorf(http.StatusForbidden, "business %d is inactive", businessID)
	}
	return b, nil
}

// ConverseRequest is the body of POST /api/bots/{business_id}/converse.
type ConverseRequest struct {
	UserID string `json:"user_id"`
	Text   string `json:"text"`
}

// ConverseMessage is one message of a converse reply.
type ConverseMessage struct {
	Text         string   `json:"text"`
	QuickReplies []string `json:"quick_replies"`
}

// ConverseResponse is the reply of POST /api/bots/{business_id}/converse.
type ConverseResponse struct {
	Messages   []ConverseMessage `json:"messages"`
	Node       string            `json:"node"`
	Confidence float64           `json:"confidence"`
	Handoff    bool              `json:"handoff"`
}

// MaxUserIDBytes caps user ids of the bot API.
const MaxUserIDBytes = 256

// Converse is the synchronous bot API: POST /api/bots/{business_id}/converse
// with "Authorization: Bearer <business API token>" and
// {"user_id": "...", "text": "..."}; it answers with the bot's reply.
type Converse struct {
	Businesses Businesses
	Engine     Engine
	Logger     *slog.Logger
}

// ServeHTTP implements http.Handler.
func (h *Converse) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.serve(w, r); err != nil {
		Fail(w, r, h.Logger, "converse failed", err)
	}
}

func (h *Converse) serve(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id, err := strconv.ParseInt(mux.Vars(r)["business_id"], 10, 64)
	if err != nil || id <= 0 {
		return Errorf(http.StatusNotFound, "business not found")
	}
	if _, err := Authenticate(ctx, h.Businesses, r, id); err != nil {
		return err
	}
	var req ConverseRequest
	if err := DecodeJSON(w, r, DefaultMaxBody, &req); err != nil {
		return err
	}
	req.UserID = strings.TrimSpace(req.UserID)
	switch {
	case req.UserID == "":
		return Errorf(http.StatusBadRequest, "user_id missing in the request")
	case len(req.UserID) > MaxUserIDBytes:
		return Errorf(http.StatusBadRequest, "user_id is longer than %d bytes", MaxUserIDBytes)
	case strings.TrimSpace(req.Text) == "":
		return Errorf(http.StatusBadRequest, "text missing in the request")
	case len(req.Text) > ivr.MaxTextBytes:
		return Errorf(http.StatusRequestEntityTooLarge, "text is longer than %d bytes", ivr.MaxTextBytes)
	}
	if err := ivr.CheckText("user_id", req.UserID, MaxUserIDBytes); err != nil {
		return err
	}
	if err := ivr.CheckText("text", req.Text, ivr.MaxTextBytes); err != nil {
		return err
	}
	reply, err := h.Engine.Handle(ctx, ivr.Inbound{
		BusinessID:     id,
		Channel:        ivr.ChannelAPI,
		UserExternalID: req.UserID,
		Text:           req.Text,
	})
	if err != nil {
		return err
	}
	resp := ConverseResponse{
		Messages:   make([]ConverseMessage, 0, len(reply.Messages)),
		Node:       reply.Node,
		Confidence: reply.Confidence,
		Handoff:    reply.Handoff,
	}
	for _, m := range reply.Messages {
		qr := m.QuickReplies
		if qr == nil {
			qr = []string{}
		}
		resp.Messages = append(resp.Messages, ConverseMessage{Text: m.Text, QuickReplies: qr})
	}
	WriteJSON(w, http.StatusOK, resp)
	return nil
}
