package ivr

import (
	"crypto/sha256"
	"crypto/subtle"
)

// HashToken is how API tokens are stored: their SHA-256. Tokens are random
// 256-bit values, so a fast hash is enough; the point is that a leaked
// database does not leak usable tokens.
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// TokenMatches reports, in constant time, whether token hashes to hash. An
// empty token or hash never matches.
func TokenMatches(hash []byte, token string) bool {
	if len(hash) != sha256.Size || token == "" {
		return false
	}
	return subtle.ConstantTimeCompare(hash, HashToken(token)) == 1
}
