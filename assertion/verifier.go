package assertion

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Errors from Verify, each wrapped with detail. Branch with errors.Is.
var (
	// ErrMalformed: not a compact JWS, or a header or claim that cannot
	// be decoded, or a required claim (sub, iat, exp) missing.
	ErrMalformed = errors.New("malformed")
	// ErrAlgorithm: the header names an algorithm other than ES256,
	// "none" and HMAC included.
	ErrAlgorithm = errors.New("algorithm not allowed")
	// ErrUnknownKey: no published ES256 key has the header's kid.
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("invalid signature")
	ErrIssuer    = errors.New("issuer mismatch")
	ErrAudience  = errors.New("audience mismatch")
	ErrExpired   = errors.New("expired")
	// ErrNotYetValid: nbf or iat is later than now, beyond the leeway.
	ErrNotYetValid = errors.New("not yet valid")
	// ErrKeysUnavailable: the key source failed, so the assertion could
	// not be checked at all. Unlike the others this says nothing about
	// the assertion.
	ErrKeysUnavailable = errors.New("keys unavailable")
)

const (
	// DefaultLeeway is the clock skew Verify tolerates when
	// VerifierConfig.Leeway is zero.
	DefaultLeeway = 5 * time.Second
	// maxTokenSize bounds the input Verify will parse.
	maxTokenSize = 8 << 10
)

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Issuer is the gateway's issuer URL; iss must equal it. Required.
	Issuer string
	// Audience is this app's route name; aud must equal it. Required.
	Audience string
	// Keys supplies the gateway's public keys, usually RemoteJWKS.
	Keys KeySource
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Leeway is the clock skew tolerated on exp, nbf and iat:
	// DefaultLeeway when zero, at most a minute.
	Leeway time.Duration
}

// Verifier checks assertions. It is what an upstream app uses to trust the
// identity the gateway hands it. A Verifier is safe for concurrent use.
type Verifier struct {
	cfg VerifierConfig
}

// NewVerifier validates cfg and returns a Verifier.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("assertion: new verifier: issuer is required")
	case cfg.Audience == "":
		return nil, errors.New("assertion: new verifier: audience is required")
	case cfg.Keys == nil:
		return nil, errors.New("assertion: new verifier: key source is required")
	case cfg.Leeway < 0 || cfg.Leeway > time.Minute:
		return nil, fmt.Errorf("assertion: new verifier: leeway %s is not between 0 and 1m", cfg.Leeway)
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Verifier{cfg: cfg}, nil
}

// Audience returns the audience the verifier requires.
func (v *Verifier) Audience() string { return v.cfg.Audience }

// joseHeader is the part of the protected header Verify reads itself,
// before any key is involved.
type joseHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Crit json.RawMessage `json:"crit"`
}

// Verify checks token and returns its claims. It accepts only a compact
// ES256 JWS whose kid names a published key, whose signature verifies, and
// whose iss, aud and times are right. Every error wraps one of the Err
// values of this package.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	if token == "" {
		return Claims{}, fmt.Errorf("assertion: %w: empty", ErrMalformed)
	}
	if len(token) > maxTokenSize {
		return Claims{}, fmt.Errorf("assertion: %w: longer than %d bytes", ErrMalformed, maxTokenSize)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, fmt.Errorf("assertion: %w: not a compact JWS", ErrMalformed)
	}
	rawHeader, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return Claims{}, fmt.Errorf("assertion: %w: header: %w", ErrMalformed, err)
	}
	var h joseHeader
	if err := json.Unmarshal(rawHeader, &h); err != nil {
		return Claims{}, fmt.Errorf("assertion: %w: header: %w", ErrMalformed, err)
	}
	// The algorithm is fixed here, never taken from the token: this is
	// what defeats "none" and HMAC-with-the-public-key.
	if h.Alg != string(jose.ES256) {
		return Claims{}, fmt.Errorf("assertion: %w: %q", ErrAlgorithm, h.Alg)
	}
	if h.Typ != "" && !strings.EqualFold(h.Typ, "JWT") {
		return Claims{}, fmt.Errorf("assertion: %w: typ %q", ErrMalformed, h.Typ)
	}
	if h.Crit != nil {
		return Claims{}, fmt.Errorf("assertion: %w: crit header", ErrMalformed)
	}
	if h.Kid == "" {
		return Claims{}, fmt.Errorf("assertion: %w: no kid", ErrUnknownKey)
	}

	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return Claims{}, fmt.Errorf("assertion: %w: %w", ErrMalformed, err)
	}
	keys, err := v.cfg.Keys.Keys(ctx, h.Kid)
	if err != nil {
		return Claims{}, fmt.Errorf("assertion: %w: %w", ErrKeysUnavailable, err)
	}
	var payload []byte
	found := false
	for _, k := range keys {
		pub, ok := es256Key(k, h.Kid)
		if !ok {
			continue
		}
		found = true
		if payload, err = jws.Verify(pub); err == nil {
			break
		}
	}
	switch {
	case !found:
		return Claims{}, fmt.Errorf("assertion: %w: kid %q", ErrUnknownKey, h.Kid)
	case err != nil:
		return Claims{}, fmt.Errorf("assertion: %w", ErrSignature)
	}

	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Claims{}, fmt.Errorf("assertion: %w: claims: %w", ErrMalformed, err)
	}
	if err := v.check(c); err != nil {
		return Claims{}, err
	}
	return c, nil
}

func (v *Verifier) check(c Claims) error {
	switch {
	case c.Subject == "":
		return fmt.Errorf("assertion: %w: no sub", ErrMalformed)
	case c.IssuedAt.IsZero():
		return fmt.Errorf("assertion: %w: no iat", ErrMalformed)
	case c.Expiry.IsZero():
		return fmt.Errorf("assertion: %w: no exp", ErrMalformed)
	case c.Issuer != v.cfg.Issuer:
		return fmt.Errorf("assertion: %w: %q", ErrIssuer, c.Issuer)
	case c.Audience != v.cfg.Audience:
		return fmt.Errorf("assertion: %w: %q", ErrAudience, c.Audience)
	}
	now := v.cfg.Now()
	leeway := v.cfg.Leeway
	if !now.Before(c.Expiry.Add(leeway)) {
		return fmt.Errorf("assertion: %w at %s", ErrExpired, c.Expiry.Format(time.RFC3339))
	}
	if !c.NotBefore.IsZero() && now.Add(leeway).Before(c.NotBefore) {
		return fmt.Errorf("assertion: %w until %s", ErrNotYetValid, c.NotBefore.Format(time.RFC3339))
	}
	if now.Add(leeway).Before(c.IssuedAt) {
		return fmt.Errorf("assertion: %w: issued in the future, at %s", ErrNotYetValid, c.IssuedAt.Format(time.RFC3339))
	}
	return nil
}

// es256Key returns the P-256 public key in k if k may verify ES256
// signatures under kid.
func es256Key(k jose.JSONWebKey, kid string) (*ecdsa.PublicKey, bool) {
	if k.KeyID != kid ||
		(k.Algorithm != "" && k.Algorithm != string(jose.ES256)) ||
		(k.Use != "" && k.Use != "sig") {
		return nil, false
	}
	var pub *ecdsa.PublicKey
	switch key := k.Key.(type) {
	case *ecdsa.PublicKey:
		pub = key
	case *ecdsa.PrivateKey:
		pub = &key.PublicKey
	default:
		return nil, false
	}
	if pub.Curve != elliptic.P256() {
		return nil, false
	}
	return pub, true
}
