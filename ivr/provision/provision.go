// Package provision applies declared businesses and connections — from
// koel's YAML configuration, or the built-in demo — to the store, so an
// operator can run koel with their own bot and KooKoo number without an
// admin API.
//
// Apply is idempotent: a business is created or updated by its id, each
// connection is created or updated by channel and identifier, and the FAQ
// file is imported only while the business has no FAQ (later changes go
// through `koel faq import`, which keeps history of inactive nodes).
package provision

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/store"
)

// Business declares one bot and its connections.
type Business struct {
	// ID is the business id; explicit so that URLs and API calls stay
	// stable across restarts and databases.
	ID   int64  `yaml:"id"`
	Name string `yaml:"name"`
	// Token is the business API token (secret). Prefer TokenEnv, which
	// names an environment variable holding it, so the file holds no secret.
	// When both are empty an existing business keeps its token.
	Token    string `yaml:"token"`
	TokenEnv string `yaml:"token_env"`
	// ClientID is the value of the client-id header of the webhook API.
	ClientID        string `yaml:"client_id"`
	FallbackMessage string `yaml:"fallback_message"`
	// FAQFile is a CSV in the seed's format, imported while the business
	// has no FAQ.
	FAQFile string `yaml:"faq_file"`
	// Disabled marks the business inactive.
	Disabled bool `yaml:"disabled"`
	// Bot chooses the business's bot; empty means the server's default.
	Bot         BotDecl      `yaml:"bot"`
	Connections []Connection `yaml:"connections"`
	// Teams are the business's agent teams (send_chat_to_agent's
	// team_name) with their agents; a caller is transferred to the first
	// active team's number.
	Teams []TeamDecl `yaml:"teams"`
	// APISteps declare, by FAQ node name, a call of the business's own
	// API made with the value the user gives after that node's answer
	// (see faq.APIStep); header secrets come from ${ENV} references.
	APISteps map[string]faq.APIStep `yaml:"api_steps"`
}

// TeamDecl declares a team and its agents:
//
//	teams:
//	  - name: support
//	    number: "+919800000001"
//	    agents: [Asha, Ravi]
type TeamDecl struct {
	Name     string   `yaml:"name"`
	Number   string   `yaml:"number"`
	Disabled bool     `yaml:"disabled"`
	Agents   []string `yaml:"agents"`
}

// TeamStore writes teams and agents (store.Store implements it).
type TeamStore interface {
	PutTeam(ctx context.Context, t *ivr.Team) error
	PutAgent(ctx context.Context, a *ivr.Agent) error
}

// BotDecl declares a business's bot:
//
//	bot:
//	  kind: remote            # faq | remote; empty: the server's bot.kind
//	  remote_url_env: SHOP_RASA_URL
type BotDecl struct {
	Kind ivr.BotKind `yaml:"kind"`
	// RemoteURL is the remote bot's REST webhook. It may carry a token, so
	// prefer RemoteURLEnv, naming an environment variable holding it.
	RemoteURL    string `yaml:"remote_url"`
	RemoteURLEnv string `yaml:"remote_url_env"`
}

// Connection declares one channel connection of a business.
type Connection struct {
	Channel    ivr.Channel `yaml:"channel"`
	Identifier string      `yaml:"identifier"`
	// Disabled marks the connection inactive: KooKoo then gets a hang-up,
	// text channels answer 404 and store nothing.
	Disabled bool `yaml:"disabled"`
	// Settings are the connection's settings and credentials, typed per
	// channel (settings.messenger.app_secret, settings.twilio.auth_token).
	Settings ivr.ConnectionSettings `yaml:"settings"`
	// SecretsEnv names, per credential, the environment variable that holds
	// it, so the file holds no secret:
	//
	//	secrets_env:
	//	  messenger.app_secret: SHOP_FB_APP_SECRET
	//	  messenger.page_access_token: SHOP_FB_PAGE_TOKEN
	//
	// Keys are ivr.SecretNames(); a variable that is unset or empty fails
	// Apply before anything is written.
	SecretsEnv map[string]string `yaml:"secrets_env"`
}

// Store is what Apply needs from the store.
type Store interface {
	GetBusiness(ctx context.Context, id int64) (ivr.Business, error)
	CreateBusiness(ctx context.Context, b *ivr.Business) error
	UpdateBusiness(ctx context.Context, b ivr.Business) error
	CreateConnection(ctx context.Context, c *ivr.Connection) error
	GetConnection(ctx context.Context, channel ivr.Channel, identifier string) (ivr.Connection, error)
	UpdateConnection(ctx context.Context, c ivr.Connection) error
	ListFAQ(ctx context.Context, businessID int64, activeOnly bool) ([]ivr.FAQNode, error)
}

