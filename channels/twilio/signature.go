package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"sort"
	"strings"
)

// HeaderSignature is the header Twilio signs webhooks with.
const HeaderSignature = "X-Twilio-Signature"

// ErrBadSignature means X-Twilio-Signature is missing or does not match.
var ErrBadSignature = errors.New("twilio: bad signature")

// Signature returns the X-Twilio-Signature of a request to fullURL with the
// POST parameters params (nil for GET and JSON webhooks): base64 of
// HMAC-SHA1(auth token, URL + every name+value pair, sorted). Repeated names
// contribute every value.
func Signature(authToken, fullURL string, params url.Values) string {
	pairs := make([]string, 0, len(params))
	for k, vs := range params {
		for _, v := range vs {
			pairs = append(pairs, k+v)
		}
	}
	sort.Strings(pairs)
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(fullURL))
	for _, p := range pairs {
		mac.Write([]byte(p))
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Validate checks signature against fullURL and params in constant time.
// Like Twilio's SDKs it accepts the signature computed with the URL as
// given, with the scheme's default port added, or with any port removed
// (proxies and Twilio disagree on whether ":443" is part of the URL). An
// empty auth token never validates.
func Validate(authToken, fullURL string, params url.Values, signature string) error {
	if authToken == "" || signature == "" {
		return ErrBadSignature
	}
	got, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return ErrBadSignature
	}
	ok := false
	for _, u := range urlVariants(fullURL) {
		want, _ := base64.StdEncoding.DecodeString(Signature(authToken, u, params))
		// Every variant is compared, so timing does not say which matched.
		if hmac.Equal(got, want) {
			ok = true
		}
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}

// ValidateJSON checks a JSON-bodied webhook: the URL (carrying
// bodySHA256) is signed with no parameters, and bodySHA256 must be the hex
// SHA-256 of the raw body.
func ValidateJSON(authToken, fullURL string, body []byte, signature string) error {
	u, err := url.Parse(fullURL)
	if err != nil {
		return ErrBadSignature
	}
	want := sha256.Sum256(body)
	got, err := hex.DecodeString(u.Query().Get("bodySHA256"))
	if err != nil || !hmac.Equal(got, want[:]) {
		return ErrBadSignature
	}
	return Validate(authToken, fullURL, nil, signature)
}

// urlVariants returns fullURL as given, with the default port and without a
// port.
func urlVariants(fullURL string) []string {
	out := []string{fullURL}
	u, err := url.Parse(fullURL)
	if err != nil || u.Host == "" {
		return out
	}
	host, _, err := net.SplitHostPort(u.Host)
	if err != nil {
		// No port: add the default one.
		def := map[string]string{"https": "443", "http": "80"}[strings.ToLower(u.Scheme)]
		if def != "" {
			v := *u
			v.Host = net.JoinHostPort(u.Host, def)
			out = append(out, v.String())
		}
		return out
	}
	v := *u
	v.Host = host
	if strings.Contains(host, ":") {
		v.Host = "[" + host + "]"
	}
	return append(out, v.String())
}
