package twilio_test

import (
	"net/url"
	"testing"

	"github.com/koelvoice/koel/channels/twilio"
)

// Official vectors from spec/channels.md §2.2: Twilio's "Secure webhooks"
// worked example, and twilio-python / twilio-go request validator tests.
func TestOfficialSignatureVectors(t *testing.T) {
	params := func(caller string) url.Values {
		return url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {caller}, "Digits": {"1234"}, "From": {caller}, "To": {"+18005551212"}}
	}
	const base = "https://mycompany.com/myapp.php?foo=1&bar=2"
	tests := []struct {
		name   string
		url    string
		params url.Values
		want   string
	}{
		{"secure webhooks guide", base, params("+12349013030"), "0/KCTR6DLpKmkAf8muzZqo1nDgQ="},
		{"sdk tests", base, params("+14158675309"), "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
		{"sdk tests with :443", "https://mycompany.com:443/myapp.php?foo=1&bar=2", params("+14158675309"), "kvajT1Ptam85bY51eRf/AJRuM3w="},
		{"sdk tests http with :80", "http://mycompany.com:80/myapp.php?foo=1&bar=2", params("+14158675309"), "0ZXoZLH/DfblKGATFgpif+LLRf4="},
		{"sdk tests http with :1234", "http://mycompany.com:1234/myapp.php?foo=1&bar=2", params("+14158675309"), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := twilio.Signature("12345", tt.url, tt.params); got != tt.want {
				t.Fatalf("Signature = %s, want %s", got, tt.want)
			}
			if err := twilio.Validate("12345", tt.url, tt.params, tt.want); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
	// The port quirk: a signature made with :443 validates for the URL
	// without a port and the other way round.
	p := params("+14158675309")
	if err := twilio.Validate("12345", base, p, "kvajT1Ptam85bY51eRf/AJRuM3w="); err != nil {
		t.Fatalf(":443 signature on the port-less URL: %v", err)
	}
	if err := twilio.Validate("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", p, "RSOYDt4T1cUTdK1PDd93/VVr8B8="); err != nil {
		t.Fatalf("port-less signature on the :443 URL: %v", err)
	}
	// JSON body vector.
	body := []byte(`{"property": "value", "boolean": true}`)
	jsonURL := base + "&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
	if got := twilio.Signature("12345", jsonURL, nil); got != "a9nBmqA0ju/hNViExpshrM61xv4=" {
		t.Fatalf("JSON signature = %s", got)
	}
	if err := twilio.ValidateJSON("12345", jsonURL, body, "a9nBmqA0ju/hNViExpshrM61xv4="); err != nil {
		t.Fatalf("ValidateJSON: %v", err)
	}
	if err := twilio.ValidateJSON("12345", jsonURL, []byte(`{"property": "other"}`), "a9nBmqA0ju/hNViExpshrM61xv4="); err == nil {
		t.Fatal("ValidateJSON accepted a body that does not match bodySHA256")
	}
}

func TestSignatureRejections(t *testing.T) {
	p := url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+14158675309"}, "Digits": {"1234"}, "From": {"+14158675309"}, "To": {"+18005551212"}}
	const u = "https://mycompany.com/myapp.php?foo=1&bar=2"
	const sig = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
	changed := url.Values{}
	for k, v := range p {
		changed[k] = v
	}
	changed.Set("Digits", "1235")
	extra := url.Values{}
	for k, v := range p {
		extra[k] = v
	}
	extra.Add("Body", "hi")
	tests := []struct {
		name, token, url, sig string
		params                url.Values
	}{
		{"wrong token", "54321", u, sig, p},
		{"empty token", "", u, sig, p},
		{"changed parameter", "12345", u, sig, changed},
		{"added parameter", "12345", u, sig, extra},
		{"other path", "12345", "https://mycompany.com/other.php?foo=1&bar=2", sig, p},
		{"other query", "12345", "https://mycompany.com/myapp.php?foo=1&bar=3", sig, p},
		{"http instead of https", "12345", "http://mycompany.com/myapp.php?foo=1&bar=2", sig, p},
		{"missing signature", "12345", u, "", p},
		{"not base64", "12345", u, "%%%", p},
		{"truncated", "12345", u, sig[:10], p},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := twilio.Validate(tt.token, tt.url, tt.params, tt.sig); err == nil {
				t.Fatal("Validate accepted")
			}
		})
	}
}
