package assertion

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	// MaxTTL is the longest lifetime an assertion may have. An assertion
	// is a per-request credential, not a session.
	MaxTTL = 60 * time.Second
	// DefaultTTL is the lifetime of an assertion when SignerConfig.TTL is zero.
	DefaultTTL = MaxTTL
	// DefaultRetiredKeyGrace is how long a retired key stays published
	// when SignerConfig.RetiredKeyGrace is zero. It is much longer than
	// the TTL so that replicas that have not yet picked up a rotation
	// (and so still sign with the old key) are covered too.
	DefaultRetiredKeyGrace = 10 * time.Minute
	// JWKSMaxAge is the max-age the JWKS handler allows caches.
	JWKSMaxAge = 60 * time.Second
)

// ErrNoSigningKey is returned by Sign when the signer holds no key that may
// sign, which happens only when every stored key has been retired behind
// its back; Refresh creates a new one.
var ErrNoSigningKey = errors.New("assertion: no signing key")

// SignerConfig configures a Signer.
type SignerConfig struct {
	// Issuer is the gateway's issuer URL, the iss claim. Required.
	Issuer string
	// TTL is the lifetime of an assertion: DefaultTTL when zero, at most
	// MaxTTL.
	TTL time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Rand is the source of key material and assertion IDs; crypto/rand
	// when nil. It must be safe for concurrent use.
	Rand io.Reader
	// RetiredKeyGrace is how long a retired key stays in the JWKS after it
	// stops signing: DefaultRetiredKeyGrace when zero, at least TTL.
	RetiredKeyGrace time.Duration
	// PublishDelay is how long a new key from Rotate is published before it
	// signs; meanwhile the previous key keeps signing. With several
	// replicas, set it to at least the interval at which they call Refresh
	// plus JWKSMaxAge, so that an app meeting the new key can fetch it from
	// whichever replica answers. Zero, the default, signs with the new key
	// at once, which suits a single gateway.
	PublishDelay time.Duration
}

func (c *SignerConfig) setDefaults() error {
	if c.Issuer == "" {
		return errors.New("issuer is required")
	}
	if u, err := url.Parse(c.Issuer); err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("issuer %q is not an absolute URL", c.Issuer)
	}
	switch {
	case c.TTL == 0:
		c.TTL = DefaultTTL
	case c.TTL < time.Second:
		return fmt.Errorf("ttl %s is shorter than a second", c.TTL)
	case c.TTL > MaxTTL:
		return fmt.Errorf("ttl %s is longer than the maximum %s", c.TTL, MaxTTL)
	}
	switch {
	case c.RetiredKeyGrace == 0:
		c.RetiredKeyGrace = max(DefaultRetiredKeyGrace, c.TTL)
	case c.RetiredKeyGrace < c.TTL:
		return fmt.Errorf("retired key grace %s is shorter than the ttl %s", c.RetiredKeyGrace, c.TTL)
	}
	if c.PublishDelay < 0 {
		return fmt.Errorf("publish delay %s is negative", c.PublishDelay)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return nil
}

// Signer mints assertions with the gateway's current key and publishes the
// public half of every key an app may still meet. Keys live in a KeyStore
// shared by all replicas. A Signer is safe for concurrent use; Sign and JWKS
// take no locks.
type Signer struct {
	store KeyStore
	cfg   SignerConfig

	mu   sync.Mutex // serialises Refresh and Rotate
	view atomic.Pointer[keyView]
}

// NewSigner loads the keys in store, creating a first key if none is active.
// Replicas starting together may each create one; that is harmless, as each
// signs with the newest active key it knows and publishes them all.
func NewSigner(ctx context.Context, store KeyStore, cfg SignerConfig) (*Signer, error) {
	if store == nil {
		return nil, errors.New("assertion: new signer: key store is required")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("assertion: new signer: %w", err)
	}
	s := &Signer{store: store, cfg: cfg}
	if err := s.Refresh(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Refresh reloads the keys from the store, so that a rotation made by
// another replica takes effect here. If the store holds no active key it
// creates one. On error the signer keeps the keys it had.
func (s *Signer) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys, err := s.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("assertion: refresh keys: %w", err)
	}
	if !slices.ContainsFunc(keys, func(k Key) bool { return k.RetiredAt.IsZero() }) {
		k, err := generateKey(s.cfg.Rand, s.cfg.Now())
		if err != nil {
			return fmt.Errorf("assertion: refresh keys: %w", err)
		}
		if err := s.store.AddSigningKey(ctx, k); err != nil {
			return fmt.Errorf("assertion: refresh keys: add key: %w", err)
		}
		// Read back rather than append: another replica may have added
		// a key at the same moment.
		if keys, err = s.store.SigningKeys(ctx); err != nil {
			return fmt.Errorf("assertion: refresh keys: %w", err)
		}
	}
	return s.install(keys)
}

