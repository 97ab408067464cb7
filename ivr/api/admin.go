package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/provision"
	"github.com/koelvoice/koel/ivr/store"
)

// MaxAdminBody caps an admin API request body (bytes).
const MaxAdminBody = 64 << 10

// Admin is the admin API: businesses, their channel connections (the
// seed's Platform Settings, credentials write-only), agent teams, agents
// and API steps. Every write goes through [provision.Service], the path
// YAML provisioning and the demo take, so both give the same records.
// Mount it behind the admin token:
//
//	GET    /businesses                       POST /businesses
//	GET    /businesses/{business_id}         PATCH, DELETE (deactivates)
//	GET    /connections?business_id=N        POST /connections
//	GET    /connections/{id}                 PATCH, DELETE (deactivates)
//	GET    /businesses/{business_id}/teams   POST
//	GET    /businesses/{business_id}/teams/{team_id}    PATCH, DELETE (deactivates)
//	GET    /businesses/{business_id}/agents  POST
//	GET    /businesses/{business_id}/agents/{agent_id}  PATCH, DELETE (deactivates)
//	GET    /businesses/{business_id}/api_steps
//	GET    /businesses/{business_id}/api_steps/{node}   PUT, DELETE
//
// Bad input answers 400 with error_message and stores nothing; unknown ids
// 404; a name or identifier already taken 409. Credentials (the business
// token, the remote bot URL, every connection secret) are accepted on
// writes and never returned: views say which are set.
type Admin struct {
	Provision *provision.Service
	Logger    *slog.Logger
}

// Routes registers the API on r (the admin subrouter).
func (h *Admin) Routes(r *mux.Router) {
	businesses := record[ivr.Business, BusinessView]{load: h.loadBusiness, view: businessView, save: h.saveBusiness}
	r.HandleFunc("/businesses", h.wrap(listed("businesses", h.listBusinesses, businessView))).Methods(http.MethodGet)
	r.HandleFunc("/businesses", h.wrap(h.createBusiness)).Methods(http.MethodPost)
	r.HandleFunc("/businesses/{business_id}", h.wrap(businesses.get)).Methods(http.MethodGet)
	r.HandleFunc("/businesses/{business_id}", h.wrap(h.patchBusiness)).Methods(http.MethodPatch)
	r.HandleFunc("/businesses/{business_id}", h.wrap(businesses.change(func(b *ivr.Business) error { b.Active = false; return nil }))).Methods(http.MethodDelete)

	connections := record[ivr.Connection, ConnectionView]{load: h.loadConnection, view: connectionView, save: h.saveConnection}
	r.HandleFunc("/connections", h.wrap(listed("connections", h.listConnections, connectionView))).Methods(http.MethodGet)
	r.HandleFunc("/connections", h.wrap(h.createConnection)).Methods(http.MethodPost)
	r.HandleFunc("/connections/{id}", h.wrap(connections.get)).Methods(http.MethodGet)
	r.HandleFunc("/connections/{id}", h.wrap(patched(connections, patchConnection))).Methods(http.MethodPatch)
	r.HandleFunc("/connections/{id}", h.wrap(connections.change(func(c *ivr.Connection) error { c.Active = false; return nil }))).Methods(http.MethodDelete)

	teams := record[ivr.Team, TeamView]{load: h.loadTeam, view: teamView, save: h.saveTeam}
	r.HandleFunc("/businesses/{business_id}/teams", h.wrap(listed("teams", h.listTeams, teamView))).Methods(http.MethodGet)
	r.HandleFunc("/businesses/{business_id}/teams", h.wrap(h.createTeam)).Methods(http.MethodPost)
	r.HandleFunc("/businesses/{business_id}/teams/{team_id}", h.wrap(teams.get)).Methods(http.MethodGet)
	r.HandleFunc("/businesses/{business_id}/teams/{team_id}", h.wrap(patched(teams, patchTeam))).Methods(http.MethodPatch)
	r.HandleFunc("/businesses/{business_id}/teams/{team_id}", h.wrap(teams.change(func(t *ivr.Team) error { t.Active = false; return nil }))).Methods(http.MethodDelete)

	agents := record[ivr.Agent, AgentView]{load: h.loadAgent, view: agentView, save: h.saveAgent}
	r.HandleFunc("/businesses/{business_id}/agents", h.wrap(listed("agents", h.listAgents, agentView))).Methods(http.MethodGet)
	r.HandleFunc("/businesses/{business_id}/agents", h.wrap(h.createAgent)).Methods(http.MethodPost)
	r.HandleFunc("/businesses/{business_id}/agents/{agent_id}", h.wrap(agents.get)).Methods(http.MethodGet)
	r.HandleFunc("/businesses/{business_id}/agents/{agent_id}", h.wrap(patched(agents, patchAgent))).Methods(http.MethodPatch)
	r.HandleFunc("/businesses/{business_id}/agents/{agent_id}", h.wrap(agents.change(func(a *ivr.Agent) error { a.Active = false; return nil }))).Methods(http.MethodDelete)

	r.HandleFunc("/businesses/{business_id}/api_steps", h.wrap(h.listAPISteps)).Methods(http.MethodGet)
	r.HandleFunc("/businesses/{business_id}/api_steps/{node}", h.wrap(h.getAPIStep)).Methods(http.MethodGet)
	r.HandleFunc("/businesses/{business_id}/api_steps/{node}", h.wrap(h.putAPIStep)).Methods(http.MethodPut)
	r.HandleFunc("/businesses/{business_id}/api_steps/{node}", h.wrap(h.deleteAPIStep)).Methods(http.MethodDelete)
}

