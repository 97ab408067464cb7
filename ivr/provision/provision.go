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
	"log/slog"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot/faq"
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
	// Logger records the writes (nil: discarded).
	Logger *slog.Logger
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

// Validate checks a declaration without touching the store or the
// environment: every record it declares is checked as the service would
// check it, and the declaration's own rules (explicit ids, no duplicates,
// environment variable names).
func (b Business) Validate() error {
	var p []string
	add := func(prefix string, err error) {
		var pe *Error
		if errors.As(err, &pe) {
			for _, m := range strings.Split(pe.Message, "; ") {
				p = append(p, prefix+m)
			}
		} else if err != nil {
			p = append(p, prefix+err.Error())
		}
	}
	biz := fmt.Sprintf("business %d: ", b.ID)
	if b.ID <= 0 {
		p = append(p, fmt.Sprintf("business id must be a positive number, got %d", b.ID))
	}
	if b.Token != "" && b.TokenEnv != "" {
		p = append(p, biz+"give token or token_env, not both")
	}
	if b.TokenEnv != "" && !envNameRE.MatchString(b.TokenEnv) {
		p = append(p, fmt.Sprintf("%stoken_env %.64q is not an environment variable name", biz, b.TokenEnv))
	}
	spec := b.spec(b.Token, b.Bot.RemoteURL)
	switch bd := b.Bot; {
	case bd.RemoteURL != "" && bd.RemoteURLEnv != "":
		p = append(p, biz+"give bot.remote_url or bot.remote_url_env, not both")
	case bd.RemoteURLEnv != "":
		if !envNameRE.MatchString(bd.RemoteURLEnv) {
			p = append(p, fmt.Sprintf("%sbot.remote_url_env %q is not an environment variable name", biz, bd.RemoteURLEnv))
		}
		if bd.Kind != ivr.BotRemote {
			p = append(p, biz+"bot.remote_url_env needs bot kind remote")
		}
		spec.BotURL = "" // checked once resolved
		if bd.Kind == ivr.BotRemote {
			spec.BotURL = "https://resolved.invalid/"
		}
	}
	spec.ID = max(spec.ID, 1)
	add(biz, spec.Validate())

	seen := map[string]bool{}
	for i, c := range b.Connections {
		key := string(c.Channel) + "/" + c.Identifier
		prefix := fmt.Sprintf("business %d connection %d (%s): ", b.ID, i+1, key)
		if seen[key] {
			p = append(p, fmt.Sprintf("business %d: connection %s declared twice", b.ID, key))
		}
		seen[key] = true
		probe := c.Settings
		for name, env := range c.SecretsEnv {
			if err := probe.SetSecret(name, "x"); err != nil {
				p = append(p, fmt.Sprintf("%ssecrets_env: %q is not a credential (one of %v)", prefix, name, ivr.SecretNames()))
			}
			if !envNameRE.MatchString(env) {
				p = append(p, fmt.Sprintf("%ssecrets_env %s: %q is not an environment variable name", prefix, name, env))
			}
		}
		add(prefix, c.spec(b.ID, probe).Validate())
	}
	teams, agents := map[string]bool{}, map[string]bool{}
	for i, t := range b.Teams {
		prefix := fmt.Sprintf("business %d team %d: ", b.ID, i+1)
		if teams[t.Name] {
			p = append(p, fmt.Sprintf("%sname %q declared twice", prefix, t.Name))
		}
		teams[t.Name] = true
		add(prefix, TeamSpec{BusinessID: b.ID, Name: t.Name, Number: t.Number, Active: !t.Disabled}.Validate())
		for _, a := range t.Agents {
			if agents[a] {
				p = append(p, fmt.Sprintf("%sagent %q declared twice", prefix, a))
			}
			agents[a] = true
			add(prefix, AgentSpec{BusinessID: b.ID, TeamID: 1, Name: a, Active: true}.Validate())
		}
	}
	for _, node := range slices.Sorted(maps.Keys(b.APISteps)) {
		add(fmt.Sprintf("business %d api_steps %s: ", b.ID, node), APIStepSpec{BusinessID: b.ID, Node: node, Step: b.APISteps[node]}.Validate())
	}
	if len(p) == 0 {
		return nil
	}
	return &Error{Kind: ErrInvalid, Message: "provision: invalid declaration: " + strings.Join(p, "; ")}
}

// spec is the business record the declaration writes, with its token and
// bot URL resolved.
func (b Business) spec(token, botURL string) BusinessSpec {
	return BusinessSpec{ID: b.ID, Name: b.Name, Token: ivr.Secret(token), ClientID: b.ClientID,
		FallbackMessage: b.FallbackMessage, Active: !b.Disabled, Bot: b.Bot.Kind, BotURL: ivr.Secret(botURL)}
}

// spec is the connection record the declaration writes.
func (c Connection) spec(businessID int64, settings ivr.ConnectionSettings) ConnectionSpec {
	return ConnectionSpec{BusinessID: businessID, Channel: c.Channel, Identifier: c.Identifier, Active: !c.Disabled, Settings: settings}
}

