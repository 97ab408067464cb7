package kookoo

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Stream token limits.
const (
	// MinStreamKeyBytes is the shortest server key [NewStreamTokens]
	// accepts.
	MinStreamKeyBytes = 32
	// DefaultStreamTokenTTL is how long after NewCall KooKoo may open the
	// stream's WebSocket.
	DefaultStreamTokenTTL = 2 * time.Minute
	// maxStreamTokenBytes caps a token before any decoding.
	maxStreamTokenBytes = 1024
)

// Stream token errors.
var (
	// ErrStreamToken means a stream token is missing, malformed or not
	// signed with the server key.
	ErrStreamToken = errors.New("kookoo: invalid stream token")
	// ErrStreamTokenExpired means a correctly signed token is past its
	// expiry.
	ErrStreamTokenExpired = errors.New("kookoo: stream token expired")
)

// StreamClaim is what a stream token vouches for: the socket may carry the
// call SID of the connection Identifier while the stored call is still at
// Version (the version written when the stream was answered), until
// Expires.
type StreamClaim struct {
	Identifier string
	SID        string
	Version    int64
	Expires    time.Time
}

// StreamTokens issues and verifies the short-lived per-call tokens of
// stream URLs: an HMAC-SHA256 over the claim with a server key shared by
// every node, checked in constant time.
type StreamTokens struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// NewStreamTokens returns a token issuer keyed with key (at least
// [MinStreamKeyBytes]); ttl 0 is [DefaultStreamTokenTTL], now nil is
// time.Now.
func NewStreamTokens(key []byte, ttl time.Duration, now func() time.Time) (*StreamTokens, error) {
	if len(key) < MinStreamKeyBytes {
		return nil, fmt.Errorf("kookoo: stream key of %d bytes, at least %d", len(key), MinStreamKeyBytes)
	}
	if ttl <= 0 {
		ttl = DefaultStreamTokenTTL
	}
	if now == nil {
		now = time.Now
	}
	return &StreamTokens{key: append([]byte(nil), key...), ttl: ttl, now: now}, nil
}

type wireClaim struct {
	I string `json:"i"`
	S string `json:"s"`
	V int64  `json:"v"`
	E int64  `json:"e"` // Unix seconds
}

// Issue returns a token for identifier's call sid at version, valid for
// the issuer's TTL.
func (t *StreamTokens) Issue(identifier, sid string, version int64) string {
	payload, _ := json.Marshal(wireClaim{I: identifier, S: sid, V: version, E: t.now().Add(t.ttl).Unix()}) // plain fields always marshal
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + base64.RawURLEncoding.EncodeToString(t.sign(p))
}

func (t *StreamTokens) sign(payload string) []byte {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte("koel-stream-v1\x00"))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// Verify checks token and returns its claim. Errors wrap [ErrStreamToken]
// (malformed, forged) or [ErrStreamTokenExpired]; they never quote the
// token.
func (t *StreamTokens) Verify(token string) (StreamClaim, error) {
	if token == "" || len(token) > maxStreamTokenBytes {
		return StreamClaim{}, fmt.Errorf("%w: empty or over %d bytes", ErrStreamToken, maxStreamTokenBytes)
	}
	p, sig, ok := strings.Cut(token, ".")
	if !ok {
		return StreamClaim{}, fmt.Errorf("%w: no signature", ErrStreamToken)
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, t.sign(p)) {
		return StreamClaim{}, fmt.Errorf("%w: bad signature", ErrStreamToken)
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return StreamClaim{}, fmt.Errorf("%w: payload encoding", ErrStreamToken)
	}
	var w wireClaim
	if err := json.Unmarshal(raw, &w); err != nil || w.S == "" || w.I == "" {
		return StreamClaim{}, fmt.Errorf("%w: payload", ErrStreamToken)
	}
	c := StreamClaim{Identifier: w.I, SID: w.S, Version: w.V, Expires: time.Unix(w.E, 0)}
	if !t.now().Before(c.Expires) {
		return StreamClaim{}, fmt.Errorf("%w: expired at %s", ErrStreamTokenExpired, c.Expires.UTC().Format(time.RFC3339))
	}
	return c, nil
}