func (h *Admin) wrap(fn handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			Fail(w, r, h.Logger, "admin API failed", err)
		}
	}
}

// handler is an admin endpoint; an error it returns is answered by Fail.
type handler func(http.ResponseWriter, *http.Request) error

// record is how the admin API loads the record a request's path names,
// shows it, and writes it back through provisioning: the shape every
// business, connection, team and agent endpoint shares.
type record[T, V any] struct {
	load func(*http.Request) (T, error)
	view func(T) V
	save func(context.Context, T) (T, error)
}

// get answers the record's view.
func (k record[T, V]) get(w http.ResponseWriter, r *http.Request) error {
	t, err := k.load(r)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, k.view(t))
	return nil
}

// change loads the record, lets edit change it (or refuse), saves it and
// answers its new view.
func (k record[T, V]) change(edit func(*T) error) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		t, err := k.load(r)
		if err != nil {
			return err
		}
		if err := edit(&t); err != nil {
			return err
		}
		if t, err = k.save(r.Context(), t); err != nil {
			return err
		}
		WriteJSON(w, http.StatusOK, k.view(t))
		return nil
	}
}

// patched decodes a PATCH body before anything is loaded, then changes
// the record with apply.
func patched[T, V, Q any](k record[T, V], apply func(Q, *T) error) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var q Q
		if err := DecodeJSON(w, r, MaxAdminBody, &q); err != nil {
			return err
		}
		return k.change(func(t *T) error { return apply(q, t) })(w, r)
	}
}

// listed answers {key: [views]} for the records list returns.
func listed[T, V any](key string, list func(*http.Request) ([]T, error), view func(T) V) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		l, err := list(r)
		if err != nil {
			return err
		}
		out := make([]V, 0, len(l))
		for _, t := range l {
			out = append(out, view(t))
		}
		WriteJSON(w, http.StatusOK, map[string]any{key: out})
		return nil
	}
}

func positiveID(s, what string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, Errorf(http.StatusBadRequest, "%s must be a positive number", what)
	}
	return id, nil
}

func pathID(r *http.Request, name, what string) (int64, error) {
	return positiveID(mux.Vars(r)[name], what)
}

const timeLayout = "2006-01-02T15:04:05.000Z"

func apiTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// ---- businesses

// BotView is a business's bot as the API shows it: the remote URL is a
// credential, so only whether it is set.
type BotView struct {
	Kind         ivr.BotKind `json:"kind"`
	RemoteURLSet bool        `json:"remote_url_set"`
}

// BusinessView is a business as the API returns it: no token, no hash.
type BusinessView struct {
	ID              int64   `json:"id"`
	Name            string  `json:"name"`
	ClientID        string  `json:"client_id"`
	FallbackMessage string  `json:"fallback_message"`
	Active          bool    `json:"active"`
	Bot             BotView `json:"bot"`
	FAQVersion      int64   `json:"faq_version"`
	CreatedAt       string  `json:"created_at"`
}

func businessView(b ivr.Business) BusinessView {
	return BusinessView{ID: b.ID, Name: b.Name, ClientID: b.ClientID, FallbackMessage: b.FallbackMessage, Active: b.Active,
		Bot: BotView{Kind: b.Bot, RemoteURLSet: b.BotURL.IsSet()}, FAQVersion: b.FAQVersion, CreatedAt: apiTime(b.CreatedAt)}
}

// BotRequest sets a business's bot: kind "faq" or "remote" ("" = the
// server's default), remote_url (write-only) for a remote bot.
type BotRequest struct {
	Kind      ivr.BotKind `json:"kind"`
	RemoteURL ivr.Secret  `json:"remote_url"`
}

// BusinessRequest is the body of POST /businesses (name, client_id and
// token required; id optional; active defaults to true) and of PATCH
// /businesses/{id} (any field but id; a token rotates the stored one).
type BusinessRequest struct {
	ID              *int64      `json:"id"`
	Name            *string     `json:"name"`
	Token           *ivr.Secret `json:"token"`
	ClientID        *string     `json:"client_id"`
	FallbackMessage *string     `json:"fallback_message"`
	Active          *bool       `json:"active"`
	Bot             *BotRequest `json:"bot"`
}

// apply writes the request's fields over spec.
func (q BusinessRequest) apply(spec *provision.BusinessSpec) {
	if q.Name != nil {
		spec.Name = *q.Name
	}
	if q.Token != nil {
		spec.Token = *q.Token
	}
	if q.ClientID != nil {
		spec.ClientID = *q.ClientID
	}
	if q.FallbackMessage != nil {
		spec.FallbackMessage = *q.FallbackMessage
	}
	if q.Active != nil {
		spec.Active = *q.Active
	}
	if q.Bot != nil {
		url := q.Bot.RemoteURL
		if url == "" && q.Bot.Kind == ivr.BotRemote && spec.Bot == ivr.BotRemote {
			url = spec.BotURL // the kind restated: keep the URL
		}
		spec.Bot, spec.BotURL = q.Bot.Kind, url
	}
}

func (h *Admin) listBusinesses(r *http.Request) ([]ivr.Business, error) {
	return h.Provision.ListBusinesses(r.Context())
}

func (h *Admin) createBusiness(w http.ResponseWriter, r *http.Request) error {
	var q BusinessRequest
	if err := DecodeJSON(w, r, MaxAdminBody, &q); err != nil {
		return err
	}
	spec := provision.BusinessSpec{Active: true}
	if q.ID != nil {
		if *q.ID <= 0 {
			return Errorf(http.StatusBadRequest, "id must be a positive number")
		}
		spec.ID = *q.ID
	}
	q.apply(&spec)
	b, err := h.Provision.CreateBusiness(r.Context(), spec)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, businessView(b))
	return nil
}

func (h *Admin) loadBusiness(r *http.Request) (ivr.Business, error) {
	id, err := pathID(r, "business_id", "business id")
	if err != nil {
		return ivr.Business{}, err
	}
	return h.Provision.GetBusiness(r.Context(), id)
}

