// Package demo creates koel's demo business: the Bluebird Electronics FAQ
// bot, business id 1, with a connection named "demo" on every channel, so a
// fresh koel answers at /kookoo/demo, the webhook API and the softphone with
// no configuration.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/demo/demofaq"
)

// FAQ returns a copy of the demo bot's FAQ in the seed's CSV format
// (node_name,user_says,bot_says); see [demofaq.CSV].
func FAQ() []byte { return demofaq.CSV() }

// BusinessID is the demo business's id.
const BusinessID int64 = 1

// Identifier is the identifier of every demo connection.
const Identifier = "demo"

// ClientID is the demo business's client-id header value.
const ClientID = "demo"

// AgentNumber is the demo agent's number, dialled on transfers.
const AgentNumber = "08040000000"

// Channels are the channels that get a demo connection.
var Channels = []ivr.Channel{ivr.ChannelKooKoo, ivr.ChannelWebhook, ivr.ChannelSim}

// Settings returns the demo connection settings for a channel.
func Settings(ch ivr.Channel) ivr.ConnectionSettings {
	s := ivr.ConnectionSettings{
		BreakMessage: "Sorry, something went wrong on our side. Please say that again.",
	}
	switch ch {
	case ivr.ChannelKooKoo, ivr.ChannelSim:
		s.WelcomeMessage = "Welcome to Bluebird Electronics. How can I help you? You can also press 0 to talk to an agent."
		s.GoodbyeMessage = "Thank you for calling Bluebird Electronics. Goodbye."
		s.RepromptText = "Sorry, I did not hear you. Please tell me how I can help."
		s.SilencePeriod = 3
		s.MaxRecordTime = 10
		s.MaxFailures = 3
		s.AgentNumber = AgentNumber
	case ivr.ChannelWebhook:
		s.AutoRegister = true
	}
	return s
}

// Store is what Bootstrap needs from the store.
type Store interface {
	GetBusiness(ctx context.Context, id int64) (ivr.Business, error)
	CreateBusiness(ctx context.Context, b *ivr.Business) error
	UpdateBusiness(ctx context.Context, b ivr.Business) error
	CreateConnection(ctx context.Context, c *ivr.Connection) error
	GetConnection(ctx context.Context, channel ivr.Channel, identifier string) (ivr.Connection, error)
	UpdateConnection(ctx context.Context, c ivr.Connection) error
	ListFAQ(ctx context.Context, businessID int64, activeOnly bool) ([]ivr.FAQNode, error)
}

// FAQLoader imports a CSV FAQ for a business (faq.Import adapted).
type FAQLoader func(ctx context.Context, businessID int64, csv []byte) error

// Options configure Bootstrap.
type Options struct {
	// Token is the demo API token; empty generates one.
	Token string
	// WebhookURL is where the demo webhook connection delivers replies
	// ("" = none configured yet).
	WebhookURL string
	// WebhookSecret signs deliveries ("" = generated).
	WebhookSecret string
	// LoadFAQ imports the demo FAQ when the business has none.
	LoadFAQ FAQLoader
}

// Result says what Bootstrap did.
type Result struct {
	// Token is the API token in force when Bootstrap set one (a new
	// business, or Options.Token given); empty when an existing token was
	// kept, since only its hash is stored.
	Token   string
	Created bool
}

// Bootstrap makes sure the demo business, its connections and its FAQ exist.
// It is idempotent: an existing demo business keeps its data, but a token
// given in Options replaces the stored one.
func Bootstrap(ctx context.Context, st Store, opts Options) (Result, error) {
	var res Result
	b, err := st.GetBusiness(ctx, BusinessID)
	switch {
	case errors.Is(err, ivr.ErrNotFound):
		token := opts.Token
		if token == "" {
			if token, err = NewToken(); err != nil {
				return res, err
			}
		}
		b = ivr.Business{
			ID:              BusinessID,
			Name:            "Bluebird Electronics (demo)",
			TokenHash:       ivr.HashToken(token),
			ClientID:        ClientID,
			FallbackMessage: "Sorry, I did not understand that. You can ask about orders, deliveries, returns, payments or store hours.",
			Active:          true,
		}
		if err := st.CreateBusiness(ctx, &b); err != nil {
			return res, fmt.Errorf("demo: create business: %w", err)
		}
		res.Token, res.Created = token, true
	case err != nil:
		return res, fmt.Errorf("demo: get business: %w", err)
	case opts.Token != "":
		b.TokenHash = ivr.HashToken(opts.Token)
		if err := st.UpdateBusiness(ctx, b); err != nil {
			return res, fmt.Errorf("demo: update token: %w", err)
		}
		res.Token = opts.Token
	}

	for _, ch := range Channels {
		c, err := st.GetConnection(ctx, ch, Identifier)
		if err == nil {
			if ch == ivr.ChannelWebhook && opts.WebhookURL != "" && c.Settings.WebhookURL != opts.WebhookURL {
				c.Settings.WebhookURL = opts.WebhookURL
				if err := st.UpdateConnection(ctx, c); err != nil {
					return res, fmt.Errorf("demo: update webhook url: %w", err)
				}
			}
			continue
		}
		if !errors.Is(err, ivr.ErrNotFound) {
			return res, fmt.Errorf("demo: get %s connection: %w", ch, err)
		}
		s := Settings(ch)
		if ch == ivr.ChannelWebhook {
			s.WebhookURL = opts.WebhookURL
			secret := opts.WebhookSecret
			if secret == "" {
				if secret, err = NewToken(); err != nil {
					return res, err
				}
			}
			s.SecretKey = ivr.Secret(secret)
		}
		c = ivr.Connection{BusinessID: BusinessID, Channel: ch, Identifier: Identifier, Active: true, Settings: s}
		if err := st.CreateConnection(ctx, &c); err != nil {
			return res, fmt.Errorf("demo: create %s connection: %w", ch, err)
		}
	}

	nodes, err := st.ListFAQ(ctx, BusinessID, false)
	if err != nil {
		return res, fmt.Errorf("demo: list faq: %w", err)
	}
	if len(nodes) == 0 && opts.LoadFAQ != nil {
		if err := opts.LoadFAQ(ctx, BusinessID, FAQ()); err != nil {
			return res, fmt.Errorf("demo: load faq: %w", err)
		}
	}
	return res, nil
}

// NewToken returns a random 32-byte token, hex encoded.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("demo: random token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
