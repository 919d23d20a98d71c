package credential

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/text/unicode/norm"
)

const (
	// MaxUsernameLen bounds a canonical username, in bytes.
	MaxUsernameLen = 64
	// MaxPasswordLen bounds what the gateway hashes, in bytes, so that a
	// huge body never reaches argon2id.
	MaxPasswordLen = 1024
)

// CanonicalUsername is the form usernames are stored and compared in:
// trimmed, Unicode NFKC, lowercase.
func CanonicalUsername(s string) string {
	return strings.ToLower(norm.NFKC.String(strings.TrimSpace(s)))
}

// ValidUsername reports whether a canonical username may be chosen.
func ValidUsername(u string) error {
	if len(u) < 3 || len(u) > MaxUsernameLen {
		return fmt.Errorf("a username has 3 to %d characters", MaxUsernameLen)
	}
	for _, c := range u {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '@') {
			return errors.New("a username may contain letters, digits and . - _ @ only")
		}
	}
	return nil
}