func (h *Admin) patchBusiness(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "business_id", "business id")
	if err != nil {
		return err
	}
	var q BusinessRequest
	if err := DecodeJSON(w, r, MaxAdminBody, &q); err != nil {
		return err
	}
	if q.ID != nil && *q.ID != id {
		return Errorf(http.StatusBadRequest, "id cannot change")
	}
	cur, err := h.Provision.GetBusiness(r.Context(), id)
	if err != nil {
		return err
	}
	spec := provision.SpecOfBusiness(cur)
	q.apply(&spec)
	b, _, err := h.Provision.PutBusiness(r.Context(), spec)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, businessView(b))
	return nil
}

func (h *Admin) saveBusiness(ctx context.Context, b ivr.Business) (ivr.Business, error) {
	b, _, err := h.Provision.PutBusiness(ctx, provision.SpecOfBusiness(b))
	return b, err
}

// ---- connections

// ConnectionView is a connection as the API returns it: settings without
// any credential; settings.secrets_set names the ones configured.
type ConnectionView struct {
	ID         int64              `json:"id"`
	BusinessID int64              `json:"business_id"`
	Channel    ivr.Channel        `json:"channel"`
	Identifier string             `json:"identifier"`
	Active     bool               `json:"active"`
	Settings   ivr.PublicSettings `json:"settings"`
	CreatedAt  string             `json:"created_at"`
}

func connectionView(c ivr.Connection) ConnectionView {
	return ConnectionView{ID: c.ID, BusinessID: c.BusinessID, Channel: c.Channel, Identifier: c.Identifier,
		Active: c.Active, Settings: c.Settings.Public(), CreatedAt: apiTime(c.CreatedAt)}
}

// ConnectionRequest is the body of POST /connections (business_id,
// channel and identifier required; active defaults to true) and of PATCH
// /connections/{id} (active and settings; settings is a JSON merge patch,
// RFC 7386, over the current settings: a credential not named stays, one
// set to null is removed).
type ConnectionRequest struct {
	BusinessID *int64          `json:"business_id"`
	Channel    *ivr.Channel    `json:"channel"`
	Identifier *string         `json:"identifier"`
	Active     *bool           `json:"active"`
	Settings   json.RawMessage `json:"settings"`
}

// decodeSettings reads a settings object strictly into s.
func decodeSettings(raw []byte, s *ivr.ConnectionSettings) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(s); err != nil {
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typ) && typ.Field != "":
			return Errorf(http.StatusBadRequest, "settings.%s must be %s", typ.Field, typ.Type.String())
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return Errorf(http.StatusBadRequest, "settings: unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return Errorf(http.StatusBadRequest, "settings must be a JSON object of connection settings")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Errorf(http.StatusBadRequest, "settings must be a single JSON object")
	}
	return nil
}