// Apply makes the store match the declaration, through [Service]: the
// same writes the admin API makes.
func Apply(ctx context.Context, st Store, b Business, opts Options) (Result, error) {
	return (&Service{Store: st, Logger: opts.Logger}).Apply(ctx, b, opts)
}

// Apply makes the store match the declaration: the business, then each
// connection, team, agent and API step, then the FAQ file while the
// business has none. Everything is checked — environment variables
// resolved, connections' owners looked up, the FAQ file read — before the
// first write.
func (s *Service) Apply(ctx context.Context, b Business, opts Options) (Result, error) {
	var res Result
	if err := b.Validate(); err != nil {
		return res, err
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	token := b.Token
	if b.TokenEnv != "" {
		if token = getenv(b.TokenEnv); token == "" {
			return res, invalidf("provision: business %d: environment variable %s is empty", b.ID, b.TokenEnv)
		}
	}
	botURL := b.Bot.RemoteURL
	if b.Bot.RemoteURLEnv != "" {
		if botURL = getenv(b.Bot.RemoteURLEnv); botURL == "" {
			return res, invalidf("provision: business %d: environment variable %s is empty", b.ID, b.Bot.RemoteURLEnv)
		}
	}
	bspec := b.spec(token, botURL)
	if err := bspec.Validate(); err != nil {
		return res, invalidf("provision: business %d: %s", b.ID, err.Error())
	}

	// Resolve credentials from the environment before writing anything.
	cspecs := make([]ConnectionSpec, len(b.Connections))
	for i, c := range b.Connections {
		settings := c.Settings
		for _, name := range slices.Sorted(maps.Keys(c.SecretsEnv)) {
			env := c.SecretsEnv[name]
			v := getenv(env)
			if v == "" {
				return res, invalidf("provision: connection %s/%s: environment variable %s (%s) is empty", c.Channel, c.Identifier, env, name)
			}
			if err := settings.SetSecret(name, ivr.Secret(v)); err != nil {
				return res, invalidf("provision: connection %s/%s: %s", c.Channel, c.Identifier, err.Error())
			}
		}
		cspecs[i] = c.spec(b.ID, settings)
		// A connection may not move between businesses.
		existing, err := s.Store.GetConnection(ctx, c.Channel, c.Identifier)
		if err != nil && !errors.Is(err, ivr.ErrNotFound) {
			return res, fmt.Errorf("provision: get connection %s/%s: %w", c.Channel, c.Identifier, err)
		}
		var cur *ivr.ConnectionSettings
		if err == nil {
			cur = &existing.Settings
		}
		if verr := cspecs[i].validate(cur); verr != nil {
			return res, invalidf("provision: connection %s/%s: %s", c.Channel, c.Identifier, verr.Error())
		}
		if err == nil && existing.BusinessID != b.ID {
			return res, conflictf("provision: connection %s/%s belongs to business %d, not %d", c.Channel, c.Identifier, existing.BusinessID, b.ID)
		}
	}

	cur, err := s.Store.GetBusiness(ctx, b.ID)
	switch {
	case errors.Is(err, ivr.ErrNotFound):
		if token == "" {
			return res, invalidf("provision: business %d is new and needs token or token_env", b.ID)
		}
		res.Created = true
	case err != nil:
		return res, fmt.Errorf("provision: get business %d: %w", b.ID, err)
	default:
		if token != "" && ivr.TokenMatches(cur.TokenHash, token) {
			bspec.Token = "" // unchanged
		}
	}

	// The FAQ file is read (while the business has no FAQ) before writing
	// too, so a missing file refuses the declaration rather than leaving a
	// business without its FAQ.
	var faqCSV []byte
	if b.FAQFile != "" && opts.LoadFAQ != nil {
		nodes, err := s.Store.ListFAQ(ctx, b.ID, false)
		if err != nil {
			return res, fmt.Errorf("provision: list faq of business %d: %w", b.ID, err)
		}
		if len(nodes) == 0 {
			if opts.ReadFile == nil {
				return res, invalidf("provision: business %d: cannot read faq_file", b.ID)
			}
			if faqCSV, err = opts.ReadFile(b.FAQFile); err != nil {
				return res, fmt.Errorf("provision: business %d faq_file: %w", b.ID, err)
			}
		}
	}

	if _, _, err := s.PutBusiness(ctx, bspec); err != nil {
		return res, err
	}
	if bspec.Token != "" {
		res.Token = token
	}
	for _, c := range cspecs {
		if _, _, err := s.PutConnection(ctx, c); err != nil {
			return res, err
		}
	}
	for _, t := range b.Teams {
		team, err := s.PutTeam(ctx, TeamSpec{BusinessID: b.ID, Name: t.Name, Number: t.Number, Active: !t.Disabled})
		if err != nil {
			return res, err
		}
		for _, name := range t.Agents {
			if _, err := s.PutAgent(ctx, AgentSpec{BusinessID: b.ID, TeamID: team.ID, Name: name, Active: true}); err != nil {
				return res, err
			}
		}
	}
	for _, node := range slices.Sorted(maps.Keys(b.APISteps)) {
		if _, _, err := s.PutAPIStep(ctx, APIStepSpec{BusinessID: b.ID, Node: node, Step: b.APISteps[node]}); err != nil {
			return res, err
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
