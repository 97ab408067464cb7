package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/store"
)

// Store is what the provisioning service needs from the store
// (store.Store implements it).
type Store interface {
	GetBusiness(ctx context.Context, id int64) (ivr.Business, error)
	CreateBusiness(ctx context.Context, b *ivr.Business) error
	UpdateBusiness(ctx context.Context, b ivr.Business) error
	ListBusinesses(ctx context.Context) ([]ivr.Business, error)
	CreateConnection(ctx context.Context, c *ivr.Connection) error
	GetConnection(ctx context.Context, channel ivr.Channel, identifier string) (ivr.Connection, error)
	GetConnectionByID(ctx context.Context, id int64) (ivr.Connection, error)
	ListConnections(ctx context.Context, businessID int64) ([]ivr.Connection, error)
	UpdateConnection(ctx context.Context, c ivr.Connection) error
	ListFAQ(ctx context.Context, businessID int64, activeOnly bool) ([]ivr.FAQNode, error)
	PutTeam(ctx context.Context, t *ivr.Team) error
	CreateTeam(ctx context.Context, t *ivr.Team) error
	ListTeams(ctx context.Context, businessID int64) ([]ivr.Team, error)
	GetTeamByName(ctx context.Context, businessID int64, name string) (ivr.Team, error)
	PutAgent(ctx context.Context, a *ivr.Agent) error
	CreateAgent(ctx context.Context, a *ivr.Agent) error
	ListAgents(ctx context.Context, businessID int64) ([]ivr.Agent, error)
	GetAgentByName(ctx context.Context, businessID int64, name string) (ivr.Agent, error)
	GetAgent(ctx context.Context, id int64) (ivr.Agent, error)
	PutAPIStep(ctx context.Context, a store.APIStep) error
	ListAPISteps(ctx context.Context, businessID int64) ([]store.APIStep, error)
	GetAPIStep(ctx context.Context, businessID int64, node string) (store.APIStep, error)
	DeleteAPIStep(ctx context.Context, businessID int64, node string) error
}

// Service is the one code path that writes businesses, connections, teams,
// agents and API steps. YAML provisioning ([Apply]), the demo business and
// the admin API all call it, so one declaration gives the same records
// whichever way it arrives. Every method checks everything it is given
// before its first write; a refusal is an [*Error] and stores nothing.
type Service struct {
	Store Store
	// Logger records every write (never a credential); nil discards.
	Logger *slog.Logger
}