// checkStrings refuses NUL bytes in any string of v (encoding/json keeps
// them, and PostgreSQL's text refuses them).
func checkStrings(field string, v reflect.Value) error {
	switch v.Kind() {
	case reflect.String:
		if strings.IndexByte(v.String(), 0) >= 0 {
			return Errorf(http.StatusBadRequest, "%s contains a NUL byte", field)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if err := checkStrings(field+"."+name, v.Field(i)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			if err := checkStrings(fmt.Sprintf("%s[%d]", field, i), v.Index(i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			if err := checkStrings(field+" key", k); err != nil {
				return err
			}
			if err := checkStrings(field+"."+k.String(), v.MapIndex(k)); err != nil {
				return err
			}
		}
	}
	return nil
}

// mergePatch applies an RFC 7386 JSON merge patch to doc.
func mergePatch(doc, patch map[string]any) map[string]any {
	if doc == nil {
		doc = map[string]any{}
	}
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(doc, k)
		case map[string]any:
			sub, _ := doc[k].(map[string]any)
			doc[k] = mergePatch(sub, pv)
		default:
			doc[k] = v
		}
	}
	return doc
}

// patchNames reports whether a merge patch sets or removes the credential
// named by its dotted path ("messenger.app_secret"), itself or by
// removing a section holding it.
func patchNames(patch map[string]any, dotted string) bool {
	head, rest, nested := strings.Cut(dotted, ".")
	v, ok := patch[head]
	if !ok {
		return false
	}
	if !nested || v == nil {
		return true
	}
	sub, isMap := v.(map[string]any)
	return isMap && patchNames(sub, rest)
}

// patchSettings applies a merge patch to cur: plain settings merge; a
// credential keeps its value unless the patch names it.
func patchSettings(cur ivr.ConnectionSettings, raw []byte) (ivr.ConnectionSettings, error) {
	var patch map[string]any
	if err := json.Unmarshal(raw, &patch); err != nil || patch == nil {
		return cur, Errorf(http.StatusBadRequest, "settings must be a JSON object")
	}
	plain, err := json.Marshal(cur.WithoutSecrets())
	if err != nil {
		return cur, fmt.Errorf("encode settings: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(plain, &doc); err != nil {
		return cur, fmt.Errorf("decode settings: %w", err)
	}
	merged, err := json.Marshal(mergePatch(doc, patch))
	if err != nil {
		return cur, fmt.Errorf("encode merged settings: %w", err)
	}
	var next ivr.ConnectionSettings
	if err := decodeSettings(merged, &next); err != nil {
		return cur, err
	}
	// cur's credentials, in next where the patch does not name them.
	kept, err := secretsByName(cur)
	if err != nil {
		return cur, err
	}
	for name, v := range kept {
		if patchNames(patch, name) {
			continue
		}
		if err := next.SetSecret(name, v); err != nil {
			return cur, fmt.Errorf("restore %s: %w", name, err)
		}
	}
	return next, nil
}

// secretsByName returns the credentials of s that are set, by name (read
// from the store's encoding, the one form that holds them).
func secretsByName(s ivr.ConnectionSettings) (map[string]ivr.Secret, error) {
	b, err := ivr.EncodeSettings(s)
	if err != nil {
		return nil, err
	}
	var stored struct {
		Secrets map[string]ivr.Secret `json:"secrets"`
	}
	if err := json.Unmarshal(b, &stored); err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	return stored.Secrets, nil
}

func (h *Admin) listConnections(r *http.Request) ([]ivr.Connection, error) {
	bid, err := positiveID(r.URL.Query().Get("business_id"), "business_id")
	if err != nil {
		return nil, err
	}
	return h.Provision.ListConnections(r.Context(), bid)
}

func (h *Admin) createConnection(w http.ResponseWriter, r *http.Request) error {
	var q ConnectionRequest
	if err := DecodeJSON(w, r, MaxAdminBody, &q); err != nil {
		return err
	}
	switch {
	case q.BusinessID == nil:
		return Errorf(http.StatusBadRequest, "business_id missing in the request")
	case *q.BusinessID <= 0:
		return Errorf(http.StatusBadRequest, "business_id must be a positive number")
	case q.Channel == nil:
		return Errorf(http.StatusBadRequest, "channel missing in the request")
	case q.Identifier == nil:
		return Errorf(http.StatusBadRequest, "identifier missing in the request")
	}
	spec := provision.ConnectionSpec{BusinessID: *q.BusinessID, Channel: *q.Channel, Identifier: *q.Identifier, Active: true}
	if q.Active != nil {
		spec.Active = *q.Active
	}
	if len(q.Settings) > 0 && string(q.Settings) != "null" {
		if err := decodeSettings(q.Settings, &spec.Settings); err != nil {
			return err
		}
	}
	if err := checkStrings("settings", reflect.ValueOf(spec.Settings)); err != nil {
		return err
	}
	c, err := h.Provision.CreateConnection(r.Context(), spec)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, connectionView(c))
	return nil
}

func (h *Admin) loadConnection(r *http.Request) (ivr.Connection, error) {
	id, err := pathID(r, "id", "connection id")
	if err != nil {
		return ivr.Connection{}, err
	}
	return h.Provision.GetConnection(r.Context(), id)
}

func (h *Admin) saveConnection(ctx context.Context, c ivr.Connection) (ivr.Connection, error) {
	c, _, err := h.Provision.PutConnection(ctx, provision.ConnectionSpec{BusinessID: c.BusinessID, Channel: c.Channel,
		Identifier: c.Identifier, Active: c.Active, Settings: c.Settings})
	return c, err
}

// patchConnection applies a PATCH body to c: active and a merge patch of
// settings; the connection's keys cannot change.
func patchConnection(q ConnectionRequest, c *ivr.Connection) error {
	switch {
	case q.BusinessID != nil && *q.BusinessID != c.BusinessID:
		return Errorf(http.StatusBadRequest, "business_id cannot change")
	case q.Channel != nil && *q.Channel != c.Channel:
		return Errorf(http.StatusBadRequest, "channel cannot change")
	case q.Identifier != nil && *q.Identifier != c.Identifier:
		return Errorf(http.StatusBadRequest, "identifier cannot change: create a new connection")
	case q.Active == nil && len(q.Settings) == 0:
		return Errorf(http.StatusBadRequest, "active or settings missing in the request")
	}
	if q.Active != nil {
		c.Active = *q.Active
	}
	if len(q.Settings) > 0 {
		var err error
		if c.Settings, err = patchSettings(c.Settings, q.Settings); err != nil {
			return err
		}
	}
	return checkStrings("settings", reflect.ValueOf(c.Settings))
}

// ---- teams

// TeamView is a team as the API returns it.
type TeamView struct {
	ID         int64  `json:"id"`
	BusinessID int64  `json:"business_id"`
	Name       string `json:"name"`
	Number     string `json:"number"`
	Active     bool   `json:"active"`
	CreatedAt  string `json:"created_at"`
}

func teamView(t ivr.Team) TeamView {
	return TeamView{ID: t.ID, BusinessID: t.BusinessID, Name: t.Name, Number: t.Number, Active: t.Active, CreatedAt: apiTime(t.CreatedAt)}
}

// TeamRequest is the body of POST .../teams (name required; active
// defaults to true) and PATCH .../teams/{team_id} (number, active).
type TeamRequest struct {
	Name   *string `json:"name"`
	Number *string `json:"number"`
	Active *bool   `json:"active"`
}

func (h *Admin) listTeams(r *http.Request) ([]ivr.Team, error) {
	bid, err := pathID(r, "business_id", "business id")
	if err != nil {
		return nil, err
	}
	return h.Provision.ListTeams(r.Context(), bid)
}

func (h *Admin) createTeam(w http.ResponseWriter, r *http.Request) error {
	bid, err := pathID(r, "business_id", "business id")
	if err != nil {
		return err
	}
	var q TeamRequest
	if err := DecodeJSON(w, r, MaxAdminBody, &q); err != nil {
		return err
	}
	if q.Name == nil {
		return Errorf(http.StatusBadRequest, "name missing in the request")
	}
	spec := provision.TeamSpec{BusinessID: bid, Name: *q.Name, Active: true}
	if q.Number != nil {
		spec.Number = *q.Number
	}
	if q.Active != nil {
		spec.Active = *q.Active
	}
	t, err := h.Provision.CreateTeam(r.Context(), spec)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, teamView(t))
	return nil
}

