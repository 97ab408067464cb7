package platform

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// EqualSecret reports whether got equals want in time that depends on
// neither their contents nor their lengths (both are hashed first). An
// empty want never matches.
func EqualSecret(got, want string) bool {
	if want == "" {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// SharedSecret reports, in constant time, whether the request's
// Authorization header carries secret, bare or after a scheme word ("App",
// "Bearer", "Basic" is not stripped). An empty secret never matches.
func SharedSecret(r *http.Request, secret string) bool {
	if secret == "" {
		return false
	}
	v := strings.TrimSpace(r.Header.Get("Authorization"))
	for _, scheme := range []string{"App ", "Bearer ", "Token "} {
		if len(v) > len(scheme) && strings.EqualFold(v[:len(scheme)], scheme) {
			v = strings.TrimSpace(v[len(scheme):])
			break
		}
	}
	return EqualSecret(v, secret)
}