// Rotate creates a new key and retires every other active one (at once, or
// after PublishDelay). A retired key stops signing but stays in the JWKS
// for RetiredKeyGrace so that assertions it signed keep verifying.
func (s *Signer) Rotate(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys, err := s.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("assertion: rotate keys: %w", err)
	}
	now := s.cfg.Now()
	k, err := generateKey(s.cfg.Rand, now)
	if err != nil {
		return fmt.Errorf("assertion: rotate keys: %w", err)
	}
	if err := s.store.AddSigningKey(ctx, k); err != nil {
		return fmt.Errorf("assertion: rotate keys: add key: %w", err)
	}
	retireAt := now.Add(s.cfg.PublishDelay)
	var errs []error
	for _, old := range keys {
		if old.ID == k.ID || (!old.RetiredAt.IsZero() && !old.RetiredAt.After(retireAt)) {
			continue
		}
		if err := s.store.RetireSigningKey(ctx, old.ID, retireAt); err != nil {
			errs = append(errs, fmt.Errorf("retire key %s: %w", old.ID, err))
		}
	}
	// Install what the store now holds even if a retirement failed: the
	// new key is there and, being the newest, is the one that signs.
	if keys, err = s.store.SigningKeys(ctx); err != nil {
		errs = append(errs, err)
	} else if err := s.install(keys); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("assertion: rotate keys: %w", err)
	}
	return nil
}

// Sign fills in the issuer, times and ID of c and returns it as a signed
// JWT. The caller provides Subject, Audience (the route), AuthTime,
// AuthMethods and Username.
func (s *Signer) Sign(c Claims) (string, error) {
	if c.Subject == "" {
		return "", errors.New("assertion: sign: subject is required")
	}
	if c.Audience == "" {
		return "", errors.New("assertion: sign: audience is required")
	}
	now := s.cfg.Now()
	v := s.viewAt(now)
	if v.signing == nil {
		return "", ErrNoSigningKey
	}
	var id [16]byte
	if _, err := io.ReadFull(s.cfg.Rand, id[:]); err != nil {
		return "", fmt.Errorf("assertion: sign: read random: %w", err)
	}
	c.Issuer = s.cfg.Issuer
	c.ID = base64.RawURLEncoding.EncodeToString(id[:])
	c.IssuedAt = now
	c.NotBefore = now
	c.Expiry = now.Add(s.cfg.TTL)
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("assertion: sign: %w", err)
	}
	jws, err := v.signing.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("assertion: sign: %w", err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("assertion: sign: %w", err)
	}
	return token, nil
}

// KeyID returns the ID of the key Sign currently uses, or "" if none.
func (s *Signer) KeyID() string {
	if k := s.viewAt(s.cfg.Now()).signing; k != nil {
		return k.id
	}
	return ""
}

// JWKS returns the published key set as JSON: the public half of the
// signing key and of every key an unexpired assertion may carry.
func (s *Signer) JWKS() []byte {
	return bytes.Clone(s.viewAt(s.cfg.Now()).jwks)
}

// Keys returns the published keys with the given ID. With it a Signer is a
// KeySource, so the gateway (or a test) can verify its own assertions.
func (s *Signer) Keys(_ context.Context, kid string) ([]jose.JSONWebKey, error) {
	var out []jose.JSONWebKey
	for _, k := range s.viewAt(s.cfg.Now()).published {
		if k.KeyID == kid {
			out = append(out, k)
		}
	}
	return out, nil
}

// JWKSHandler serves JWKS to GET and HEAD requests.
func (s *Signer) JWKSHandler() http.Handler {
	cacheControl := "public, max-age=" + strconv.Itoa(int(JWKSMaxAge/time.Second))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body := s.viewAt(s.cfg.Now()).jwks
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", cacheControl)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body) // an error means the client has gone
	})
}

// ringKey is a stored key, parsed, with its jose signer built once.
type ringKey struct {
	id        string
	createdAt time.Time
	retiredAt time.Time
	der       []byte
	signer    jose.Signer
	public    jose.JSONWebKey
}

// keyView is what the signer derives from its keys at a moment: which key
// signs and which are published. Retirements, grace periods and publish
// delays end at known times, so a view holds for the interval [from, until)
// and is rebuilt, without I/O, when the clock leaves it.
type keyView struct {
	keys      []*ringKey // oldest first
	from      time.Time
	until     time.Time // zero: no end
	signing   *ringKey
	published []jose.JSONWebKey
	jwks      []byte
}