func (h *Admin) loadTeam(r *http.Request) (ivr.Team, error) {
	bid, err := pathID(r, "business_id", "business id")
	if err != nil {
		return ivr.Team{}, err
	}
	id, err := pathID(r, "team_id", "team id")
	if err != nil {
		return ivr.Team{}, err
	}
	return h.Provision.GetTeam(r.Context(), bid, id)
}

func (h *Admin) saveTeam(ctx context.Context, t ivr.Team) (ivr.Team, error) {
	return h.Provision.PutTeam(ctx, provision.TeamSpec{BusinessID: t.BusinessID, Name: t.Name, Number: t.Number, Active: t.Active})
}

// patchTeam applies a PATCH body to t: number and active; the name is the
// team's key.
func patchTeam(q TeamRequest, t *ivr.Team) error {
	if q.Name != nil && *q.Name != t.Name {
		return Errorf(http.StatusBadRequest, "name cannot change: create a new team")
	}
	if q.Number != nil {
		t.Number = *q.Number
	}
	if q.Active != nil {
		t.Active = *q.Active
	}
	return nil
}

// ---- agents

// AgentView is an agent as the API returns it.
type AgentView struct {
	ID         int64  `json:"id"`
	BusinessID int64  `json:"business_id"`
	TeamID     int64  `json:"team_id"`
	Name       string `json:"name"`
	Active     bool   `json:"active"`
	CreatedAt  string `json:"created_at"`
}

