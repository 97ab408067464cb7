package main

import (
	"fmt"
	"log/slog"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/bot/remote"
	"github.com/koelvoice/koel/ivr/bot/router"
	"github.com/koelvoice/koel/ivr/store"
)

// newBot builds the server's bot: a router that answers each business with
// the kind of bot it chose (Business.Bot), and businesses that chose none
// with cfg.Bot.Kind.
func newBot(st store.Store, cfg BotConfig, logger *slog.Logger) (bot.Bot, error) {
	log := logger.With("component", "bot")
	newRemote := func(url string) (bot.Bot, error) {
		// Each attempt gets half the reply deadline, so the remote bot's
		// one retry fits before the engine answers with the break message.
		return remote.New(remote.Config{URL: url, Timeout: cfg.Timeout / 2, Logger: log})
	}
	rc := router.Config{
		Businesses: st,
		FAQ:        faq.New(st, faq.Options{Threshold: cfg.Threshold, Logger: log}),
		Default:    ivr.BotKind(cfg.Kind),
		NewRemote:  newRemote,
	}
	if cfg.RemoteURL != "" {
		b, err := newRemote(cfg.RemoteURL)
		if err != nil {
			return nil, fmt.Errorf("remote bot: %w", err)
		}
		rc.DefaultRemote = b
	}
	return router.New(rc)
}