// FAQLoader imports a business's FAQ from a CSV file's bytes.
type FAQLoader func(ctx context.Context, businessID int64, csv []byte) error

// Options configure Apply.
type Options struct {
	// Getenv resolves TokenEnv (nil: no environment).
	Getenv func(string) string
	// ReadFile reads FAQFile (nil: FAQ files are an error).
	ReadFile func(name string) ([]byte, error)
	// LoadFAQ imports an FAQ (nil: FAQ files are not imported).
	LoadFAQ FAQLoader
}

// Result says what Apply did.
type Result struct {
	// Created is true when the business did not exist.
	Created bool
	// Token is the token set by this Apply (from Token or TokenEnv); empty
	// when an existing token was kept.
	Token string
	// FAQImported is true when the FAQ file was imported.
	FAQImported bool
}

// ErrInvalid reports a declaration that cannot be applied.
var ErrInvalid = errors.New("provision: invalid declaration")

var identifierRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// channels koel has adapters or voice paths for.
var knownChannels = map[ivr.Channel]bool{
	ivr.ChannelKooKoo: true, ivr.ChannelWebhook: true, ivr.ChannelSim: true,
	ivr.ChannelFacebook: true, ivr.ChannelWhatsApp: true, ivr.ChannelJio: true, ivr.ChannelWebchat: true,
	ivr.ChannelMetaWhatsApp: true, ivr.ChannelInfobip: true, ivr.ChannelGupshup: true, ivr.ChannelKarix: true,
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// Validate checks a declaration without touching the store.
func (b Business) Validate() error {
	var errs []error
	if b.ID <= 0 {
		errs = append(errs, fmt.Errorf("business id must be a positive number, got %d", b.ID))
	}
	if b.Name == "" {
		errs = append(errs, fmt.Errorf("business %d: name is empty", b.ID))
	}
	if b.ClientID == "" {
		errs = append(errs, fmt.Errorf("business %d: client_id is empty", b.ID))
	}
	if b.Token != "" && b.TokenEnv != "" {
		errs = append(errs, fmt.Errorf("business %d: give token or token_env, not both", b.ID))
	}
	switch bd := b.Bot; bd.Kind {
	case ivr.BotDefault, ivr.BotFAQ:
		if bd.RemoteURL != "" || bd.RemoteURLEnv != "" {
			errs = append(errs, fmt.Errorf("business %d: bot.remote_url needs bot.kind remote", b.ID))
		}
	case ivr.BotRemote:
		switch {
		case bd.RemoteURL != "" && bd.RemoteURLEnv != "":
			errs = append(errs, fmt.Errorf("business %d: give bot.remote_url or bot.remote_url_env, not both", b.ID))
		case bd.RemoteURL == "" && bd.RemoteURLEnv == "":
			errs = append(errs, fmt.Errorf("business %d: bot.kind remote needs bot.remote_url or bot.remote_url_env", b.ID))
		case bd.RemoteURLEnv != "" && !envNameRE.MatchString(bd.RemoteURLEnv):
			errs = append(errs, fmt.Errorf("business %d: bot.remote_url_env %q is not an environment variable name", b.ID, bd.RemoteURLEnv))
		case bd.RemoteURL != "":
			if err := checkBotURL(bd.RemoteURL); err != nil {
				errs = append(errs, fmt.Errorf("business %d: bot.remote_url: %w", b.ID, err))
			}
		}
	default:
		errs = append(errs, fmt.Errorf("business %d: bot.kind %q: want faq or remote", b.ID, bd.Kind))
	}
	seen := map[string]bool{}
	for i, c := range b.Connections {
		switch {
		case !knownChannels[c.Channel]:
			errs = append(errs, fmt.Errorf("business %d connection %d: unknown channel %q", b.ID, i+1, c.Channel))
		case !identifierRE.MatchString(c.Identifier):
			errs = append(errs, fmt.Errorf("business %d connection %d: identifier %q must be 1-64 letters, digits, '.', '_' or '-'", b.ID, i+1, c.Identifier))
		case seen[string(c.Channel)+"/"+c.Identifier]:
			errs = append(errs, fmt.Errorf("business %d: connection %s/%s declared twice", b.ID, c.Channel, c.Identifier))
		}
		seen[string(c.Channel)+"/"+c.Identifier] = true
		if s := c.Settings; s.SilencePeriod < 0 || s.MaxRecordTime < 0 || s.MaxFailures < 0 {
			errs = append(errs, fmt.Errorf("business %d connection %s/%s: negative voice settings", b.ID, c.Channel, c.Identifier))
		}
		for name, env := range c.SecretsEnv {
			var probe ivr.ConnectionSettings
			if err := probe.SetSecret(name, "x"); err != nil {
				errs = append(errs, fmt.Errorf("business %d connection %s/%s: secrets_env: %q is not a credential (one of %v)", b.ID, c.Channel, c.Identifier, name, ivr.SecretNames()))
			}
			if !envNameRE.MatchString(env) {
				errs = append(errs, fmt.Errorf("business %d connection %s/%s: secrets_env %s: %q is not an environment variable name", b.ID, c.Channel, c.Identifier, name, env))
			}
		}
	}
	for node, st := range b.APISteps {
		if err := st.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("business %d api_steps %s: %w", b.ID, node, err))
		}
	}
	teams, agents := map[string]bool{}, map[string]bool{}
	for i, t := range b.Teams {
		if strings.TrimSpace(t.Name) == "" || teams[t.Name] {
			errs = append(errs, fmt.Errorf("business %d team %d: name %q is empty or declared twice", b.ID, i+1, t.Name))
		}
		teams[t.Name] = true
		for _, a := range t.Agents {
			if strings.TrimSpace(a) == "" || agents[a] {
				errs = append(errs, fmt.Errorf("business %d team %q: agent %q is empty or declared twice", b.ID, t.Name, a))
			}
			agents[a] = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// Apply makes the store match the declaration.
func Apply(ctx context.Context, st Store, b Business, opts Options) (Result, error) {
	var res Result
	if err := b.Validate(); err != nil {
		return res, err
	}
	token := b.Token
	if b.TokenEnv != "" && opts.Getenv != nil {
		token = opts.Getenv(b.TokenEnv)
		if token == "" {
			return res, fmt.Errorf("%w: business %d: environment variable %s is empty", ErrInvalid, b.ID, b.TokenEnv)
		}
	}

	botURL := b.Bot.RemoteURL
	if b.Bot.RemoteURLEnv != "" {
		if opts.Getenv != nil {
			botURL = opts.Getenv(b.Bot.RemoteURLEnv)
		}
		if botURL == "" {
			return res, fmt.Errorf("%w: business %d: environment variable %s is empty", ErrInvalid, b.ID, b.Bot.RemoteURLEnv)
		}
		if err := checkBotURL(botURL); err != nil {
			return res, fmt.Errorf("%w: business %d: %s: %w", ErrInvalid, b.ID, b.Bot.RemoteURLEnv, err)
		}
	}

	// Resolve credentials from the environment before writing anything.
	conns := make([]Connection, len(b.Connections))
	for i, c := range b.Connections {
		for name, env := range c.SecretsEnv {
			var v string
			if opts.Getenv != nil {
				v = opts.Getenv(env)
			}
			if v == "" {
				return res, fmt.Errorf("%w: connection %s/%s: environment variable %s (%s) is empty", ErrInvalid, c.Channel, c.Identifier, env, name)
			}
			if err := c.Settings.SetSecret(name, ivr.Secret(v)); err != nil {
				return res, fmt.Errorf("%w: connection %s/%s: %w", ErrInvalid, c.Channel, c.Identifier, err)
			}
		}
		conns[i] = c
	}
	b.Connections = conns

	// Refuse before writing anything: a connection may not move between
	// businesses.
	for _, c := range b.Connections {
		existing, err := st.GetConnection(ctx, c.Channel, c.Identifier)
		if err != nil && !errors.Is(err, ivr.ErrNotFound) {
			return res, fmt.Errorf("provision: get connection %s/%s: %w", c.Channel, c.Identifier, err)
		}
		if err == nil && existing.BusinessID != b.ID {
			return res, fmt.Errorf("%w: connection %s/%s belongs to business %d, not %d", ErrInvalid, c.Channel, c.Identifier, existing.BusinessID, b.ID)
		}
	}

	// Every row must pass the store's checks before the first is written:
	// the writes below are not one transaction.
	probe := ivr.Business{ID: b.ID, Name: b.Name, TokenHash: ivr.HashToken(token), ClientID: b.ClientID,
		FallbackMessage: b.FallbackMessage, Bot: b.Bot.Kind, BotURL: ivr.Secret(botURL)}
	if err := store.ValidateBusiness(probe); err != nil {
		return res, fmt.Errorf("%w: business %d: %w", ErrInvalid, b.ID, err)
	}
	for _, c := range b.Connections {
		if err := store.ValidateConnection(ivr.Connection{BusinessID: b.ID, Channel: c.Channel, Identifier: c.Identifier, Settings: c.Settings}); err != nil {
			return res, fmt.Errorf("%w: connection %s/%s: %w", ErrInvalid, c.Channel, c.Identifier, err)
		}
	}
	// The FAQ file is read (while the business has no FAQ) before writing
	// too, so a missing file refuses the declaration rather than leaving
	// a business without its FAQ.
	var faqCSV []byte
	if b.FAQFile != "" && opts.LoadFAQ != nil {
		nodes, err := st.ListFAQ(ctx, b.ID, false)
		if err != nil {
			return res, fmt.Errorf("provision: list faq of business %d: %w", b.ID, err)
		}
		if len(nodes) == 0 {
			if opts.ReadFile == nil {
				return res, fmt.Errorf("%w: business %d: cannot read faq_file", ErrInvalid, b.ID)
			}
			if faqCSV, err = opts.ReadFile(b.FAQFile); err != nil {
				return res, fmt.Errorf("provision: business %d faq_file: %w", b.ID, err)
			}
		}
	}

	cur, err := st.GetBusiness(ctx, b.ID)
	switch {
	case errors.Is(err, ivr.ErrNotFound):
		if token == "" {
			return res, fmt.Errorf("%w: business %d is new and needs token or token_env", ErrInvalid, b.ID)
		}
		nb := ivr.Business{ID: b.ID, Name: b.Name, TokenHash: ivr.HashToken(token), ClientID: b.ClientID,
			FallbackMessage: b.FallbackMessage, Active: !b.Disabled, Bot: b.Bot.Kind, BotURL: ivr.Secret(botURL)}
		if err := st.CreateBusiness(ctx, &nb); err != nil {
			return res, fmt.Errorf("provision: create business %d: %w", b.ID, err)
		}
		res.Created, res.Token = true, token
	case err != nil:
		return res, fmt.Errorf("provision: get business %d: %w", b.ID, err)
	default:
		cur.Name, cur.ClientID, cur.Active = b.Name, b.ClientID, !b.Disabled
		cur.Bot, cur.BotURL = b.Bot.Kind, ivr.Secret(botURL)
		if b.FallbackMessage != "" {
			cur.FallbackMessage = b.FallbackMessage
		}
		if token != "" && !ivr.TokenMatches(cur.TokenHash, token) {
			cur.TokenHash, res.Token = ivr.HashToken(token), token
		}
		if err := st.UpdateBusiness(ctx, cur); err != nil {
			return res, fmt.Errorf("provision: update business %d: %w", b.ID, err)
		}
	}

	for _, c := range b.Connections {
		existing, err := st.GetConnection(ctx, c.Channel, c.Identifier)
		switch {
		case errors.Is(err, ivr.ErrNotFound):
			nc := ivr.Connection{BusinessID: b.ID, Channel: c.Channel, Identifier: c.Identifier, Active: !c.Disabled, Settings: c.Settings}
			if err := st.CreateConnection(ctx, &nc); err != nil {
				return res, fmt.Errorf("provision: create connection %s/%s: %w", c.Channel, c.Identifier, err)
			}
		case err != nil:
			return res, fmt.Errorf("provision: get connection %s/%s: %w", c.Channel, c.Identifier, err)
		case existing.BusinessID != b.ID:
			return res, fmt.Errorf("%w: connection %s/%s belongs to business %d, not %d", ErrInvalid, c.Channel, c.Identifier, existing.BusinessID, b.ID)
		default:
			existing.Active, existing.Settings = !c.Disabled, c.Settings
			if err := st.UpdateConnection(ctx, existing); err != nil {
				return res, fmt.Errorf("provision: update connection %s/%s: %w", c.Channel, c.Identifier, err)
			}
		}
	}

	if len(b.Teams) > 0 {
		ts, ok := st.(TeamStore)
		if !ok {
			return res, fmt.Errorf("provision: business %d declares teams but the store keeps none", b.ID)
		}
		for _, t := range b.Teams {
			team := ivr.Team{BusinessID: b.ID, Name: t.Name, Number: t.Number, Active: !t.Disabled}
			if err := ts.PutTeam(ctx, &team); err != nil {
				return res, fmt.Errorf("provision: team %q: %w", t.Name, err)
			}
			for _, name := range t.Agents {
				if err := ts.PutAgent(ctx, &ivr.Agent{BusinessID: b.ID, TeamID: team.ID, Name: name, Active: true}); err != nil {
					return res, fmt.Errorf("provision: agent %q: %w", name, err)
				}
			}
		}
	}

	if faqCSV == nil {
		return res, nil
	}
	if err := opts.LoadFAQ(ctx, b.ID, faqCSV); err != nil {
		return res, fmt.Errorf("provision: import faq of business %d: %w", b.ID, err)
	}
	res.FAQImported = true
	return res, nil
}

// checkBotURL checks a remote bot URL is an absolute http(s) URL, without
// quoting it (it may hold a token).
func checkBotURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("not an absolute http(s) URL")
	}
	return nil
}
