package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/ivr"
)

// ConnectionStore is what the connections admin API needs from the store.
type ConnectionStore interface {
	GetConnectionByID(ctx context.Context, id int64) (ivr.Connection, error)
	ListConnections(ctx context.Context, businessID int64) ([]ivr.Connection, error)
	UpdateConnection(ctx context.Context, c ivr.Connection) error
}

// Connections is the admin API of channel connections, the seed's Platform
// Settings switch: list a business's connections, read one, switch one on
// or off. Settings are returned without credentials (they are write-only:
// "secrets_set" names the ones configured). Mount it behind the admin
// token:
//
//	GET   /connections?business_id=N
//	GET   /connections/{id}
//	PATCH /connections/{id}   {"active": false}
type Connections struct {
	Store  ConnectionStore
	Logger *slog.Logger
}

// ConnectionView is a connection as the API returns it.
type ConnectionView struct {
	ID         int64              `json:"id"`
	BusinessID int64              `json:"business_id"`
	Channel    ivr.Channel        `json:"channel"`
	Identifier string             `json:"identifier"`
	Active     bool               `json:"active"`
	Settings   ivr.PublicSettings `json:"settings"`
	CreatedAt  string             `json:"created_at"`
}

// ConnectionPatch is the body of PATCH /connections/{id}.
type ConnectionPatch struct {
	Active *bool `json:"active"`
}

func connectionView(c ivr.Connection) ConnectionView {
	return ConnectionView{ID: c.ID, BusinessID: c.BusinessID, Channel: c.Channel, Identifier: c.Identifier,
		Active: c.Active, Settings: c.Settings.Public(), CreatedAt: c.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z")}
}

// Routes registers the API on r (the admin subrouter).
func (h *Connections) Routes(r *mux.Router) {
	r.HandleFunc("/connections", h.wrap(h.list)).Methods(http.MethodGet)
	r.HandleFunc("/connections/{id}", h.wrap(h.get)).Methods(http.MethodGet)
	r.HandleFunc("/connections/{id}", h.wrap(h.patch)).Methods(http.MethodPatch)
}

func (h *Connections) wrap(fn func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			Fail(w, r, h.Logger, "connections API failed", err)
		}
	}
}

func positiveID(s, what string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, Errorf(http.StatusBadRequest, "%s must be a positive number", what)
	}
	return id, nil
}

func (h *Connections) list(w http.ResponseWriter, r *http.Request) error {
	bid, err := positiveID(r.URL.Query().Get("business_id"), "business_id")
	if err != nil {
		return err
	}
	conns, err := h.Store.ListConnections(r.Context(), bid)
	if err != nil {
		return fmt.Errorf("list connections: %w", err)
	}
	out := make([]ConnectionView, 0, len(conns))
	for _, c := range conns {
		out = append(out, connectionView(c))
	}
	WriteJSON(w, http.StatusOK, map[string]any{"connections": out})
	return nil
}

func (h *Connections) load(r *http.Request) (ivr.Connection, error) {
	id, err := positiveID(mux.Vars(r)["id"], "connection id")
	if err != nil {
		return ivr.Connection{}, err
	}
	c, err := h.Store.GetConnectionByID(r.Context(), id)
	if err != nil {
		return ivr.Connection{}, fmt.Errorf("get connection %d: %w", id, err)
	}
	return c, nil
}

func (h *Connections) get(w http.ResponseWriter, r *http.Request) error {
	c, err := h.load(r)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, connectionView(c))
	return nil
}

func (h *Connections) patch(w http.ResponseWriter, r *http.Request) error {
	var p ConnectionPatch
	if err := DecodeJSON(w, r, 4<<10, &p); err != nil {
		return err
	}
	if p.Active == nil {
		return Errorf(http.StatusBadRequest, "active missing in the request")
	}
	c, err := h.load(r)
	if err != nil {
		return err
	}
	if c.Active != *p.Active {
		c.Active = *p.Active
		if err := h.Store.UpdateConnection(r.Context(), c); err != nil {
			return fmt.Errorf("update connection %d: %w", c.ID, err)
		}
		if h.Logger != nil {
			h.Logger.InfoContext(r.Context(), "connection switched", "connection_id", c.ID,
				"channel", string(c.Channel), "identifier", c.Identifier, "active", c.Active)
		}
	}
	WriteJSON(w, http.StatusOK, connectionView(c))
	return nil
}
