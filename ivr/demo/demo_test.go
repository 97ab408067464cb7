package demo_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/ivr/provision"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

func records(t *testing.T, st store.Store) string {
	t.Helper()
	ctx := context.Background()
	b, err := st.GetBusiness(ctx, demo.BusinessID)
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("%q %q %q active=%v bot=%q token=%x\n", b.Name, b.ClientID, b.FallbackMessage, b.Active, b.Bot, b.TokenHash)
	conns, err := st.ListConnections(ctx, demo.BusinessID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		enc, err := ivr.EncodeSettings(c.Settings)
		if err != nil {
			t.Fatal(err)
		}
		out += fmt.Sprintf("%s/%s active=%v %s\n", c.Channel, c.Identifier, c.Active, enc)
	}
	return out
}

// TestBootstrapIsTheProvisioningPath: Bootstrap writes exactly what
// provision.Apply writes for the demo's declaration, keeps an existing
// demo's data on the next start, and replaces only a given token and
// webhook URL.
func TestBootstrapIsTheProvisioningPath(t *testing.T) {
	ctx := context.Background()
	loads := 0
	load := func(context.Context, int64, []byte) error { loads++; return nil }
	st := storetest.NewSQLite(t)
	res, err := demo.Bootstrap(ctx, st, demo.Options{Token: "demo-token", WebhookURL: "https://hook.example/in", WebhookSecret: "sign-me", LoadFAQ: load})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.Token != "demo-token" || loads != 1 {
		t.Fatalf("first bootstrap %+v, %d FAQ loads", res, loads)
	}

	direct := storetest.NewSQLite(t)
	if _, err := provision.Apply(ctx, direct, demo.Declaration("demo-token", "https://hook.example/in", "sign-me"), provision.Options{}); err != nil {
		t.Fatal(err)
	}
	if got, want := records(t, st), records(t, direct); got != want {
		t.Fatalf("Bootstrap wrote\n%s\nprovision.Apply of the declaration wrote\n%s", got, want)
	}

	// An operator's changes survive the next start.
	c, err := st.GetConnection(ctx, ivr.ChannelKooKoo, demo.Identifier)
	if err != nil {
		t.Fatal(err)
	}
	c.Active, c.Settings.WelcomeMessage = false, "Hello from the operator"
	if err := st.UpdateConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	before := records(t, st)
	res, err = demo.Bootstrap(ctx, st, demo.Options{LoadFAQ: load})
	if err != nil {
		t.Fatal(err)
	}
	if res.Created || res.Token != "" {
		t.Fatalf("second bootstrap %+v", res)
	}
	if after := records(t, st); after != before {
		t.Fatalf("a restart changed the demo:\n%s\n%s", before, after)
	}

	// A given token and webhook URL replace the stored ones, nothing else.
	if _, err := demo.Bootstrap(ctx, st, demo.Options{Token: "rotated", WebhookURL: "https://hook.example/v2", LoadFAQ: load}); err != nil {
		t.Fatal(err)
	}
	b, _ := st.GetBusiness(ctx, demo.BusinessID)
	hook, _ := st.GetConnection(ctx, ivr.ChannelWebhook, demo.Identifier)
	if !ivr.TokenMatches(b.TokenHash, "rotated") || hook.Settings.WebhookURL != "https://hook.example/v2" || hook.Settings.SecretKey.Reveal() != "sign-me" {
		t.Fatalf("token rotated %v, webhook %q, secret kept %v", ivr.TokenMatches(b.TokenHash, "rotated"), hook.Settings.WebhookURL, hook.Settings.SecretKey.Reveal() == "sign-me")
	}
	if c, _ := st.GetConnection(ctx, ivr.ChannelKooKoo, demo.Identifier); c.Active || !strings.Contains(c.Settings.WelcomeMessage, "operator") {
		t.Fatalf("the kookoo connection lost the operator's changes: %+v", c)
	}
}
