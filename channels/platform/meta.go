package platform

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/koelvoice/koel/ivr/api"
)

// Meta webhook headers (Messenger and the WhatsApp Cloud API).
const (
	HeaderHubSignature256 = "X-Hub-Signature-256"
	HeaderHubSignature    = "X-Hub-Signature"
)

// ErrBadSignature means a request's signature is missing, malformed or wrong.
var ErrBadSignature = errors.New("platform: bad signature")

// SignMeta returns the X-Hub-Signature-256 value of body:
// "sha256=" + lowercase hex HMAC-SHA256(app secret, raw body).
func SignMeta(appSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifyMeta checks a Meta webhook signature over the raw body, in constant
// time: X-Hub-Signature-256 when present, else the legacy X-Hub-Signature
// (HMAC-SHA1). An empty app secret never verifies.
func VerifyMeta(appSecret string, h http.Header, body []byte) error {
	if appSecret == "" {
		return ErrBadSignature
	}
	if v := h.Get(HeaderHubSignature256); v != "" {
		return checkHex(v, "sha256=", sha256.New, appSecret, body)
	}
	if v := h.Get(HeaderHubSignature); v != "" {
		return checkHex(v, "sha1=", sha1.New, appSecret, body)
	}
	return ErrBadSignature
}

func checkHex(v, prefix string, h func() hash.Hash, secret string, body []byte) error {
	// Split on the first "="; the algorithm name is case-insensitive.
	if len(v) <= len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(v[len(prefix):])
	if err != nil {
		return ErrBadSignature
	}
	mac := hmac.New(h, []byte(secret))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// MaxChallengeBytes caps hub.challenge.
const MaxChallengeBytes = 256

// ServeMetaVerification answers Meta's subscription check (GET with
// hub.mode, hub.verify_token, hub.challenge): the challenge as plain text
// when the mode is "subscribe" and the token matches verifyToken (constant
// time), else 403. An empty verifyToken never matches.
func ServeMetaVerification(w http.ResponseWriter, r *http.Request, verifyToken string) {
	q := r.URL.Query()
	mode, token, challenge := q.Get("hub.mode"), q.Get("hub.verify_token"), q.Get("hub.challenge")
	ok := mode == "subscribe" && EqualSecret(token, verifyToken)
	if !ok {
		api.WriteError(w, api.Errorf(http.StatusForbidden, "verification failed"))
		return
	}
	if challenge == "" || len(challenge) > MaxChallengeBytes || strings.ContainsAny(challenge, "<>&\"'\r\n\x00") {
		api.WriteError(w, api.Errorf(http.StatusBadRequest, "hub.challenge missing or malformed"))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(challenge))
}

// GraphError is the error body of Meta's Graph API (Messenger Send API,
// WhatsApp Cloud API).
type GraphError struct {
	Error struct {
		Message      string `json:"message"`
		Type         string `json:"type"`
		Code         int    `json:"code"`
		ErrorSubcode int    `json:"error_subcode"`
		FBTraceID    string `json:"fbtrace_id"`
	} `json:"error"`
}

// ClassifyGraph reads a Graph API error: rate-limit codes (4, 17, 32, 613,
// 80006, 80007, 130429, 131048, 131056) retry as rate_limited whatever the
// HTTP status, after the longest estimated_time_to_regain_access (minutes)
// of the X-Business-Use-Case-Usage / X-App-Usage / X-Page-Usage headers when
// Graph gives one; temporary codes (1, 2, 1200, 131000, 131016) retry as
// server errors; token and permission codes (190, 10, 200-299) are final
// auth errors; the rest keep the status's class.
func ClassifyGraph(_ int, header http.Header, body []byte) (string, string, time.Duration) {
	var ge GraphError
	if json.Unmarshal(body, &ge) != nil || ge.Error.Code == 0 {
		return "", "", 0
	}
	code := strconv.Itoa(ge.Error.Code)
	switch c := ge.Error.Code; {
	case c == 4 || c == 17 || c == 32 || c == 613 || c == 80006 || c == 80007 || c == 130429 || c == 131048 || c == 131056:
		return code, ClassRateLimited, graphRegainAccess(header)
	case c == 1 || c == 2 || c == 1200 || c == 131000 || c == 131016:
		return code, ClassServer, 0
	case c == 190 || c == 10 || (c >= 200 && c <= 299):
		return code, ClassAuth, 0
	}
	return code, "", 0
}

// graphRegainAccess reads Graph's usage headers for the longest
// estimated_time_to_regain_access, in minutes.
func graphRegainAccess(h http.Header) time.Duration {
	var longest time.Duration
	consider := func(minutes float64) {
		if d := time.Duration(minutes * float64(time.Minute)); d > longest {
			longest = d
		}
	}
	if v := h.Get("X-Business-Use-Case-Usage"); v != "" {
		var buc map[string][]struct {
			Minutes float64 `json:"estimated_time_to_regain_access"`
		}
		if json.Unmarshal([]byte(v), &buc) == nil {
			for _, list := range buc {
				for _, e := range list {
					consider(e.Minutes)
				}
			}
		}
	}
	for _, name := range []string{"X-App-Usage", "X-Page-Usage"} {
		var u struct {
			Minutes float64 `json:"estimated_time_to_regain_access"`
		}
		if v := h.Get(name); v != "" && json.Unmarshal([]byte(v), &u) == nil {
			consider(u.Minutes)
		}
	}
	return longest
}