func agentView(a ivr.Agent) AgentView {
	return AgentView{ID: a.ID, BusinessID: a.BusinessID, TeamID: a.TeamID, Name: a.Name, Active: a.Active, CreatedAt: apiTime(a.CreatedAt)}
}

// AgentWriteRequest is the body of POST .../agents (name and team_id required;
// active defaults to true) and PATCH .../agents/{agent_id} (team_id,
// active).
type AgentWriteRequest struct {
	Name   *string `json:"name"`
	TeamID *int64  `json:"team_id"`
	Active *bool   `json:"active"`
}

func (h *Admin) listAgents(r *http.Request) ([]ivr.Agent, error) {
	bid, err := pathID(r, "business_id", "business id")
	if err != nil {
		return nil, err
	}
	return h.Provision.ListAgents(r.Context(), bid)
}

func (h *Admin) createAgent(w http.ResponseWriter, r *http.Request) error {
	bid, err := pathID(r, "business_id", "business id")
	if err != nil {
		return err
	}
	var q AgentWriteRequest
	if err := DecodeJSON(w, r, MaxAdminBody, &q); err != nil {
		return err
	}
	switch {
	case q.Name == nil:
		return Errorf(http.StatusBadRequest, "name missing in the request")
	case q.TeamID == nil:
		return Errorf(http.StatusBadRequest, "team_id missing in the request")
	}
	spec := provision.AgentSpec{BusinessID: bid, TeamID: *q.TeamID, Name: *q.Name, Active: true}
	if q.Active != nil {
		spec.Active = *q.Active
	}
	a, err := h.Provision.CreateAgent(r.Context(), spec)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, agentView(a))
	return nil
}

func (h *Admin) loadAgent(r *http.Request) (ivr.Agent, error) {
	bid, err := pathID(r, "business_id", "business id")
	if err != nil {
		return ivr.Agent{}, err
	}
	id, err := pathID(r, "agent_id", "agent id")
	if err != nil {
		return ivr.Agent{}, err
	}
	if _, err := h.Provision.GetBusiness(r.Context(), bid); err != nil {
		return ivr.Agent{}, err
	}
	return h.Provision.GetAgent(r.Context(), bid, id)
}

func (h *Admin) saveAgent(ctx context.Context, a ivr.Agent) (ivr.Agent, error) {
	return h.Provision.PutAgent(ctx, provision.AgentSpec{BusinessID: a.BusinessID, TeamID: a.TeamID, Name: a.Name, Active: a.Active})
}

// patchAgent applies a PATCH body to a: team_id and active; the name is
// the agent's key.
func patchAgent(q AgentWriteRequest, a *ivr.Agent) error {
	if q.Name != nil && *q.Name != a.Name {
		return Errorf(http.StatusBadRequest, "name cannot change: create a new agent")
	}
	if q.TeamID != nil {
		a.TeamID = *q.TeamID
	}
	if q.Active != nil {
		a.Active = *q.Active
	}
	return nil
}

// ---- API steps

