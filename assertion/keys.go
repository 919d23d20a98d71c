// Package assertion mints and verifies the signed identity assertion the
// gateway hands to upstream apps: a short-lived ES256 JWT whose audience is the
// route, verifiable against the gateway's JWKS.
package assertion

import (
	"context"
	"time"
)

// Key is one ES256 signing key as kept in a store.
type Key struct {
	ID string
	// PrivateKey is the PKCS #8 DER encoding of the ECDSA P-256 private key.
	PrivateKey []byte
	CreatedAt  time.Time
	// RetiredAt is zero for the active key. A retired key no longer signs
	// but stays published in the JWKS until it is old enough that no
	// assertion it signed can still be valid.
	RetiredAt time.Time
}

// KeyStore keeps signing keys. Implementations are safe for concurrent use.
type KeyStore interface {
	// SigningKeys returns every stored key, oldest first.
	SigningKeys(ctx context.Context) ([]Key, error)
	AddSigningKey(ctx context.Context, k Key) error
	// RetireSigningKey marks a key retired at the given time; ErrNotFound
	// semantics are the store's (the gateway treats any error as failure).
	RetireSigningKey(ctx context.Context, id string, at time.Time) error
}
