package provision_test

import (
	"context"
	"errors"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/provision"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// FuzzApply decodes any YAML declaration and applies it to a real SQLite
// store: never a panic; a declaration is applied or refused, and a refused
// one has written no business.
func FuzzApply(f *testing.F) {
	for _, seed := range []string{
		"id: 20\nname: A\ntoken: t\nclient_id: a\n",
		"id: 21\nname: B\ntoken: t\nclient_id: b\nbot: {kind: remote, remote_url: 'http://127.0.0.1:5005/webhooks/rest/webhook'}\n",
		"id: 22\nname: C\ntoken: t\nclient_id: c\nbot: {kind: remote}\n",
		"id: 23\nname: D\ntoken: t\nclient_id: d\nconnections: [{channel: fb, identifier: d, secrets_env: {messenger.app_secret: FB}}]\n",
		"id: 24\nname: E\ntoken: t\nclient_id: e\nconnections: [{channel: webhook, identifier: e, settings: {secret_key: k, webchat: {custom_domains: [a.example]}}}]\n",
		"id: 25\nname: F\ntoken: t\nclient_id: f\nconnections: [{channel: fax, identifier: f}]\n",
		"id: 26\nname: \"G\\0\"\ntoken: t\nclient_id: g\n",
		"id: -1\n", "{}", "[]", ":", "",
	} {
		f.Add(seed)
	}
	st := storetest.NewSQLite(f)
	env := map[string]string{"FB": "fb-secret"}
	opts := provision.Options{Getenv: func(k string) string { return env[k] }}
	f.Fuzz(func(t *testing.T, doc string) {
		var b provision.Business
		if err := yaml.Unmarshal([]byte(doc), &b); err != nil {
			return
		}
		_, existedErr := st.GetBusiness(context.Background(), b.ID)
		_, err := provision.Apply(context.Background(), st, b, opts)
		if err == nil {
			return
		}
		if errors.Is(existedErr, ivr.ErrNotFound) {
			if _, gerr := st.GetBusiness(context.Background(), b.ID); gerr == nil {
				t.Fatalf("refused declaration (%v) wrote business %d", err, b.ID)
			}
		}
	})
}
