package main

import (
	"time"

	"github.com/koelvoice/koel/ivr"
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
