package pushapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// authorized reports whether r carries "Authorization: Bearer <secret>"
// (the scheme in any case). Token and secret are compared as SHA-256
// digests in constant time: both sides have the same length whatever
// the token's, so the comparison's time says nothing about the secret.
func (s *Server) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return s.tokenMatches(strings.TrimSpace(token))
}

// tokenMatches compares token with the secret on their digests.
func (s *Server) tokenMatches(token string) bool {
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], s.secretSum[:]) == 1
}
