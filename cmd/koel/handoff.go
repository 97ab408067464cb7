package main

import (
	"log/slog"
	"time"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/outbox"
)

// agentDelivery builds the outbox item that carries an agent's message to
// the user over their own channel's connection: the webhook URL for the
// webhook channel, the platform's send API (through the channel's
// registered sender) for the others. Voice and the synchronous bot API
// cannot carry it.
func agentDelivery(maxAttempts int) ivr.AgentDelivery {
	return func(conn ivr.Connection, user ivr.User, msg *ivr.Message, now time.Time) ([]*ivr.OutboxItem, error) {
		r := outbox.Reply{Connection: conn, BusinessID: conn.BusinessID, Recipient: user.ExternalID,
			Message: msg, MaxAttempts: maxAttempts, Now: now}
		switch conn.Channel {
		case ivr.ChannelKooKoo, ivr.ChannelSim, ivr.ChannelAPI:
			return nil, ivr.ErrNoRoute
		case ivr.ChannelWebhook:
			if conn.Settings.WebhookURL == "" {
				return nil, ivr.ErrNoRoute
			}
			r.URL = conn.Settings.WebhookURL
		}
		it, err := outbox.NewReplyItem(r)
		if err != nil {
			return nil, err
		}
		return []*ivr.OutboxItem{it}, nil
	}
}

// notifyFunc adapts a func to ivr.Notifier.
type notifyFunc func()

func (f notifyFunc) Notify() { f() }

// withAPISteps wraps the engine's bot with the API steps the declared
// businesses give their FAQ nodes; with none it returns b unchanged. The
// steps' client passes the outbox's dial-time address checks (loopback only
// with --dev, private networks with outbox.allow_private_destinations).
func withAPISteps(b bot.Bot, st faq.StepMessages, cfg Config, getenv func(string) string, log *slog.Logger) bot.Bot {
	steps := map[int64]map[string]faq.APIStep{}
	for _, biz := range cfg.Businesses {
		if len(biz.APISteps) > 0 {
			steps[biz.ID] = biz.APISteps
		}
	}
	if len(steps) == 0 {
		return b
	}
	client := faq.NewAPIClient(outbox.DialPolicy{AllowLoopback: cfg.Dev, AllowPrivate: cfg.Outbox.AllowPrivateDestinations}.Dialer())
	return &faq.APISteps{Inner: b, Messages: st, Caller: &faq.APICaller{Client: client, Getenv: getenv, Logger: log},
		Steps: func(id int64) map[string]faq.APIStep { return steps[id] }}
}
