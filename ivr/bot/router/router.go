// Package router is the bot of a server whose businesses have bots of
// different kinds: it answers each request with the bot its business
// chose — koel's FAQ matcher, or a remote (Rasa REST) bot at the business's
// own URL — and falls back to the server's default kind for businesses
// that chose none.
package router

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot"
)

// Businesses finds a business (its bot kind and URL).
type Businesses interface {
	GetBusiness(ctx context.Context, id int64) (ivr.Business, error)
}

// RemoteFactory builds a remote bot for a webhook URL (remote.New adapted).
type RemoteFactory func(url string) (bot.Bot, error)

// Config configures a [Router].
type Config struct {
	Businesses Businesses
	// FAQ answers businesses of kind faq.
	FAQ bot.Bot
	// Default is the kind of businesses that chose none (faq when empty).
	Default ivr.BotKind
	// DefaultRemote answers remote businesses without a URL of their own,
	// and every business when Default is remote; nil when the server has no
	// remote bot.
	DefaultRemote bot.Bot
	// NewRemote builds the bot of a business's own remote URL.
	NewRemote RemoteFactory
	// MaxRemotes caps the remote bots kept (one per distinct URL); 0 means
	// DefaultMaxRemotes.
	MaxRemotes int
}

// DefaultMaxRemotes caps the distinct remote bot URLs a router keeps.
const DefaultMaxRemotes = 1024

// ErrNoBot means the business's kind of bot is not available on this
// server (a remote business without a URL on a server with no default
// remote bot). The engine answers with the break message.
var ErrNoBot = errors.New("router: no bot for the business")

// Router is a [bot.Bot] that dispatches per business. It is safe for
// concurrent use.
type Router struct {
	cfg Config

	mu      sync.Mutex
	remotes map[string]bot.Bot
}

var _ bot.Bot = (*Router)(nil)

// New validates cfg and returns a router.
func New(cfg Config) (*Router, error) {
	if cfg.Businesses == nil {
		return nil, errors.New("router: no business source")
	}
	if cfg.Default == ivr.BotDefault {
		cfg.Default = ivr.BotFAQ
	}
	switch cfg.Default {
	case ivr.BotFAQ:
		if cfg.FAQ == nil {
			return nil, errors.New("router: default kind faq without an FAQ bot")
		}
	case ivr.BotRemote:
		if cfg.DefaultRemote == nil {
			return nil, errors.New("router: default kind remote without a remote bot")
		}
	default:
		return nil, fmt.Errorf("router: unknown default kind %q", cfg.Default)
	}
	if cfg.MaxRemotes <= 0 {
		cfg.MaxRemotes = DefaultMaxRemotes
	}
	return &Router{cfg: cfg, remotes: map[string]bot.Bot{}}, nil
}

// Reply implements bot.Bot: it asks the business's bot.
func (r *Router) Reply(ctx context.Context, req bot.Request) (bot.Response, error) {
	b, err := r.For(ctx, req.BusinessID)
	if err != nil {
		return bot.Response{}, err
	}
	return b.Reply(ctx, req)
}

// For returns the bot that answers a business.
func (r *Router) For(ctx context.Context, businessID int64) (bot.Bot, error) {
	biz, err := r.cfg.Businesses.GetBusiness(ctx, businessID)
	if err != nil {
		return nil, fmt.Errorf("%w: router: business %d: %w", bot.ErrUnavailable, businessID, err)
	}
	kind := biz.Bot
	if kind == ivr.BotDefault {
		kind = r.cfg.Default
	}
	switch kind {
	case ivr.BotFAQ:
		if r.cfg.FAQ == nil {
			return nil, fmt.Errorf("%w: %w: business %d wants the FAQ bot", bot.ErrUnavailable, ErrNoBot, businessID)
		}
		return r.cfg.FAQ, nil
	case ivr.BotRemote:
		if !biz.BotURL.IsSet() {
			if r.cfg.DefaultRemote == nil {
				return nil, fmt.Errorf("%w: %w: business %d wants a remote bot and has no bot url", bot.ErrUnavailable, ErrNoBot, businessID)
			}
			return r.cfg.DefaultRemote, nil
		}
		return r.remote(biz.BotURL)
	default:
		return nil, fmt.Errorf("%w: %w: business %d has bot kind %q", bot.ErrUnavailable, ErrNoBot, businessID, kind)
	}
}

// remote returns the bot of a URL, building it once.
func (r *Router) remote(u ivr.Secret) (bot.Bot, error) {
	key := u.Reveal()
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.remotes[key]; ok {
		return b, nil
	}
	if r.cfg.NewRemote == nil {
		return nil, fmt.Errorf("%w: %w: remote bots are not enabled", bot.ErrUnavailable, ErrNoBot)
	}
	b, err := r.cfg.NewRemote(key)
	if err != nil {
		// The URL may hold a token: do not quote it.
		return nil, fmt.Errorf("%w: %w: the business's bot url is not usable", bot.ErrUnavailable, ErrNoBot)
	}
	if len(r.remotes) >= r.cfg.MaxRemotes {
		// URLs changed many times: start over rather than grow.
		clear(r.remotes)
	}
	r.remotes[key] = b
	return b, nil
}

// NoVocabularyVersion is the version [Router.Phrases] reports for a
// business whose bot knows no phrases (a remote bot): recognition is not
// restricted.
const NoVocabularyVersion = -1

// Phrases implements bot.Vocabulary with the business's bot's phrases,
// when that bot knows them.
func (r *Router) Phrases(ctx context.Context, businessID int64) ([]string, int64, error) {
	b, err := r.For(ctx, businessID)
	if err != nil {
		return nil, 0, err
	}
	if v, ok := b.(bot.Vocabulary); ok {
		return v.Phrases(ctx, businessID)
	}
	return nil, NoVocabularyVersion, nil
}

var _ bot.Vocabulary = (*Router)(nil)
