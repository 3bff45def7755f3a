// Package bearer checks "Authorization: Bearer <token>" headers against
// a secret without keeping the secret or leaking it through timing.
package bearer

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Token is a secret's SHA-256 digest. The zero Token matches nothing
// but the empty token; use [New].
type Token struct {
	sum [sha256.Size]byte
}

// New returns the Token for secret.
func New(secret string) Token { return Token{sum: sha256.Sum256([]byte(secret))} }

// Authorized reports whether r carries "Authorization: Bearer <secret>"
// (the scheme in any case, surrounding space ignored).
func (t Token) Authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return t.Matches(strings.TrimSpace(token))
}

// Matches compares token with the secret as SHA-256 digests in constant
// time: both sides have the same length whatever the token's, so the
// comparison's time says nothing about the secret.
func (t Token) Matches(token string) bool {
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1
}