func (v *keyView) holds(now time.Time) bool {
	return !now.Before(v.from) && (v.until.IsZero() || now.Before(v.until))
}

func (s *Signer) viewAt(now time.Time) *keyView {
	v := s.view.Load()
	if v.holds(now) {
		return v
	}
	nv := s.buildView(v.keys, now)
	// Losing the race only means another goroutine stored an equally
	// good view (or Refresh stored a newer one).
	s.view.CompareAndSwap(v, nv)
	return nv
}

// install parses keys, reusing what is already parsed, and stores a new view.
// Called with s.mu held.
func (s *Signer) install(keys []Key) error {
	parsed := map[string]*ringKey{}
	if v := s.view.Load(); v != nil {
		for _, k := range v.keys {
			parsed[k.id] = k
		}
	}
	ring := make([]*ringKey, 0, len(keys))
	for _, k := range keys {
		rk := parsed[k.ID]
		if rk == nil || !bytes.Equal(rk.der, k.PrivateKey) {
			var err error
			if rk, err = parseKey(k); err != nil {
				return fmt.Errorf("assertion: key %s: %w", k.ID, err)
			}
		} else {
			// The key material is the same; the dates may have changed.
			c := *rk
			c.createdAt, c.retiredAt = k.CreatedAt, k.RetiredAt
			rk = &c
		}
		ring = append(ring, rk)
	}
	slices.SortStableFunc(ring, func(a, b *ringKey) int {
		return cmp.Or(a.createdAt.Compare(b.createdAt), cmp.Compare(a.id, b.id))
	})
	s.view.Store(s.buildView(ring, s.cfg.Now()))
	return nil
}

func (s *Signer) buildView(keys []*ringKey, now time.Time) *keyView {
	v := &keyView{keys: keys}
	boundary := func(t time.Time) {
		if t.After(now) {
			if v.until.IsZero() || t.Before(v.until) {
				v.until = t
			}
		} else if t.After(v.from) {
			v.from = t
		}
	}
	var newestLive, newestReady *ringKey
	for _, k := range keys {
		readyAt := k.createdAt.Add(s.cfg.PublishDelay)
		boundary(readyAt)
		live := k.retiredAt.IsZero() || now.Before(k.retiredAt)
		published := live
		if !k.retiredAt.IsZero() {
			dropAt := k.retiredAt.Add(s.cfg.RetiredKeyGrace)
			boundary(k.retiredAt)
			boundary(dropAt)
			published = now.Before(dropAt)
		}
		if live {
			newestLive = k
			if !now.Before(readyAt) {
				newestReady = k
			}
		}
		if published {
			v.published = append(v.published, k.public)
		}
	}
	// A key signs once it has been published for PublishDelay. If no live
	// key is that old (the very first key, or clocks that disagree), the
	// newest live key signs rather than none.
	v.signing = cmp.Or(newestReady, newestLive)
	if v.published == nil {
		v.published = []jose.JSONWebKey{}
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: v.published})
	if err != nil {
		// Public P-256 keys always marshal; keep the set well-formed
		// if that ever changes.
		jwks = []byte(`{"keys":[]}`)
	}
	v.jwks = jwks
	return v
}

func generateKey(random io.Reader, now time.Time) (Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return Key{}, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return Key{}, fmt.Errorf("generate key: %w", err)
	}
	// The key ID is the RFC 7638 thumbprint, so two replicas can never
	// give different keys the same ID.
	pub := jose.JSONWebKey{Key: &priv.PublicKey}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return Key{}, fmt.Errorf("generate key: %w", err)
	}
	return Key{
		ID:         base64.RawURLEncoding.EncodeToString(thumb),
		PrivateKey: der,
		CreatedAt:  now,
	}, nil
}

func parseKey(k Key) (*ringKey, error) {
	if k.ID == "" {
		return nil, errors.New("empty key ID")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(k.PrivateKey)
	if err != nil {
		return nil, err
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 key")
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: k.ID}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, err
	}
	return &ringKey{
		id:        k.ID,
		createdAt: k.CreatedAt,
		retiredAt: k.RetiredAt,
		der:       k.PrivateKey,
		signer:    signer,
		public: jose.JSONWebKey{
			Key:       &priv.PublicKey,
			KeyID:     k.ID,
			Algorithm: string(jose.ES256),
			Use:       "sig",
		},
	}, nil
}
