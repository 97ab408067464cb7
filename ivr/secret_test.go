package ivr_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/koelvoice/koel/ivr"
)

// secretPaths finds every ivr.Secret field of ConnectionSettings by
// reflection, named as configuration names them.
func secretPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case f.Type == reflect.TypeFor[ivr.Secret]():
			out = append(out, prefix+name)
		case f.Type.Kind() == reflect.Struct:
			out = append(out, secretPaths(f.Type, prefix+name+".")...)
		}
	}
	return out
}

// fullSettings sets every credential to a distinct recognisable value.
func fullSettings(t *testing.T) (ivr.ConnectionSettings, []string) {
	t.Helper()
	s := ivr.ConnectionSettings{WelcomeMessage: "hello", WebhookURL: "https://example.com/hook",
		Messenger: ivr.MessengerSettings{PageID: "page-1"}, Twilio: ivr.TwilioSettings{AccountSID: "AC123"},
		Webchat: ivr.WebchatSettings{CustomDomains: []string{"shop.example.com"}}, Extra: map[string]string{"region": "in"}}
	var values []string
	for i, name := range ivr.SecretNames() {
		v := fmt.Sprintf("SECRETVALUE%02dxyz", i)
		if err := s.SetSecret(name, ivr.Secret(v)); err != nil {
			t.Fatal(err)
		}
		values = append(values, v)
	}
	return s, values
}

func assertNoSecret(t *testing.T, what, out string, values []string) {
	t.Helper()
	for _, v := range values {
		if strings.Contains(out, v) || strings.Contains(out, fmt.Sprintf("%x", v)) {
			t.Errorf("%s shows secret %q:\n%s", what, v, out)
		}
	}
}

// TestSecretFieldsAreAllListed: every Secret field of every channel's
// settings is known to SecretNames, so none escapes redaction, storage or
// provisioning.
func TestSecretFieldsAreAllListed(t *testing.T) {
	got := ivr.SecretNames()
	want := secretPaths(reflect.TypeFor[ivr.ConnectionSettings](), "")
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("SecretNames = %v\nSecret fields = %v", got, want)
	}
	var s ivr.ConnectionSettings
	if err := s.SetSecret("messenger.page_id", "x"); err == nil {
		t.Fatal("SetSecret accepted a field that is not a credential")
	}
}

// TestSecretsNeverPrintLogOrMarshal: fmt with any verb, slog text and JSON
// handlers, encoding/json, YAML and the API view never show a credential.
func TestSecretsNeverPrintLogOrMarshal(t *testing.T) {
	s, values := fullSettings(t)
	conn := ivr.Connection{ID: 4, BusinessID: 1, Channel: ivr.ChannelFacebook, Identifier: "shop", Active: true, Settings: s}

	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%10s"} {
		assertNoSecret(t, "fmt "+verb+" of a connection", fmt.Sprintf(verb, conn), values)
		assertNoSecret(t, "fmt "+verb+" of settings", fmt.Sprintf(verb, s), values)
		assertNoSecret(t, "fmt "+verb+" of a secret", fmt.Sprintf(verb, s.Messenger.AppSecret), values)
	}

	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(h(&buf))
		log.Info("connection", "conn", conn, "settings", s, "secret", s.Jio.AppSecret, "ptr", &conn)
		log.Info("group", slog.Group("g", slog.Any("settings", s)))
		assertNoSecret(t, "log", buf.String(), values)
		if !strings.Contains(buf.String(), "page-1") || !strings.Contains(buf.String(), "messenger.app_secret") {
			t.Errorf("log lost the non-secret settings or the names of the set secrets:\n%s", buf.String())
		}
	}

	plain, err := json.Marshal(conn)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "json.Marshal", string(plain), values)
	y, err := yaml.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "yaml.Marshal", string(y), values)

	pub, err := s.MarshalPublicJSON()
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "public JSON", string(pub), values)
	if bytes.Contains(pub, []byte("***")) {
		t.Errorf("public JSON should omit credentials, not mask them: %s", pub)
	}
	var view map[string]any
	if err := json.Unmarshal(pub, &view); err != nil {
		t.Fatal(err)
	}
	if len(view["secrets_set"].([]any)) != len(values) || view["messenger"].(map[string]any)["page_id"] != "page-1" {
		t.Errorf("public JSON %s", pub)
	}
	if r := s.Redacted(); r.Messenger.AppSecret.Reveal() != "***" || r.SecretKey.Reveal() != "***" || r.WelcomeMessage != "hello" {
		t.Errorf("Redacted = %+v", r)
	}
}

// TestSettingsStorageKeepsSecrets: the store's encoding round-trips every
// credential exactly, and still reads rows written before they were typed.
func TestSettingsStorageKeepsSecrets(t *testing.T) {
	s, values := fullSettings(t)
	b, err := ivr.EncodeSettings(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ivr.DecodeSettings(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, back) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", back.Public(), s.Public())
	}
	if got := back.SecretValues(); !reflect.DeepEqual(got, values) {
		t.Fatalf("SecretValues = %d values, want %d", len(got), len(values))
	}
	old, err := ivr.DecodeSettings([]byte(`{"webhook_url":"https://x.example/h","secret_key":"legacy-key","auto_register":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if old.SecretKey.Reveal() != "legacy-key" || !old.AutoRegister {
		t.Fatalf("legacy row = %+v", old.Public())
	}
}

// TestSecretsDecodeFromYAML: configuration gives credentials as plain
// strings in the typed sections.
func TestSecretsDecodeFromYAML(t *testing.T) {
	var s ivr.ConnectionSettings
	err := yaml.Unmarshal([]byte("messenger:\n  page_id: p1\n  app_secret: fb-secret\ntwilio:\n  account_sid: AC1\n  auth_token: tw-token\nsecret_key: hook-key\n"), &s)
	if err != nil {
		t.Fatal(err)
	}
	if s.Messenger.AppSecret.Reveal() != "fb-secret" || s.Twilio.AuthToken.Reveal() != "tw-token" || s.SecretKey.Reveal() != "hook-key" || s.Messenger.PageID != "p1" {
		t.Fatalf("decoded %+v", s.Public())
	}
}

// TestRedactURL: query values, the password and the fragment are masked;
// the rest stays readable.
func TestRedactURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://hooks.example.com/in?api_key=s3cret&b=2": "https://hooks.example.com/in?api_key=***&b=***",
		"postgres://koel:s3cret@db:5432/koel":             "postgres://koel:%2A%2A%2A@db:5432/koel",
		"https://h.example/p#s3cret":                      "https://h.example/p#***",
		"https://h.example/plain":                         "https://h.example/plain",
		"::not a url":                                     "(unparseable URL)",
	} {
		if got := ivr.RedactURL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
	s := ivr.ConnectionSettings{WebhookURL: "https://x.example/h?token=s3cret"}
	if pub, _ := s.MarshalPublicJSON(); strings.Contains(string(pub), "s3cret") {
		t.Errorf("public JSON shows a URL's query value: %s", pub)
	}
}
