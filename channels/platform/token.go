package platform

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

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
	return subtle.ConstantTimeCompare([]byte(v), []byte(secret)) == 1
}
