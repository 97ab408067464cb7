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
	"github.com/koelvoice/koel/ivr/provision"
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

// Store is what Bootstrap needs from the store: what provisioning writes
// with.
type Store = provision.Store

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

// Name and FallbackMessage are the demo business's.
const (
	Name            = "Bluebird Electronics (demo)"
	FallbackMessage = "Sorry, I did not understand that. You can ask about orders, deliveries, returns, payments or store hours."
)

// faqFile is the name Declaration gives the demo FAQ; Bootstrap's
// ReadFile answers it with [FAQ].
const faqFile = "demo-faq.csv"

// Declaration is the demo business as a provisioning declaration, what
// Bootstrap applies: the business, a connection named "demo" on every
// channel of [Channels] with [Settings], and the demo FAQ. token is the
// business token ("" keeps the stored one); hook holds the webhook
// connection's URL and signing secret.
func Declaration(token, webhookURL, webhookSecret string) provision.Business {
	b := provision.Business{ID: BusinessID, Name: Name, Token: token, ClientID: ClientID,
		FallbackMessage: FallbackMessage, FAQFile: faqFile}
	for _, ch := range Channels {
		s := Settings(ch)
		if ch == ivr.ChannelWebhook {
			s.WebhookURL, s.SecretKey = webhookURL, ivr.Secret(webhookSecret)
		}
		b.Connections = append(b.Connections, provision.Connection{Channel: ch, Identifier: Identifier, Settings: s})
	}
	return b
}

// Bootstrap makes sure the demo business, its connections and its FAQ
// exist, through provision.Apply: the path YAML businesses and the admin
// API take. It is idempotent: an existing demo business keeps its data
// (name, messages, switches, connection settings and credentials), but a
// token given in Options replaces the stored one and a webhook URL given
// replaces the webhook connection's.
func Bootstrap(ctx context.Context, st Store, opts Options) (Result, error) {
	var res Result
	token := opts.Token
	cur, err := st.GetBusiness(ctx, BusinessID)
	exists := err == nil
	switch {
	case errors.Is(err, ivr.ErrNotFound):
		if token == "" {
			if token, err = NewToken(); err != nil {
				return res, err
			}
		}
	case err != nil:
		return res, fmt.Errorf("demo: get business: %w", err)
	}
	secret := opts.WebhookSecret
	if secret == "" {
		if secret, err = NewToken(); err != nil {
			return res, err
		}
	}
	decl := Declaration(token, opts.WebhookURL, secret)
	if exists {
		decl.Name, decl.ClientID, decl.FallbackMessage, decl.Disabled = cur.Name, cur.ClientID, cur.FallbackMessage, !cur.Active
		decl.Bot = provision.BotDecl{Kind: cur.Bot, RemoteURL: cur.BotURL.Reveal()}
	}
	// Connections that exist keep what they have.
	for i, c := range decl.Connections {
		got, err := st.GetConnection(ctx, c.Channel, c.Identifier)
		switch {
		case errors.Is(err, ivr.ErrNotFound):
			continue
		case err != nil:
			return res, fmt.Errorf("demo: get %s connection: %w", c.Channel, err)
		}
		keep := got.Settings
		if c.Channel == ivr.ChannelWebhook && opts.WebhookURL != "" {
			keep.WebhookURL = opts.WebhookURL
		}
		decl.Connections[i].Settings, decl.Connections[i].Disabled = keep, !got.Active
	}
	r, err := provision.Apply(ctx, st, decl, provision.Options{
		ReadFile: func(name string) ([]byte, error) {
			if name != faqFile {
				return nil, fmt.Errorf("demo: no file %q", name)
			}
			return FAQ(), nil
		},
		LoadFAQ: provision.FAQLoader(opts.LoadFAQ),
	})
	if err != nil {
		return res, fmt.Errorf("demo: %w", err)
	}
	res.Created = r.Created
	if r.Created || opts.Token != "" {
		res.Token = token
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
