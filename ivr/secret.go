package ivr

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
)

// Secret is a credential: an API key, a token, an app secret. It is
// write-only. Printed with any fmt verb, logged with slog, or marshalled to
// JSON or YAML it shows "***" (or nothing when unset); only [Secret.Reveal]
// gives the value, for the one place that uses it (signing, an
// Authorization header), and [EncodeSettings] stores it.
type Secret string

const redactedMark = "***"

// Reveal returns the credential itself. Call it only where the value is
// used, never to log or return it.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether the credential is configured.
func (s Secret) IsSet() bool { return s != "" }

func (s Secret) masked() string {
	if s == "" {
		return ""
	}
	return redactedMark
}

// String implements fmt.Stringer with the mask.
func (s Secret) String() string { return s.masked() }

// GoString implements fmt.GoStringer with the mask (%#v).
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.masked()) }

// Format implements fmt.Formatter: every verb prints the mask, so %x or %q
// cannot spell the value either.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' || (verb == 'v' && f.Flag('#')) {
		fmt.Fprintf(f, "%q", s.masked())
		return
	}
	fmt.Fprint(f, s.masked())
}

// LogValue implements slog.LogValuer with the mask.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.masked()) }

// MarshalJSON writes the mask: a Secret never leaves koel as JSON by
// accident. The store uses [EncodeSettings].
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.masked()) }

// MarshalText writes the mask (YAML and other text encoders).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.masked()), nil }

// UnmarshalText accepts the value (configuration, API writes). Without it
// a Secret would decode through MarshalText's mask-only counterpart.
func (s *Secret) UnmarshalText(b []byte) error {
	*s = Secret(b)
	return nil
}

// UnmarshalJSON accepts the value as a JSON string.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("secret must be a string: %w", err)
	}
	*s = Secret(v)
	return nil
}

// secretField is one credential of ConnectionSettings, by its name in
// configuration ("messenger.app_secret").
type secretField struct {
	name string
	p    *Secret
}

// secretFields lists every credential of s, in a fixed order. Adding a
// Secret field to a settings type means adding it here; a test checks by
// reflection that none is missing.
func (s *ConnectionSettings) secretFields() []secretField {
	return []secretField{
		{"secret_key", &s.SecretKey},
		{"access_token", &s.AccessToken},
		{"messenger.page_access_token", &s.Messenger.PageAccessToken},
		{"messenger.app_secret", &s.Messenger.AppSecret},
		{"messenger.verify_token", &s.Messenger.VerifyToken},
		{"twilio.auth_token", &s.Twilio.AuthToken},
		{"meta_whatsapp.access_token", &s.MetaWhatsApp.AccessToken},
		{"meta_whatsapp.app_secret", &s.MetaWhatsApp.AppSecret},
		{"meta_whatsapp.verify_token", &s.MetaWhatsApp.VerifyToken},
		{"infobip.api_key", &s.Infobip.APIKey},
		{"infobip.inbound_token", &s.Infobip.InboundToken},
		{"gupshup.api_key", &s.Gupshup.APIKey},
		{"gupshup.app_token", &s.Gupshup.AppToken},
		{"karix.api_key", &s.Karix.APIKey},
		{"jio.app_secret", &s.Jio.AppSecret},
		{"jio.access_token", &s.Jio.AccessToken},
		{"webchat.event_webhook_secret", &s.Webchat.EventWebhookSecret},
	}
}

// SecretNames lists the names of every credential a connection can hold, as
// configuration spells them ("secret_key", "messenger.app_secret").
func SecretNames() []string {
	var s ConnectionSettings
	fields := s.secretFields()
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return names
}

// SetSecret sets the credential named name (see [SecretNames]).
func (s *ConnectionSettings) SetSecret(name string, v Secret) error {
	for _, f := range s.secretFields() {
		if f.name == name {
			*f.p = v
			return nil
		}
	}
	return Invalid("secret", "%q is not a connection credential", name)
}

// SecretValues returns every credential that is set, revealed: what must
// never appear in a log line, a URL or LastError (for scrubbing error
// texts).
func (s ConnectionSettings) SecretValues() []string {
	var out []string
	for _, f := range s.secretFields() {
		if *f.p != "" {
			out = append(out, f.p.Reveal())
		}
	}
	return out
}

