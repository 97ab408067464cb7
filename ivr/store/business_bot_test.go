package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// TestBusinessBotKind: a business stores the kind of its bot and a remote
// bot's URL; unknown kinds and a remote bot without a URL are refused
// before anything is written; on both backends.
func TestBusinessBotKind(t *testing.T) {
	for name, open := range map[string]func(testing.TB, ...store.Option) store.Store{
		"sqlite": storetest.NewSQLite, "postgres": storetest.NewPostgres,
	} {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			ctx := context.Background()
			faqBiz := ivr.Business{Name: "faq", ClientID: "a", Active: true, Bot: ivr.BotFAQ}
			remoteBiz := ivr.Business{ID: 40, Name: "rasa", ClientID: "b", Active: true, Bot: ivr.BotRemote, BotURL: "http://127.0.0.1:5005/webhooks/rest/webhook?token=t"}
			plain := ivr.Business{Name: "default", ClientID: "c", Active: true}
			for _, b := range []*ivr.Business{&faqBiz, &remoteBiz, &plain} {
				if err := st.CreateBusiness(ctx, b); err != nil {
					t.Fatal(err)
				}
			}
			for _, want := range []ivr.Business{faqBiz, remoteBiz, plain} {
				got, err := st.GetBusiness(ctx, want.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Bot != want.Bot || got.BotURL != want.BotURL {
					t.Fatalf("business %d: bot %q %q, want %q %q", want.ID, got.Bot, got.BotURL.Reveal(), want.Bot, want.BotURL.Reveal())
				}
			}
			faqBiz.Bot, faqBiz.BotURL = ivr.BotRemote, "https://bots.example.com/rest"
			if err := st.UpdateBusiness(ctx, faqBiz); err != nil {
				t.Fatal(err)
			}
			if got, _ := st.GetBusiness(ctx, faqBiz.ID); got.Bot != ivr.BotRemote || got.BotURL.Reveal() != "https://bots.example.com/rest" {
				t.Fatalf("updated business: %q %q", got.Bot, got.BotURL.Reveal())
			}
			for _, bad := range []ivr.Business{
				{Name: "x", Bot: "gpt"},
				{Name: "y", Bot: ivr.BotRemote},
			} {
				if err := st.CreateBusiness(ctx, &bad); !errors.Is(err, store.ErrInvalid) {
					t.Fatalf("create %q: err = %v, want ErrInvalid", bad.Bot, err)
				}
			}
			remoteBiz.Bot = "gpt"
			if err := st.UpdateBusiness(ctx, remoteBiz); !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("update to an unknown kind: %v", err)
			}
		})
	}
}