// Error is a refusal: Kind is ErrInvalid (bad input, 400), ivr.ErrNotFound
// (404) or ivr.ErrConflict (409), and Message says what, for clients and
// operators alike (it never holds a credential).
type Error struct {
	Kind    error
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is matches Kind, and ivr.ErrInvalid for ErrInvalid.
func (e *Error) Is(target error) bool {
	return target == e.Kind || (e.Kind == ErrInvalid && target == ivr.ErrInvalid)
}

// HTTPStatus implements ivr.HTTPStatuser.
func (e *Error) HTTPStatus() (int, string) {
	switch e.Kind {
	case ivr.ErrNotFound:
		return http.StatusNotFound, e.Message
	case ivr.ErrConflict:
		return http.StatusConflict, e.Message
	}
	return http.StatusBadRequest, e.Message
}

func invalidf(format string, args ...any) *Error {
	return &Error{Kind: ErrInvalid, Message: fmt.Sprintf(format, args...)}
}

func notFoundf(format string, args ...any) *Error {
	return &Error{Kind: ivr.ErrNotFound, Message: fmt.Sprintf(format, args...)}
}

func conflictf(format string, args ...any) *Error {
	return &Error{Kind: ivr.ErrConflict, Message: fmt.Sprintf(format, args...)}
}

// joinInvalid returns one *Error listing every problem (nil when none).
func joinInvalid(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return invalidf("%s", strings.Join(problems, "; "))
}

// storeProblem turns a store validation error into its message without
// the "invalid input: " prefix.
func storeProblem(err error) string {
	return strings.TrimPrefix(err.Error(), ivr.ErrInvalid.Error()+": ")
}

// Caps of the service's own checks (the store's are wider).
const (
	MaxNameBytes    = 256
	MaxMessageBytes = 4 << 10
	// MaxSilencePeriod and MaxRecordTime bound the KooKoo voice settings,
	// in seconds.
	MaxSilencePeriod = 60
	MaxRecordTime    = 3600
	MaxFailures      = 100
)

var (
	numberRE     = regexp.MustCompile(`^\+?[0-9]{3,20}$`)
	headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
)

func checkText(problems *[]string, field, s string, max int) {
	if err := ivr.CheckText(field, s, max); err != nil {
		*problems = append(*problems, err.Error())
	}
}

func checkName(problems *[]string, field, s string) {
	if strings.TrimSpace(s) == "" {
		*problems = append(*problems, field+" missing in the request")
		return
	}
	checkText(problems, field, s, MaxNameBytes)
}

// BusinessSpec is a business as the service writes it.
type BusinessSpec struct {
	// ID is the business id; 0 lets the store choose one (admin API).
	ID   int64
	Name string
	// Token is the business API token, write-only: only its hash is
	// stored. Empty keeps the current token; a new business needs one.
	Token    ivr.Secret
	ClientID string
	// FallbackMessage is the bot's answer when nothing matches; empty
	// keeps the current one.
	FallbackMessage string
	Active          bool
	Bot             ivr.BotKind
	// BotURL is the remote bot's URL (a credential: it may hold a token).
	BotURL ivr.Secret
}

// SpecOfBusiness is the spec that writes b again unchanged (Token empty:
// the stored hash is kept).
func SpecOfBusiness(b ivr.Business) BusinessSpec {
	return BusinessSpec{ID: b.ID, Name: b.Name, ClientID: b.ClientID, FallbackMessage: b.FallbackMessage,
		Active: b.Active, Bot: b.Bot, BotURL: b.BotURL}
}

// Validate checks the spec without touching the store.
func (s BusinessSpec) Validate() error {
	var p []string
	if s.ID < 0 {
		p = append(p, fmt.Sprintf("business id must be a positive number, got %d", s.ID))
	}
	checkName(&p, "name", s.Name)
	if strings.TrimSpace(s.ClientID) == "" {
		p = append(p, "client_id missing in the request")
	} else {
		checkText(&p, "client_id", s.ClientID, MaxNameBytes)
	}
	checkText(&p, "token", s.Token.Reveal(), MaxNameBytes)
	checkText(&p, "fallback_message", s.FallbackMessage, MaxMessageBytes)
	switch s.Bot {
	case ivr.BotDefault, ivr.BotFAQ:
		if s.BotURL != "" {
			p = append(p, "bot.remote_url needs bot kind remote")
		}
	case ivr.BotRemote:
		if s.BotURL == "" {
			p = append(p, "bot kind remote needs bot.remote_url")
		} else if err := checkBotURL(s.BotURL.Reveal()); err != nil {
			p = append(p, "bot.remote_url: "+err.Error())
		}
	default:
		p = append(p, fmt.Sprintf("bot kind %.32q: want faq or remote", s.Bot))
	}
	if len(p) == 0 {
		if err := store.ValidateBusiness(s.record(ivr.Business{})); err != nil {
			p = append(p, storeProblem(err))
		}
	}
	return joinInvalid(p)
}

// record is the business s writes over cur (cur is zero for a new one).
func (s BusinessSpec) record(cur ivr.Business) ivr.Business {
	b := cur
	b.ID, b.Name, b.ClientID, b.Active, b.Bot, b.BotURL = s.ID, s.Name, s.ClientID, s.Active, s.Bot, s.BotURL
	if s.FallbackMessage != "" {
		b.FallbackMessage = s.FallbackMessage
	}
	if s.Token != "" {
		b.TokenHash = ivr.HashToken(s.Token.Reveal())
	}
	return b
}

func (s *Service) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// storeErr maps the store's sentinel errors to refusals with message.
func storeErr(err error, what string) error {
	switch {
	case errors.Is(err, ivr.ErrNotFound):
		return notFoundf("%s not found", what)
	case errors.Is(err, ivr.ErrConflict):
		return conflictf("%s already exists", what)
	case errors.Is(err, ivr.ErrInvalid):
		return invalidf("%s: %s", what, storeProblem(err))
	}
	return fmt.Errorf("provision: %s: %w", what, err)
}

// GetBusiness returns a business; an *Error (404) when it does not exist.
func (s *Service) GetBusiness(ctx context.Context, id int64) (ivr.Business, error) {
	b, err := s.Store.GetBusiness(ctx, id)
	if err != nil {
		return b, storeErr(err, fmt.Sprintf("business %d", id))
	}
	return b, nil
}

// ListBusinesses lists every business by id.
func (s *Service) ListBusinesses(ctx context.Context) ([]ivr.Business, error) {
	l, err := s.Store.ListBusinesses(ctx)
	if err != nil {
		return nil, fmt.Errorf("provision: list businesses: %w", err)
	}
	return l, nil
}

// CreateBusiness creates a new business; 409 when spec.ID exists.
func (s *Service) CreateBusiness(ctx context.Context, spec BusinessSpec) (ivr.Business, error) {
	if err := spec.Validate(); err != nil {
		return ivr.Business{}, err
	}
	if spec.ID != 0 {
		if _, err := s.Store.GetBusiness(ctx, spec.ID); err == nil {
			return ivr.Business{}, conflictf("business %d already exists", spec.ID)
		} else if !errors.Is(err, ivr.ErrNotFound) {
			return ivr.Business{}, fmt.Errorf("provision: get business %d: %w", spec.ID, err)
		}
	}
	b, _, err := s.PutBusiness(ctx, spec)
	return b, err
}

// PutBusiness creates the business or, when spec.ID exists, updates it.
func (s *Service) PutBusiness(ctx context.Context, spec BusinessSpec) (b ivr.Business, created bool, err error) {
	if err := spec.Validate(); err != nil {
		return b, false, err
	}
	cur, err := ivr.Business{}, ivr.ErrNotFound
	if spec.ID != 0 {
		cur, err = s.Store.GetBusiness(ctx, spec.ID)
	}
	switch {
	case errors.Is(err, ivr.ErrNotFound):
		if spec.Token == "" {
			return b, false, invalidf("token missing in the request: a new business needs its API token")
		}
		b = spec.record(ivr.Business{})
		if err := s.Store.CreateBusiness(ctx, &b); err != nil {
			return b, false, storeErr(err, fmt.Sprintf("business %d", spec.ID))
		}
		created = true
	case err != nil:
		return b, false, fmt.Errorf("provision: get business %d: %w", spec.ID, err)
	default:
		b = spec.record(cur)
		if err := s.Store.UpdateBusiness(ctx, b); err != nil {
			return b, false, storeErr(err, fmt.Sprintf("business %d", spec.ID))
		}
	}
	s.log().InfoContext(ctx, "business saved", "business_id", b.ID, "created", created, "active", b.Active,
		"token_changed", spec.Token != "")
	return b, created, nil
}

// ConnectionSpec is a channel connection as the service writes it.
type ConnectionSpec struct {
	BusinessID int64
	Channel    ivr.Channel
	Identifier string
	Active     bool
	// Settings are written whole, credentials included (write-only).
	Settings ivr.ConnectionSettings
}

// channelSection names, per channel, the typed settings section and the
// credentials a connection of that channel may hold.
var channelSection = map[ivr.Channel]string{
	ivr.ChannelFacebook: "messenger", ivr.ChannelWhatsApp: "twilio", ivr.ChannelMetaWhatsApp: "meta_whatsapp",
	ivr.ChannelInfobip: "infobip", ivr.ChannelGupshup: "gupshup", ivr.ChannelKarix: "karix",
	ivr.ChannelJio: "jio", ivr.ChannelWebchat: "webchat",
}

// sections returns every typed section of s by name, as values.
func sections(s ivr.ConnectionSettings) map[string]any {
	return map[string]any{
		"messenger": s.Messenger, "twilio": s.Twilio, "meta_whatsapp": s.MetaWhatsApp, "infobip": s.Infobip,
		"gupshup": s.Gupshup, "karix": s.Karix, "jio": s.Jio, "webchat": s.Webchat,
	}
}

// ChannelNames lists the channels a connection may have, sorted.
func ChannelNames() []string {
	out := make([]string, 0, len(knownChannels))
	for c := range knownChannels {
		out = append(out, string(c))
	}
	sort.Strings(out)
	return out
}

// Validate checks the spec without touching the store: a known channel,
// an identifier fit for a URL path, voice settings in range, settings and
// credentials of the connection's own channel only, and everything the
// store would refuse.
func (c ConnectionSpec) Validate() error { return c.validate(nil) }

// validate is Validate, tolerating a foreign channel's section or webhook
// credentials that equal cur's (rows written before these checks): a
// connection with such settings can still be switched off or edited.
func (c ConnectionSpec) validate(cur *ivr.ConnectionSettings) error {
	var p []string
	if c.BusinessID < 0 {
		p = append(p, fmt.Sprintf("business_id must be a positive number, got %d", c.BusinessID))
	}
	if !knownChannels[c.Channel] {
		p = append(p, fmt.Sprintf("unknown channel %.32q (one of %s)", c.Channel, strings.Join(ChannelNames(), ", ")))
	}
	if !identifierRE.MatchString(c.Identifier) {
		p = append(p, fmt.Sprintf("identifier %.80q must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", c.Identifier))
	}
	st := c.Settings
	if st.SilencePeriod < 0 || st.SilencePeriod > MaxSilencePeriod {
		p = append(p, fmt.Sprintf("silence_period must be 0-%d seconds, got %d", MaxSilencePeriod, st.SilencePeriod))
	}
	if st.MaxRecordTime < 0 || st.MaxRecordTime > MaxRecordTime {
		p = append(p, fmt.Sprintf("max_record_time must be 0-%d seconds, got %d", MaxRecordTime, st.MaxRecordTime))
	}
	if st.MaxFailures < 0 || st.MaxFailures > MaxFailures {
		p = append(p, fmt.Sprintf("max_failures must be 0-%d, got %d", MaxFailures, st.MaxFailures))
	}
	for _, f := range []struct{ name, v string }{{"welcome_message", st.WelcomeMessage}, {"break_message", st.BreakMessage},
		{"goodbye_message", st.GoodbyeMessage}, {"reprompt_message", st.RepromptText}} {
		checkText(&p, f.name, f.v, MaxMessageBytes)
	}
	if knownChannels[c.Channel] {
		own := channelSection[c.Channel]
		names := make([]string, 0, 8)
		for name := range sections(st) {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			v := sections(st)[name]
			if name != own && !reflect.ValueOf(v).IsZero() && (cur == nil || !reflect.DeepEqual(v, sections(*cur)[name])) {
				p = append(p, fmt.Sprintf("settings.%s do not apply to a %s connection", name, c.Channel))
			}
		}
		if c.Channel != ivr.ChannelWebhook && (st.SecretKey != "" || st.AccessToken != "") &&
			(cur == nil || st.SecretKey != cur.SecretKey || st.AccessToken != cur.AccessToken) {
			p = append(p, fmt.Sprintf("secret_key and access_token are webhook credentials, not %s ones", c.Channel))
		}
	}
	if len(p) == 0 {
		if err := store.ValidateConnection(ivr.Connection{BusinessID: c.BusinessID, Channel: c.Channel, Identifier: c.Identifier, Settings: c.Settings}); err != nil {
			p = append(p, storeProblem(err))
		}
	}
	return joinInvalid(p)
}

func connName(ch ivr.Channel, id string) string { return fmt.Sprintf("connection %s/%s", ch, id) }

// GetConnection returns a connection by id (404 when unknown).
func (s *Service) GetConnection(ctx context.Context, id int64) (ivr.Connection, error) {
	c, err := s.Store.GetConnectionByID(ctx, id)
	if err != nil {
		return c, storeErr(err, fmt.Sprintf("connection %d", id))
	}
	return c, nil
}

// ListConnections lists a business's connections (404 for an unknown
// business).
func (s *Service) ListConnections(ctx context.Context, businessID int64) ([]ivr.Connection, error) {
	if _, err := s.GetBusiness(ctx, businessID); err != nil {
		return nil, err
	}
	l, err := s.Store.ListConnections(ctx, businessID)
	if err != nil {
		return nil, fmt.Errorf("provision: list connections: %w", err)
	}
	return l, nil
}

// CreateConnection creates a connection; 409 when its channel and
// identifier are taken.
func (s *Service) CreateConnection(ctx context.Context, spec ConnectionSpec) (ivr.Connection, error) {
	if err := spec.Validate(); err != nil {
		return ivr.Connection{}, err
	}
	if cur, err := s.Store.GetConnection(ctx, spec.Channel, spec.Identifier); err == nil {
		return ivr.Connection{}, conflictf("%s already exists (id %d)", connName(spec.Channel, spec.Identifier), cur.ID)
	} else if !errors.Is(err, ivr.ErrNotFound) {
		return ivr.Connection{}, fmt.Errorf("provision: get %s: %w", connName(spec.Channel, spec.Identifier), err)
	}
	c, _, err := s.PutConnection(ctx, spec)
	return c, err
}

// PutConnection creates the connection or updates the business's one of
// that channel and identifier; 404 for an unknown business, 409 when the
// connection belongs to another business.
func (s *Service) PutConnection(ctx context.Context, spec ConnectionSpec) (c ivr.Connection, created bool, err error) {
	name := connName(spec.Channel, spec.Identifier)
	var cur ivr.Connection
	err = ErrInvalid
	if identifierRE.MatchString(spec.Identifier) && knownChannels[spec.Channel] {
		cur, err = s.Store.GetConnection(ctx, spec.Channel, spec.Identifier)
	}
	var curSettings *ivr.ConnectionSettings
	if err == nil {
		curSettings = &cur.Settings
	}
	if err := spec.validate(curSettings); err != nil {
		return c, false, err
	}
	if spec.BusinessID == 0 {
		return c, false, invalidf("business_id missing in the request")
	}
	if _, err := s.GetBusiness(ctx, spec.BusinessID); err != nil {
		return c, false, err
	}
	switch {
	case errors.Is(err, ivr.ErrNotFound):
		c = ivr.Connection{BusinessID: spec.BusinessID, Channel: spec.Channel, Identifier: spec.Identifier, Active: spec.Active, Settings: spec.Settings}
		if err := s.Store.CreateConnection(ctx, &c); err != nil {
			return c, false, storeErr(err, name)
		}
		created = true
	case err != nil:
		return c, false, fmt.Errorf("provision: get %s: %w", name, err)
	case cur.BusinessID != spec.BusinessID:
		return c, false, conflictf("%s belongs to business %d, not %d", name, cur.BusinessID, spec.BusinessID)
	default:
		c = cur
		c.Active, c.Settings = spec.Active, spec.Settings
		if err := s.Store.UpdateConnection(ctx, c); err != nil {
			return c, false, storeErr(err, name)
		}
	}
	s.log().InfoContext(ctx, "connection saved", "connection", c, "created", created)
	return c, created, nil
}

// TeamSpec is an agent team as the service writes it.
type TeamSpec struct {
	BusinessID int64
	// Name is unique per business (send_chat_to_agent's team_name).
	Name string
	// Number is dialled when a caller is transferred to the team.
	Number string
	Active bool
}

// Validate checks the spec without touching the store.
func (t TeamSpec) Validate() error {
	var p []string
	checkName(&p, "team name", t.Name)
	if t.Number != "" && !numberRE.MatchString(t.Number) {
		p = append(p, fmt.Sprintf("team number %.40q must be 3-20 digits, optionally after a '+'", t.Number))
	}
	return joinInvalid(p)
}

// ListTeams lists a business's teams (404 for an unknown business).
func (s *Service) ListTeams(ctx context.Context, businessID int64) ([]ivr.Team, error) {
	if _, err := s.GetBusiness(ctx, businessID); err != nil {
		return nil, err
	}
	l, err := s.Store.ListTeams(ctx, businessID)
	if err != nil {
		return nil, fmt.Errorf("provision: list teams: %w", err)
	}
	return l, nil
}

// GetTeam returns a business's team by id (404 when unknown).
func (s *Service) GetTeam(ctx context.Context, businessID, id int64) (ivr.Team, error) {
	l, err := s.ListTeams(ctx, businessID)
	if err != nil {
		return ivr.Team{}, err
	}
	for _, t := range l {
		if t.ID == id {
			return t, nil
		}
	}
	return ivr.Team{}, notFoundf("team %d of business %d not found", id, businessID)
}

// CreateTeam creates a team; 409 when the business has one of that name.
// The store's unique key decides, so of two simultaneous creates of one
// name exactly one succeeds.
func (s *Service) CreateTeam(ctx context.Context, spec TeamSpec) (ivr.Team, error) {
	return s.saveTeam(ctx, spec, s.Store.CreateTeam)
}

// PutTeam creates the team or updates the business's team of that name.
func (s *Service) PutTeam(ctx context.Context, spec TeamSpec) (ivr.Team, error) {
	return s.saveTeam(ctx, spec, s.Store.PutTeam)
}

func (s *Service) saveTeam(ctx context.Context, spec TeamSpec, write func(context.Context, *ivr.Team) error) (ivr.Team, error) {
	if err := spec.Validate(); err != nil {
		return ivr.Team{}, err
	}
	if _, err := s.GetBusiness(ctx, spec.BusinessID); err != nil {
		return ivr.Team{}, err
	}
	t := ivr.Team{BusinessID: spec.BusinessID, Name: spec.Name, Number: spec.Number, Active: spec.Active}
	if err := write(ctx, &t); err != nil {
		if errors.Is(err, ivr.ErrConflict) {
			if cur, gerr := s.Store.GetTeamByName(ctx, spec.BusinessID, spec.Name); gerr == nil {
				return ivr.Team{}, conflictf("team %.64q already exists (id %d)", spec.Name, cur.ID)
			}
		}
		return ivr.Team{}, storeErr(err, fmt.Sprintf("team %.64q", spec.Name))
	}
	s.log().InfoContext(ctx, "team saved", "business_id", t.BusinessID, "team_id", t.ID, "active", t.Active)
	return t, nil
}

// AgentSpec is an agent as the service writes it.
type AgentSpec struct {
	BusinessID int64
	TeamID     int64
	// Name is unique per business; transcripts show "agent(<Name>)".
	Name   string
	Active bool
}

// Validate checks the spec without touching the store.
func (a AgentSpec) Validate() error {
	var p []string
	checkName(&p, "agent name", a.Name)
	if strings.ContainsAny(a.Name, "()\n\r") {
		p = append(p, "agent name may not hold parentheses or line breaks (transcripts show agent(<name>))")
	}
	if a.TeamID <= 0 {
		p = append(p, "team_id missing in the request")
	}
	return joinInvalid(p)
}

// ListAgents lists a business's agents (404 for an unknown business).
func (s *Service) ListAgents(ctx context.Context, businessID int64) ([]ivr.Agent, error) {
	if _, err := s.GetBusiness(ctx, businessID); err != nil {
		return nil, err
	}
	l, err := s.Store.ListAgents(ctx, businessID)
	if err != nil {
		return nil, fmt.Errorf("provision: list agents: %w", err)
	}
	return l, nil
}

// GetAgent returns a business's agent by id (404 when unknown).
func (s *Service) GetAgent(ctx context.Context, businessID, id int64) (ivr.Agent, error) {
	a, err := s.Store.GetAgent(ctx, id)
	if errors.Is(err, ivr.ErrNotFound) || (err == nil && a.BusinessID != businessID) {
		return ivr.Agent{}, notFoundf("agent %d of business %d not found", id, businessID)
	}
	if err != nil {
		return a, fmt.Errorf("provision: get agent %d: %w", id, err)
	}
	return a, nil
}

// CreateAgent creates an agent; 409 when the business has one of that
// name (the store's unique key decides, as for teams).
func (s *Service) CreateAgent(ctx context.Context, spec AgentSpec) (ivr.Agent, error) {
	return s.saveAgent(ctx, spec, s.Store.CreateAgent)
}

// PutAgent creates the agent or updates the business's agent of that
// name; the team must be one of the business's (400 otherwise).
func (s *Service) PutAgent(ctx context.Context, spec AgentSpec) (ivr.Agent, error) {
	return s.saveAgent(ctx, spec, s.Store.PutAgent)
}

func (s *Service) saveAgent(ctx context.Context, spec AgentSpec, write func(context.Context, *ivr.Agent) error) (ivr.Agent, error) {
	if err := spec.Validate(); err != nil {
		return ivr.Agent{}, err
	}
	if _, err := s.GetTeam(ctx, spec.BusinessID, spec.TeamID); err != nil {
		var pe *Error
		if errors.As(err, &pe) && pe.Kind == ivr.ErrNotFound && !strings.HasPrefix(pe.Message, "business") {
			return ivr.Agent{}, invalidf("team_id %d is not a team of business %d", spec.TeamID, spec.BusinessID)
		}
		return ivr.Agent{}, err
	}
	a := ivr.Agent{BusinessID: spec.BusinessID, TeamID: spec.TeamID, Name: spec.Name, Active: spec.Active}
	if err := write(ctx, &a); err != nil {
		if errors.Is(err, ivr.ErrConflict) {
			if cur, gerr := s.Store.GetAgentByName(ctx, spec.BusinessID, spec.Name); gerr == nil {
				return ivr.Agent{}, conflictf("agent %.64q already exists (id %d)", spec.Name, cur.ID)
			}
		}
		return ivr.Agent{}, storeErr(err, fmt.Sprintf("agent %.64q", spec.Name))
	}
	s.log().InfoContext(ctx, "agent saved", "business_id", a.BusinessID, "agent_id", a.ID, "team_id", a.TeamID, "active", a.Active)
	return a, nil
}

// APIStepSpec is an API step as the service writes it: the call of the
// business's API that follows the FAQ node's answer.
type APIStepSpec struct {
	BusinessID int64
	Node       string
	Step       faq.APIStep
}

// secretHeader reports whether a header carries a credential, so its value
// must come from the environment (${NAME}), never be stored.
func secretHeader(name string) bool {
	n := strings.ToLower(name)
	if n == "authorization" || n == "proxy-authorization" || n == "cookie" {
		return true
	}
	for _, w := range []string{"token", "key", "secret", "auth", "password"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

var envRefRE = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*\}`)

// Validate checks the spec without touching the store: the step's own
// checks (faq.APIStep.Validate), header names and values, and that a
// credential header takes its secret from the environment.
func (a APIStepSpec) Validate() error {
	var p []string
	checkName(&p, "node", a.Node)
	if err := a.Step.Validate(); err != nil {
		p = append(p, strings.TrimPrefix(err.Error(), "api step: "))
	}
	checkText(&p, "url", a.Step.URL, store.MaxURLBytes)
	for _, f := range []struct{ name, v string }{{"body", a.Step.Body}, {"reply", a.Step.Reply}, {"not_found", a.Step.NotFound}} {
		checkText(&p, f.name, f.v, MaxMessageBytes)
	}
	if a.Step.Timeout < 0 {
		p = append(p, "timeout must not be negative")
	}
	names := make([]string, 0, len(a.Step.Headers))
	for k := range a.Step.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := a.Step.Headers[k]
		if !headerNameRE.MatchString(k) {
			p = append(p, fmt.Sprintf("header name %.64q is not a valid HTTP header name", k))
			continue
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			p = append(p, fmt.Sprintf("header %s holds a line break or NUL", k))
			continue
		}
		checkText(&p, "header "+k, v, MaxMessageBytes)
		if secretHeader(k) && !envRefRE.MatchString(v) {
			p = append(p, fmt.Sprintf("header %s carries a credential: give it as an environment reference (${NAME}), never the value", k))
		}
	}
	if len(p) == 0 {
		if b, err := EncodeAPIStep(a.Step); err != nil {
			p = append(p, err.Error())
		} else if len(b) > store.MaxAPIStepBytes {
			p = append(p, fmt.Sprintf("api step is %d bytes encoded (limit %d)", len(b), store.MaxAPIStepBytes))
		}
	}
	return joinInvalid(p)
}

// EncodeAPIStep is the JSON the api_steps table keeps for a step: faq.APIStep's
// own JSON (timeout in nanoseconds), method upper-cased.
func EncodeAPIStep(st faq.APIStep) ([]byte, error) {
	st.Method = strings.ToUpper(st.Method)
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("provision: encode api step: %w", err)
	}
	return b, nil
}

// DecodeAPIStep reads a stored step back.
func DecodeAPIStep(a store.APIStep) (faq.APIStep, error) {
	var st faq.APIStep
	if err := json.Unmarshal(a.Spec, &st); err != nil {
		return st, fmt.Errorf("provision: decode api step %.64q of business %d: %w", a.Node, a.BusinessID, err)
	}
	return st, nil
}

// LoadAPISteps returns a business's stored API steps by node, for the bot
// (faq.APISteps.Steps).
func LoadAPISteps(ctx context.Context, st interface {
	ListAPISteps(ctx context.Context, businessID int64) ([]store.APIStep, error)
}, businessID int64) (map[string]faq.APIStep, error) {
	rows, err := st.ListAPISteps(ctx, businessID)
	if err != nil {
		return nil, fmt.Errorf("provision: load api steps of business %d: %w", businessID, err)
	}
	out := make(map[string]faq.APIStep, len(rows))
	for _, r := range rows {
		step, err := DecodeAPIStep(r)
		if err != nil {
			return nil, err
		}
		out[r.Node] = step
	}
	return out, nil
}

// ListAPISteps lists a business's API steps by node (404 for an unknown
// business).
func (s *Service) ListAPISteps(ctx context.Context, businessID int64) ([]store.APIStep, error) {
	if _, err := s.GetBusiness(ctx, businessID); err != nil {
		return nil, err
	}
	l, err := s.Store.ListAPISteps(ctx, businessID)
	if err != nil {
		return nil, fmt.Errorf("provision: list api steps: %w", err)
	}
	return l, nil
}

// GetAPIStep returns one API step (404 when unknown).
func (s *Service) GetAPIStep(ctx context.Context, businessID int64, node string) (store.APIStep, error) {
	if _, err := s.GetBusiness(ctx, businessID); err != nil {
		return store.APIStep{}, err
	}
	a, err := s.Store.GetAPIStep(ctx, businessID, node)
	if err != nil {
		return a, storeErr(err, fmt.Sprintf("api step %.64q of business %d", node, businessID))
	}
	return a, nil
}

// PutAPIStep creates or replaces the business's API step of spec.Node.
func (s *Service) PutAPIStep(ctx context.Context, spec APIStepSpec) (store.APIStep, bool, error) {
	if err := spec.Validate(); err != nil {
		return store.APIStep{}, false, err
	}
	if _, err := s.GetBusiness(ctx, spec.BusinessID); err != nil {
		return store.APIStep{}, false, err
	}
	_, gerr := s.Store.GetAPIStep(ctx, spec.BusinessID, spec.Node)
	if gerr != nil && !errors.Is(gerr, ivr.ErrNotFound) {
		return store.APIStep{}, false, fmt.Errorf("provision: get api step: %w", gerr)
	}
	b, err := EncodeAPIStep(spec.Step)
	if err != nil {
		return store.APIStep{}, false, err
	}
	what := fmt.Sprintf("api step %.64q", spec.Node)
	if err := s.Store.PutAPIStep(ctx, store.APIStep{BusinessID: spec.BusinessID, Node: spec.Node, Spec: b}); err != nil {
		return store.APIStep{}, false, storeErr(err, what)
	}
	a, err := s.Store.GetAPIStep(ctx, spec.BusinessID, spec.Node)
	if err != nil {
		return a, false, storeErr(err, what)
	}
	created := gerr != nil
	s.log().InfoContext(ctx, "api step saved", "business_id", spec.BusinessID, "node", spec.Node, "created", created,
		"method", strings.ToUpper(spec.Step.Method), "headers", slices.Sorted(maps.Keys(spec.Step.Headers)))
	return a, created, nil
}

// DeleteAPIStep removes one API step (404 when unknown).
func (s *Service) DeleteAPIStep(ctx context.Context, businessID int64, node string) error {
	if _, err := s.GetBusiness(ctx, businessID); err != nil {
		return err
	}
	if err := s.Store.DeleteAPIStep(ctx, businessID, node); err != nil {
		return storeErr(err, fmt.Sprintf("api step %.64q of business %d", node, businessID))
	}
	s.log().InfoContext(ctx, "api step deleted", "business_id", businessID, "node", node)
	return nil
}
