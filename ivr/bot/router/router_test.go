package router_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot"
	"github.com/koelvoice/koel/ivr/bot/router"
)

type businesses map[int64]ivr.Business

func (b businesses) GetBusiness(_ context.Context, id int64) (ivr.Business, error) {
	biz, ok := b[id]
	if !ok {
		return ivr.Business{}, ivr.ErrNotFound
	}
	return biz, nil
}

// named answers with its name; phrases when it has some.
type named struct {
	name    string
	phrases []string
}

func (n named) Reply(context.Context, bot.Request) (bot.Response, error) {
	return bot.Response{Messages: []bot.Message{{Text: n.name}}}, nil
}

type vocabBot struct{ named }

func (v vocabBot) Phrases(context.Context, int64) ([]string, int64, error) { return v.phrases, 7, nil }

// TestRouterAnswersEachBusinessWithItsBot: FAQ and remote businesses side
// by side, the server default for businesses that chose none, one remote
// bot per URL, and a clear failure for a kind the server cannot serve.
func TestRouterAnswersEachBusinessWithItsBot(t *testing.T) {
	biz := businesses{
		1: {ID: 1},
		2: {ID: 2, Bot: ivr.BotFAQ},
		3: {ID: 3, Bot: ivr.BotRemote, BotURL: "http://rasa-a/webhook"},
		4: {ID: 4, Bot: ivr.BotRemote, BotURL: "http://rasa-b/webhook"},
		5: {ID: 5, Bot: ivr.BotRemote, BotURL: "http://rasa-a/webhook"},
		6: {ID: 6, Bot: ivr.BotRemote},
		7: {ID: 7, Bot: "gpt"},
	}
	var mu sync.Mutex
	built := map[string]int{}
	newRemote := func(url string) (bot.Bot, error) {
		mu.Lock()
		defer mu.Unlock()
		built[url]++
		return named{name: "remote " + url}, nil
	}
	faqBot := vocabBot{named{name: "faq", phrases: []string{"where is my order"}}}
	for _, tc := range []struct {
		name          string
		def           ivr.BotKind
		defaultRemote bot.Bot
		want          map[int64]string // "" means ErrNoBot
	}{
		{"faq default", "", nil, map[int64]string{1: "faq", 2: "faq", 3: "remote http://rasa-a/webhook", 4: "remote http://rasa-b/webhook", 5: "remote http://rasa-a/webhook", 6: "", 7: ""}},
		{"remote default", ivr.BotRemote, named{name: "server remote"}, map[int64]string{1: "server remote", 2: "faq", 3: "remote http://rasa-a/webhook", 6: "server remote", 7: ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := router.New(router.Config{Businesses: biz, FAQ: faqBot, Default: tc.def, DefaultRemote: tc.defaultRemote, NewRemote: newRemote})
			if err != nil {
				t.Fatal(err)
			}
			for id, want := range tc.want {
				resp, err := r.Reply(context.Background(), bot.Request{BusinessID: id, Text: "hi"})
				if want == "" {
					if !errors.Is(err, router.ErrNoBot) || !errors.Is(err, bot.ErrUnavailable) {
						t.Errorf("business %d: err = %v, want ErrNoBot", id, err)
					}
					continue
				}
				if err != nil || len(resp.Messages) != 1 || resp.Messages[0].Text != want {
					t.Errorf("business %d: %+v %v, want %q", id, resp, err, want)
				}
			}
			if _, err := r.Reply(context.Background(), bot.Request{BusinessID: 99}); !errors.Is(err, ivr.ErrNotFound) || !errors.Is(err, bot.ErrUnavailable) {
				t.Errorf("unknown business: %v", err)
			}
			phrases, _, err := r.Phrases(context.Background(), 2)
			if err != nil || len(phrases) != 1 {
				t.Errorf("FAQ business phrases: %v %v", phrases, err)
			}
			if phrases, version, err := r.Phrases(context.Background(), 3); err != nil || phrases != nil || version != router.NoVocabularyVersion {
				t.Errorf("remote business phrases: %v %d %v", phrases, version, err)
			}
		})
	}
	if built["http://rasa-a/webhook"] != 2 || built["http://rasa-b/webhook"] != 1 {
		t.Errorf("remote bots built %v: want one per URL per router", built)
	}
	if _, err := router.New(router.Config{Businesses: biz, Default: ivr.BotRemote}); err == nil {
		t.Error("a remote default without a remote bot was accepted")
	}
}
