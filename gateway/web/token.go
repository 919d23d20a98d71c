package web

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
)

// tokenBytes is the size of session tokens, exchange codes and CSRF tokens:
// 256 bits of randomness.
const tokenBytes = 32

// NewToken returns a random token for a cookie or URL and the ID it is stored
// under (its SHA-256), so that a copy of the store does not hold usable tokens.
func NewToken(rand io.Reader) (token, id string, err error) {
	b := make([]byte, tokenBytes)
	if _, err := io.ReadFull(rand, b); err != nil {
		return "", "", fmt.Errorf("random token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, TokenID(token), nil
}

// TokenID is the ID a token is stored under.
func TokenID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ValidToken reports whether s has the shape of a token NewToken makes, so
// that garbage never reaches the store.
func ValidToken(s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

// NewToken returns a random token from the site's randomness.
func (s *Site) NewToken() (token, id string, err error) { return NewToken(s.rand) }
