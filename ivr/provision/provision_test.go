package provision_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/provision"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

func acme() provision.Business {
	return provision.Business{
		ID: 7, Name: "Acme", TokenEnv: "ACME_TOKEN", ClientID: "acme", FallbackMessage: "Sorry?",
		FAQFile: "acme.csv",
		Connections: []provision.Connection{
			{Channel: ivr.ChannelKooKoo, Identifier: "acme", Settings: ivr.ConnectionSettings{WelcomeMessage: "Welcome to Acme", SilencePeriod: 2, MaxRecordTime: 8, AgentNumber: "0800"}},
			{Channel: ivr.ChannelWebhook, Identifier: "acme", Settings: ivr.ConnectionSettings{WebhookURL: "https://acme.example/hook", SecretKey: "k"}},
		},
	}
}

type loads struct{ n int }

func (l *loads) opts(env map[string]string) provision.Options {
	return provision.Options{
		Getenv:   func(k string) string { return env[k] },
		ReadFile: func(name string) ([]byte, error) { return []byte("node_name,user_says,bot_says\nhi,hello,Hi!\n"), nil },
		LoadFAQ: func(ctx context.Context, id int64, csv []byte) error {
			l.n++
			return nil
		},
	}
}

func TestApplyCreatesThenUpdatesIdempotently(t *testing.T) {
	ctx := context.Background()
	st := storetest.NewSQLite(t)
	l := &loads{}
	res, err := provision.Apply(ctx, st, acme(), l.opts(map[string]string{"ACME_TOKEN": "t1"}))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.Token != "t1" || !res.FAQImported || l.n != 1 {
		t.Fatalf("first apply = %+v, loads %d", res, l.n)
	}
	b, err := st.GetBusiness(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if !ivr.TokenMatches(b.TokenHash, "t1") || b.ClientID != "acme" || !b.Active {
		t.Fatalf("business = %+v", b)
	}
	c, err := st.GetConnection(ctx, ivr.ChannelKooKoo, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if c.BusinessID != 7 || c.Settings.WelcomeMessage != "Welcome to Acme" || c.Settings.SilencePeriod != 2 || !c.Active {
		t.Fatalf("kookoo connection = %+v", c)
	}

	// The FAQ exists now (as the loader would have made it): re-applying
	// must not import again. Simulate it with a real node.
	if _, err := st.ReplaceFAQ(ctx, 7, []ivr.FAQNode{{Name: "hi", UserSays: []string{"hello"}, BotSays: []string{"Hi!"}}}); err != nil {
		t.Fatal(err)
	}
	changed := acme()
	changed.Connections[0].Settings.WelcomeMessage = "Hello from Acme"
	changed.Connections[1].Disabled = true
	res, err = provision.Apply(ctx, st, changed, l.opts(map[string]string{"ACME_TOKEN": "t1"}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Created || res.Token != "" || res.FAQImported || l.n != 1 {
		t.Fatalf("second apply = %+v, loads %d; want an update with the same token and no import", res, l.n)
	}
	if c, _ = st.GetConnection(ctx, ivr.ChannelKooKoo, "acme"); c.Settings.WelcomeMessage != "Hello from Acme" {
		t.Fatalf("welcome not updated: %q", c.Settings.WelcomeMessage)
	}
	if w, _ := st.GetConnection(ctx, ivr.ChannelWebhook, "acme"); w.Active {
		t.Fatal("disabled connection still active")
	}

	// A new token rotates the stored one.
	res, err = provision.Apply(ctx, st, changed, l.opts(map[string]string{"ACME_TOKEN": "t2"}))
	if err != nil || res.Token != "t2" {
		t.Fatalf("rotation: %+v %v", res, err)
	}
	if b, _ = st.GetBusiness(ctx, 7); !ivr.TokenMatches(b.TokenHash, "t2") || ivr.TokenMatches(b.TokenHash, "t1") {
		t.Fatal("token not rotated")
	}
}

func TestApplyRefuses(t *testing.T) {
	ctx := context.Background()
	st := storetest.NewSQLite(t)
	l := &loads{}
	if _, err := provision.Apply(ctx, st, acme(), l.opts(map[string]string{"ACME_TOKEN": "t"})); err != nil {
		t.Fatal(err)
	}
	other := provision.Business{ID: 8, Name: "Other", Token: "x", ClientID: "o",
		Connections: []provision.Connection{{Channel: ivr.ChannelKooKoo, Identifier: "acme"}}}

	tests := []struct {
		name string
		b    provision.Business
		env  map[string]string
		want string
	}{
		{"someone else's connection", other, nil, "belongs to business 7"},
		{"empty token env", acme(), map[string]string{}, "ACME_TOKEN is empty"},
		{"new business without token", provision.Business{ID: 9, Name: "N", ClientID: "n"}, nil, "needs token or token_env"},
		{"bad id", provision.Business{ID: 0, Name: "N", ClientID: "n", Token: "t"}, nil, "positive number"},
		{"unknown channel", provision.Business{ID: 9, Name: "N", ClientID: "n", Token: "t", Connections: []provision.Connection{{Channel: "fax", Identifier: "x"}}}, nil, `unknown channel "fax"`},
		{"bad identifier", provision.Business{ID: 9, Name: "N", ClientID: "n", Token: "t", Connections: []provision.Connection{{Channel: ivr.ChannelKooKoo, Identifier: "a/b"}}}, nil, "identifier"},
		{"duplicate connection", provision.Business{ID: 9, Name: "N", ClientID: "n", Token: "t", Connections: []provision.Connection{{Channel: ivr.ChannelKooKoo, Identifier: "x"}, {Channel: ivr.ChannelKooKoo, Identifier: "x"}}}, nil, "declared twice"},
		{"token and token_env", provision.Business{ID: 9, Name: "N", ClientID: "n", Token: "t", TokenEnv: "T"}, nil, "not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := provision.Apply(ctx, st, tt.b, l.opts(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			want := provision.ErrInvalid
			if tt.name == "someone else's connection" {
				want = ivr.ErrConflict
			}
			if !errors.Is(err, want) {
				t.Fatalf("err = %v, want %v", err, want)
			}
		})
	}
	for _, id := range []int64{8, 9} {
		if _, err := st.GetBusiness(ctx, id); !errors.Is(err, ivr.ErrNotFound) {
			t.Fatalf("a refused declaration created business %d", id)
		}
	}
}

// TestApplyTypedCredentialsFromEnvironment: a YAML declaration gives each
// channel's credentials in its typed section, secrets from environment
// variables; they are stored and read back exactly, and a missing variable
// or an unknown credential name refuses the declaration before any write.
func TestApplyTypedCredentialsFromEnvironment(t *testing.T) {
	const doc = `
id: 12
name: Shop
token_env: SHOP_TOKEN
client_id: shop
connections:
  - channel: fb
    identifier: shop
    settings:
      messenger:
        page_id: "1001"
    secrets_env:
      messenger.page_access_token: SHOP_FB_PAGE_TOKEN
      messenger.app_secret: SHOP_FB_APP_SECRET
      messenger.verify_token: SHOP_FB_VERIFY
  - channel: whatsapp
    identifier: shop
    settings:
      twilio:
        account_sid: AC0001
        from: "whatsapp:+14155238886"
    secrets_env:
      twilio.auth_token: SHOP_TWILIO_TOKEN
  - channel: infobip
    identifier: shop
    settings:
      infobip:
        base_url: https://abcd.api.infobip.com
        api_key: literal-infobip-key
  - channel: webchat
    identifier: shop
    disabled: true
    settings:
      webchat:
        custom_domains: [shop.example.com, help.example.com]
`
	var decl provision.Business
	if err := yaml.Unmarshal([]byte(doc), &decl); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SHOP_TOKEN": "t", "SHOP_FB_PAGE_TOKEN": "EAAB-page", "SHOP_FB_APP_SECRET": "fb-app-secret",
		"SHOP_FB_VERIFY": "verify-me", "SHOP_TWILIO_TOKEN": "tw-auth"}
	ctx := context.Background()
	st := storetest.NewSQLite(t)
	l := &loads{}

	// Refusals first: nothing may be written.
	for name, mutate := range map[string]func(b *provision.Business, env map[string]string){
		"unset variable": func(b *provision.Business, env map[string]string) { delete(env, "SHOP_TWILIO_TOKEN") },
		"unknown credential": func(b *provision.Business, env map[string]string) {
			b.Connections[0].SecretsEnv = map[string]string{"messenger.page_id": "SHOP_TOKEN"}
		},
		"bad variable name": func(b *provision.Business, env map[string]string) {
			b.Connections[1].SecretsEnv = map[string]string{"twilio.auth_token": "not a name"}
		},
	} {
		b := decl
		b.Connections = append([]provision.Connection(nil), decl.Connections...)
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		mutate(&b, e)
		if _, err := provision.Apply(ctx, st, b, l.opts(e)); !errors.Is(err, provision.ErrInvalid) {
			t.Fatalf("%s: err = %v, want ErrInvalid", name, err)
		}
		if _, err := st.GetBusiness(ctx, 12); !errors.Is(err, ivr.ErrNotFound) {
			t.Fatalf("%s: the refused declaration wrote the business", name)
		}
	}

	if _, err := provision.Apply(ctx, st, decl, l.opts(env)); err != nil {
		t.Fatal(err)
	}
	fb, err := st.GetConnection(ctx, ivr.ChannelFacebook, "shop")
	if err != nil {
		t.Fatal(err)
	}
	m := fb.Settings.Messenger
	if m.PageID != "1001" || m.PageAccessToken.Reveal() != "EAAB-page" || m.AppSecret.Reveal() != "fb-app-secret" || m.VerifyToken.Reveal() != "verify-me" {
		t.Fatalf("messenger settings %+v", fb.Settings.Public())
	}
	wa, err := st.GetConnection(ctx, ivr.ChannelWhatsApp, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if tw := wa.Settings.Twilio; tw.AccountSID != "AC0001" || tw.AuthToken.Reveal() != "tw-auth" || tw.From != "whatsapp:+14155238886" {
		t.Fatalf("twilio settings %+v", wa.Settings.Public())
	}
	ib, err := st.GetConnection(ctx, ivr.ChannelInfobip, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if ib.Settings.Infobip.APIKey.Reveal() != "literal-infobip-key" || ib.Settings.Infobip.BaseURL != "https://abcd.api.infobip.com" {
		t.Fatalf("infobip settings %+v", ib.Settings.Public())
	}
	wc, err := st.GetConnection(ctx, ivr.ChannelWebchat, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if wc.Active || len(wc.Settings.Webchat.CustomDomains) != 2 {
		t.Fatalf("webchat connection %+v", wc)
	}
}

// TestApplyNeverWritesHalfADeclaration: a connection the store would
// refuse (settings over its size cap, a NUL in the name) or an unreadable
// FAQ file refuse the declaration before the business is written.
func TestApplyNeverWritesHalfADeclaration(t *testing.T) {
	ctx := context.Background()
	st := storetest.NewSQLite(t)
	base := func(id int64) provision.Business {
		return provision.Business{ID: id, Name: "P", Token: "t", ClientID: "p"}
	}
	huge := base(30)
	huge.Connections = []provision.Connection{{Channel: ivr.ChannelKooKoo, Identifier: "p30",
		Settings: ivr.ConnectionSettings{WelcomeMessage: strings.Repeat("a", 2<<20)}}}
	nul := base(31)
	nul.Name = "P\x00"
	noFile := base(32)
	noFile.FAQFile = "missing.csv"
	opts := provision.Options{
		ReadFile: func(string) ([]byte, error) { return nil, errors.New("no such file") },
		LoadFAQ:  func(context.Context, int64, []byte) error { return nil },
	}
	for _, b := range []provision.Business{huge, nul, noFile} {
		if _, err := provision.Apply(ctx, st, b, opts); err == nil {
			t.Fatalf("business %d: applied", b.ID)
		}
		if _, err := st.GetBusiness(ctx, b.ID); !errors.Is(err, ivr.ErrNotFound) {
			t.Fatalf("business %d: a refused declaration wrote the business (%v)", b.ID, err)
		}
	}
}