// APIStepRequest is the body of PUT .../api_steps/{node}: the call of the
// business's API made with the value the user gives after the node's
// answer (see faq.APIStep). Header values that carry a credential must
// be environment references, "${NAME}", resolved when the call is made.
type APIStepRequest struct {
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers"`
	Body      string            `json:"body"`
	Reply     string            `json:"reply"`
	NotFound  string            `json:"not_found"`
	TimeoutMS int64             `json:"timeout_ms"`
}

// APIStepView is an API step as the API returns it.
type APIStepView struct {
	BusinessID int64             `json:"business_id"`
	Node       string            `json:"node"`
	Method     string            `json:"method"`
	URL        string            `json:"url"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
	Reply      string            `json:"reply"`
	NotFound   string            `json:"not_found"`
	TimeoutMS  int64             `json:"timeout_ms"`
	UpdatedAt  string            `json:"updated_at"`
}

func apiStepView(a store.APIStep) (APIStepView, error) {
	st, err := provision.DecodeAPIStep(a)
	if err != nil {
		return APIStepView{}, err
	}
	h := st.Headers
	if h == nil {
		h = map[string]string{}
	}
	return APIStepView{BusinessID: a.BusinessID, Node: a.Node, Method: st.Method, URL: st.URL, Headers: h, Body: st.Body,
		Reply: st.Reply, NotFound: st.NotFound, TimeoutMS: st.Timeout.Milliseconds(), UpdatedAt: apiTime(a.UpdatedAt)}, nil
}

func (h *Admin) listAPISteps(w http.ResponseWriter, r *http.Request) error {
	bid, err := pathID(r, "business_id", "business id")
	if err != nil {
		return err
	}
	l, err := h.Provision.ListAPISteps(r.Context(), bid)
	if err != nil {
		return err
	}
	out := make([]APIStepView, 0, len(l))
	for _, a := range l {
		v, err := apiStepView(a)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	WriteJSON(w, http.StatusOK, map[string]any{"api_steps": out})
	return nil
}

func (h *Admin) getAPIStep(w http.ResponseWriter, r *http.Request) error {
	bid, err := pathID(r, "business_id", "business id")
	if err != nil {
		return err
	}
	a, err := h.Provision.GetAPIStep(r.Context(), bid, mux.Vars(r)["node"])
	if err != nil {
		return err
	}
	v, err := apiStepView(a)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, v)
	return nil
}

// maxAPIStepTimeout bounds timeout_ms (the engine's deadline cuts it
// further).
const maxAPIStepTimeout = 60 * time.Second

func (h *Admin) putAPIStep(w http.ResponseWriter, r *http.Request) error {
	bid, err := pathID(r, "business_id", "business id")
	if err != nil {
		return err
	}
	var q APIStepRequest
	if err := DecodeJSON(w, r, MaxAdminBody, &q); err != nil {
		return err
	}
	if q.TimeoutMS < 0 || time.Duration(q.TimeoutMS)*time.Millisecond > maxAPIStepTimeout {
		return Errorf(http.StatusBadRequest, "timeout_ms must be 0-%d", maxAPIStepTimeout.Milliseconds())
	}
	step := faq.APIStep{Method: q.Method, URL: q.URL, Headers: q.Headers, Body: q.Body, Reply: q.Reply, NotFound: q.NotFound,
		Timeout: time.Duration(q.TimeoutMS) * time.Millisecond}
	a, created, err := h.Provision.PutAPIStep(r.Context(), provision.APIStepSpec{BusinessID: bid, Node: mux.Vars(r)["node"], Step: step})
	if err != nil {
		return err
	}
	v, err := apiStepView(a)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	WriteJSON(w, status, v)
	return nil
}

func (h *Admin) deleteAPIStep(w http.ResponseWriter, r *http.Request) error {
	bid, err := pathID(r, "business_id", "business id")
	if err != nil {
		return err
	}
	if err := h.Provision.DeleteAPIStep(r.Context(), bid, mux.Vars(r)["node"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