// WithoutSecrets returns a copy with every credential cleared.
func (s ConnectionSettings) WithoutSecrets() ConnectionSettings {
	for _, f := range s.secretFields() {
		*f.p = ""
	}
	return s
}

// LogValue implements slog.LogValuer: the settings without credentials,
// plus the names of the credentials that are set.
func (s ConnectionSettings) LogValue() slog.Value {
	return slog.AnyValue(s.public())
}

// LogValue implements slog.LogValuer: a connection logs its identity and
// its settings without credentials.
func (c Connection) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int64("id", c.ID),
		slog.Int64("business_id", c.BusinessID),
		slog.String("channel", string(c.Channel)),
		slog.String("identifier", c.Identifier),
		slog.Bool("active", c.Active),
		slog.Any("settings", c.Settings.public()),
	)
}

// PublicSettings is the API view of [ConnectionSettings]: every setting but
// no credential; SecretsSet names the credentials that are configured, so a
// client can tell "set" from "missing" without ever reading one.
type PublicSettings struct {
	settingsView
	SecretsSet []string `json:"secrets_set,omitempty"`
}

// settingsView is ConnectionSettings without its methods, so a
// PublicSettings is not itself a slog.LogValuer.
type settingsView ConnectionSettings

// Settings returns the settings of the view (credentials cleared).
func (p PublicSettings) Settings() ConnectionSettings { return ConnectionSettings(p.settingsView) }

func (s ConnectionSettings) public() PublicSettings {
	v := s.WithoutSecrets()
	// URLs may carry credentials in their query (?api_key=) or user info.
	for _, u := range []*string{&v.WebhookURL, &v.Webchat.EventWebhookURL, &v.Messenger.GraphURL, &v.MetaWhatsApp.GraphURL,
		&v.Twilio.PublicURL, &v.Twilio.APIURL, &v.Infobip.BaseURL, &v.Gupshup.BaseURL, &v.Karix.BaseURL, &v.Jio.BaseURL} {
		if *u != "" {
			*u = RedactURL(*u)
		}
	}
	p := PublicSettings{settingsView: settingsView(v)}
	for _, f := range s.secretFields() {
		if *f.p != "" {
			p.SecretsSet = append(p.SecretsSet, f.name)
		}
	}
	return p
}

// Public returns the API view of the settings.
func (s ConnectionSettings) Public() PublicSettings { return s.public() }

// MarshalPublicJSON is the JSON an API returns for the settings: no
// credential appears, not even masked.
func (s ConnectionSettings) MarshalPublicJSON() ([]byte, error) { return json.Marshal(s.public()) }

// storedSettings is the store's JSON form: the settings without
// credentials, and the credentials by name.
type storedSettings struct {
	ConnectionSettings
	Secrets map[string]string `json:"secrets,omitempty"`
}

// EncodeSettings is the JSON the store keeps for s, credentials included.
// Nothing but the store should call it.
func EncodeSettings(s ConnectionSettings) ([]byte, error) {
	st := storedSettings{ConnectionSettings: s.WithoutSecrets()}
	for _, f := range s.secretFields() {
		if *f.p != "" {
			if st.Secrets == nil {
				st.Secrets = map[string]string{}
			}
			st.Secrets[f.name] = f.p.Reveal()
		}
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("ivr: encode settings: %w", err)
	}
	return b, nil
}

// DecodeSettings reads what [EncodeSettings] wrote. It also reads rows
// written before credentials were typed, where they were plain top-level
// strings ("secret_key": "...").
func DecodeSettings(b []byte) (ConnectionSettings, error) {
	var st storedSettings
	if err := json.Unmarshal(b, &st); err != nil {
		return ConnectionSettings{}, fmt.Errorf("ivr: decode settings: %w", err)
	}
	s := st.ConnectionSettings
	for name, v := range st.Secrets {
		if err := s.SetSecret(name, Secret(v)); err != nil {
			return ConnectionSettings{}, fmt.Errorf("ivr: decode settings: %w", err)
		}
	}
	if len(s.Extra) == 0 {
		s.Extra = nil
	}
	return s, nil
}

// RedactURL returns raw with what may be a credential masked — the user
// info's password, every query value, the fragment — for logs and API
// views: "https://h/p?api_key=***".
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), redactedMark)
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = url.QueryEscape(k) + "=" + redactedMark
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	if u.Fragment != "" || u.RawFragment != "" {
		u.Fragment, u.RawFragment = redactedMark, ""
	}
	return u.String()
}
