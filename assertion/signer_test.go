package assertion

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const testIssuer = "https://login.localhost"

func testClaims() Claims {
	return Claims{
		Subject:     "u-1001",
		Audience:    "savings",
		AuthTime:    time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC),
		AuthMethods: []string{"pwd", "otp"},
		Username:    "alice",
	}
}

func newTestSigner(t testing.TB, store KeyStore, clock *fakeClock, mod func(*SignerConfig)) *Signer {
	t.Helper()
	cfg := SignerConfig{Issuer: testIssuer, Now: clock.Now}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewSigner(context.Background(), store, cfg)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s
}

func mustSign(t testing.TB, s *Signer, c Claims) string {
	t.Helper()
	tok, err := s.Sign(c)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return tok
}

// tokenHeader decodes the protected header of a compact JWS.
func tokenHeader(t testing.TB, tok string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatalf("decode header: %v", err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("decode header: %v", err)
	}
	return h
}

// jwksKIDs returns the key IDs in a JWKS document.
func jwksKIDs(t testing.TB, doc []byte) []string {
	t.Helper()
	set, err := parseJWKS(doc)
	if err != nil {
		t.Fatalf("parse jwks: %v", err)
	}
	var ids []string
	for _, k := range set.Keys {
		ids = append(ids, k.KeyID)
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids ...string) []string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

func TestSignerConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  SignerConfig
		ok   bool
	}{
		{"defaults", SignerConfig{Issuer: testIssuer}, true},
		{"max ttl", SignerConfig{Issuer: testIssuer, TTL: 60 * time.Second}, true},
		{"no issuer", SignerConfig{}, false},
		{"relative issuer", SignerConfig{Issuer: "login.localhost"}, false},
		{"ttl over a minute", SignerConfig{Issuer: testIssuer, TTL: 61 * time.Second}, false},
		{"negative ttl", SignerConfig{Issuer: testIssuer, TTL: -time.Second}, false},
		{"grace shorter than ttl", SignerConfig{Issuer: testIssuer, TTL: 30 * time.Second, RetiredKeyGrace: 29 * time.Second}, false},
		{"negative publish delay", SignerConfig{Issuer: testIssuer, PublishDelay: -time.Second}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSigner(t.Context(), &memStore{}, tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("NewSigner error = %v, want ok = %v", err, tc.ok)
			}
		})
	}
}

func TestSignFillsClaims(t *testing.T) {
	clock := newClock()
	s := newTestSigner(t, &memStore{}, clock, func(c *SignerConfig) { c.TTL = 45 * time.Second })
	in := testClaims()
	in.Issuer = "https://evil.example" // overwritten
	in.Expiry = clock.Now().Add(24 * time.Hour)
	tok := mustSign(t, s, in)

	h := tokenHeader(t, tok)
	if h["alg"] != "ES256" || h["typ"] != "JWT" || h["kid"] != s.KeyID() || s.KeyID() == "" {
		t.Errorf("header = %v, want alg ES256, typ JWT, kid %q", h, s.KeyID())
	}
	var got Claims
	if err := json.Unmarshal(payloadOf(t, tok), &got); err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	if got.Issuer != testIssuer || got.Subject != in.Subject || got.Audience != "savings" ||
		got.Username != "alice" || !slices.Equal(got.AuthMethods, []string{"pwd", "otp"}) ||
		!got.AuthTime.Equal(in.AuthTime) {
		t.Errorf("claims = %+v", got)
	}
	if !got.IssuedAt.Equal(now) || !got.NotBefore.Equal(now) || !got.Expiry.Equal(now.Add(45*time.Second)) {
		t.Errorf("iat, nbf, exp = %s, %s, %s; want %s, %s, %s", got.IssuedAt, got.NotBefore, got.Expiry, now, now, now.Add(45*time.Second))
	}
	if raw, _ := base64.RawURLEncoding.DecodeString(got.ID); len(raw) != 16 {
		t.Errorf("jti = %q, want 16 random bytes", got.ID)
	}
	// aud is a plain string on the wire.
	var wire map[string]any
	if err := json.Unmarshal(payloadOf(t, tok), &wire); err != nil {
		t.Fatal(err)
	}
	if _, ok := wire["aud"].(string); !ok {
		t.Errorf("aud on the wire = %#v, want a string", wire["aud"])
	}
}

func TestSignRequiresSubjectAndAudience(t *testing.T) {
	s := newTestSigner(t, &memStore{}, newClock(), nil)
	for _, c := range []Claims{{Audience: "savings"}, {Subject: "u-1"}} {
		if _, err := s.Sign(c); err == nil {
			t.Errorf("Sign(%+v) succeeded", c)
		}
	}
}

func payloadOf(t testing.TB, tok string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSecondSignerReusesKey(t *testing.T) {
	store := &memStore{}
	clock := newClock()
	s1 := newTestSigner(t, store, clock, nil)
	s2 := newTestSigner(t, store, clock, nil)
	if n := len(store.snapshot()); n != 1 {
		t.Fatalf("store holds %d keys, want 1", n)
	}
	if s1.KeyID() != s2.KeyID() {
		t.Errorf("signers use keys %q and %q, want the same", s1.KeyID(), s2.KeyID())
	}
	// Each verifies the other's assertions.
	v := newTestVerifier(t, s1, clock.Now, "savings")
	if _, err := v.Verify(t.Context(), mustSign(t, s2, testClaims())); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// barrierStore holds the first n SigningKeys calls until all n have
// arrived, so that n signers starting together all see an empty store.
type barrierStore struct {
	*memStore
	wg sync.WaitGroup
}

func (b *barrierStore) SigningKeys(ctx context.Context) ([]Key, error) {
	keys, err := b.memStore.SigningKeys(ctx)
	if len(keys) == 0 {
		b.wg.Done()
		b.wg.Wait()
	}
	return keys, err
}

func TestConcurrentStartTolerated(t *testing.T) {
	store := &barrierStore{memStore: &memStore{}}
	store.wg.Add(2)
	clock := newClock()
	signers := make([]*Signer, 2)
	var wg sync.WaitGroup
	for i := range signers {
		wg.Go(func() {
			s, err := NewSigner(t.Context(), store, SignerConfig{Issuer: testIssuer, Now: clock.Now})
			if err != nil {
				t.Error(err)
			}
			signers[i] = s
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	keys := store.snapshot()
	if len(keys) != 2 {
		t.Fatalf("store holds %d keys, want 2 (one per signer)", len(keys))
	}
	for _, s := range signers {
		if err := s.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if signers[0].KeyID() != signers[1].KeyID() {
		t.Errorf("after refresh signers use %q and %q, want the same", signers[0].KeyID(), signers[1].KeyID())
	}
	want := sorted(keys[0].ID, keys[1].ID)
	for i, s := range signers {
		if got := jwksKIDs(t, s.JWKS()); !slices.Equal(got, want) {
			t.Errorf("signer %d publishes %v, want %v", i, got, want)
		}
	}
}

func TestRotate(t *testing.T) {
	store := &memStore{}
	clock := newClock()
	const grace = 2 * time.Minute
	s := newTestSigner(t, store, clock, func(c *SignerConfig) { c.RetiredKeyGrace = grace })
	replica := newTestSigner(t, store, clock, func(c *SignerConfig) { c.RetiredKeyGrace = grace })
	v := newTestVerifier(t, s, clock.Now, "savings")

	k1 := s.KeyID()
	tok1 := mustSign(t, s, testClaims())
	clock.Advance(10 * time.Second)
	rotatedAt := clock.Now()
	if err := s.Rotate(t.Context()); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	k2 := s.KeyID()
	if k2 == k1 || k2 == "" {
		t.Fatalf("after Rotate key = %q, want a new one (old %q)", k2, k1)
	}
	tok2 := mustSign(t, s, testClaims())
	if kid := tokenHeader(t, tok2)["kid"]; kid != k2 {
		t.Errorf("new assertion kid = %v, want %q", kid, k2)
	}
	for _, k := range store.snapshot() {
		if k.ID == k1 && !k.RetiredAt.Equal(rotatedAt) {
			t.Errorf("old key retired at %s, want %s", k.RetiredAt, rotatedAt)
		}
	}
	if got, want := jwksKIDs(t, s.JWKS()), sorted(k1, k2); !slices.Equal(got, want) {
		t.Errorf("JWKS = %v, want %v", got, want)
	}
	for name, tok := range map[string]string{"retired key": tok1, "new key": tok2} {
		if _, err := v.Verify(t.Context(), tok); err != nil {
			t.Errorf("Verify %s: %v", name, err)
		}
	}

	// The replica signs with the old key until it refreshes.
	if replica.KeyID() != k1 {
		t.Errorf("replica before refresh uses %q, want %q", replica.KeyID(), k1)
	}
	if err := replica.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if replica.KeyID() != k2 {
		t.Errorf("replica after refresh uses %q, want %q", replica.KeyID(), k2)
	}

	// Just before the grace ends the old key is still published ...
	clock.Advance(grace - time.Second)
	if got := jwksKIDs(t, s.JWKS()); !slices.Contains(got, k1) {
		t.Errorf("JWKS before grace ends = %v, want it to hold %q", got, k1)
	}
	// ... and then it is gone, with no Refresh needed.
	clock.Advance(time.Second)
	for name, signer := range map[string]*Signer{"signer": s, "replica": replica} {
		if got, want := jwksKIDs(t, signer.JWKS()), []string{k2}; !slices.Equal(got, want) {
			t.Errorf("%s JWKS after grace = %v, want %v", name, got, want)
		}
	}
	// A verifier whose clock still finds tok1 fresh rejects it now that
	// its key is unpublished.
	early := newTestVerifier(t, s, func() time.Time { return rotatedAt }, "savings")
	if _, err := early.Verify(t.Context(), tok1); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Verify with dropped key = %v, want ErrUnknownKey", err)
	}
	if _, err := early.Verify(t.Context(), tok2); err != nil {
		t.Errorf("Verify with current key: %v", err)
	}
}

func TestRotatePublishDelay(t *testing.T) {
	store := &memStore{}
	clock := newClock()
	const delay = 30 * time.Second
	s := newTestSigner(t, store, clock, func(c *SignerConfig) {
		c.PublishDelay = delay
		c.RetiredKeyGrace = 2 * time.Minute
	})
	k1 := s.KeyID()
	if k1 == "" {
		t.Fatal("the first key must sign at once despite the publish delay")
	}
	clock.Advance(time.Hour)
	if err := s.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	var k2 string
	for _, k := range store.snapshot() {
		if k.ID != k1 {
			k2 = k.ID
		}
	}
	if got := s.KeyID(); got != k1 {
		t.Errorf("right after Rotate key = %q, want the old %q", got, k1)
	}
	if got, want := jwksKIDs(t, s.JWKS()), sorted(k1, k2); !slices.Equal(got, want) {
		t.Errorf("JWKS = %v, want %v (the new key published before it signs)", got, want)
	}
	clock.Advance(delay - time.Second)
	if got := s.KeyID(); got != k1 {
		t.Errorf("before the delay ends key = %q, want %q", got, k1)
	}
	clock.Advance(time.Second)
	if got := s.KeyID(); got != k2 {
		t.Errorf("after the delay key = %q, want %q", got, k2)
	}
	if kid := tokenHeader(t, mustSign(t, s, testClaims()))["kid"]; kid != k2 {
		t.Errorf("kid = %v, want %q", kid, k2)
	}
	clock.Advance(2 * time.Minute)
	if got, want := jwksKIDs(t, s.JWKS()), []string{k2}; !slices.Equal(got, want) {
		t.Errorf("JWKS after grace = %v, want %v", got, want)
	}
}

func TestRefreshKeepsKeysOnStoreError(t *testing.T) {
	store := &memStore{}
	clock := newClock()
	s := newTestSigner(t, store, clock, nil)
	k := s.KeyID()
	store.setErr(errors.New("store down"))
	if err := s.Refresh(t.Context()); err == nil {
		t.Fatal("Refresh succeeded with the store down")
	}
	if err := s.Rotate(t.Context()); err == nil {
		t.Fatal("Rotate succeeded with the store down")
	}
	if s.KeyID() != k {
		t.Errorf("key = %q, want %q kept", s.KeyID(), k)
	}
	if _, err := s.Sign(testClaims()); err != nil {
		t.Errorf("Sign: %v", err)
	}
	if _, err := NewSigner(t.Context(), store, SignerConfig{Issuer: testIssuer}); err == nil {
		t.Error("NewSigner succeeded with the store down")
	}
}

func TestRefreshRejectsCorruptKey(t *testing.T) {
	store := &memStore{keys: []Key{{ID: "bad", PrivateKey: []byte("not a key"), CreatedAt: newClock().Now()}}}
	if _, err := NewSigner(t.Context(), store, SignerConfig{Issuer: testIssuer}); err == nil {
		t.Fatal("NewSigner succeeded with a corrupt key in the store")
	}
}

func TestRefreshCreatesKeyWhenAllRetired(t *testing.T) {
	store := &memStore{}
	clock := newClock()
	s := newTestSigner(t, store, clock, nil)
	k1 := s.KeyID()
	if err := store.RetireSigningKey(t.Context(), k1, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if k := s.KeyID(); k == "" || k == k1 {
		t.Errorf("key after refresh = %q, want a new one", k)
	}
}

func TestJWKSHandler(t *testing.T) {
	clock := newClock()
	s := newTestSigner(t, &memStore{}, clock, nil)
	if err := s.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	h := s.JWKSHandler()

	t.Run("GET", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.portcullis/jwks.json", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("status = %d", rec.Code)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		if cc := rec.Header().Get("Cache-Control"); !strings.Contains(cc, "max-age=60") {
			t.Errorf("Cache-Control = %q", cc)
		}
		var doc struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Keys) != 2 {
			t.Fatalf("%d keys, want 2", len(doc.Keys))
		}
		for _, k := range doc.Keys {
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
				if _, ok := k[private]; ok {
					t.Errorf("key %v has private member %q", k["kid"], private)
				}
			}
			want := map[string]string{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig"}
			for name, val := range want {
				if k[name] != val {
					t.Errorf("key %v: %s = %v, want %q", k["kid"], name, k[name], val)
				}
			}
			if kid, _ := k["kid"].(string); kid == "" {
				t.Errorf("key without kid: %v", k)
			}
		}
		if !strings.Contains(rec.Body.String(), s.KeyID()) {
			t.Errorf("JWKS lacks the signing key %q", s.KeyID())
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/", nil))
		if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
			t.Errorf("status %d, body %d bytes; want 200 and none", rec.Code, rec.Body.Len())
		}
	})
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions} {
		t.Run(m, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(m, "/", nil))
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("status = %d, want 405", rec.Code)
			}
			if a := rec.Header().Get("Allow"); a != "GET, HEAD" {
				t.Errorf("Allow = %q", a)
			}
		})
	}
}

func TestJWKSReturnsCopy(t *testing.T) {
	s := newTestSigner(t, &memStore{}, newClock(), nil)
	b := s.JWKS()
	clear(b)
	if _, err := parseJWKS(s.JWKS()); err != nil {
		t.Errorf("JWKS after caller changed its copy: %v", err)
	}
}

func TestSignConcurrent(t *testing.T) {
	store := &memStore{}
	clock := newClock()
	s := newTestSigner(t, store, clock, nil)
	v := newTestVerifier(t, s, clock.Now, "savings")

	const workers, each = 8, 50
	tokens := make(chan string, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				tok, err := s.Sign(testClaims())
				if err != nil {
					t.Error(err)
					return
				}
				tokens <- tok
				_ = s.JWKS()
			}
		})
	}
	wg.Go(func() {
		for range 3 {
			if err := s.Rotate(t.Context()); err != nil {
				t.Error(err)
			}
			if err := s.Refresh(t.Context()); err != nil {
				t.Error(err)
			}
			clock.Advance(time.Second)
		}
	})
	wg.Wait()
	close(tokens)

	seen := map[string]bool{}
	for tok := range tokens {
		c, err := v.Verify(t.Context(), tok)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if seen[c.ID] {
			t.Fatalf("jti %q repeated", c.ID)
		}
		seen[c.ID] = true
	}
	if len(seen) != workers*each {
		t.Errorf("%d assertions, want %d", len(seen), workers*each)
	}
}

func BenchmarkSign(b *testing.B) {
	s, err := NewSigner(context.Background(), &memStore{}, SignerConfig{Issuer: testIssuer})
	if err != nil {
		b.Fatal(err)
	}
	c := testClaims()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Sign(c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Sign(c); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkVerify(b *testing.B) {
	s, err := NewSigner(context.Background(), &memStore{}, SignerConfig{Issuer: testIssuer})
	if err != nil {
		b.Fatal(err)
	}
	set, err := parseJWKS(s.JWKS())
	if err != nil {
		b.Fatal(err)
	}
	v, err := NewVerifier(VerifierConfig{Issuer: testIssuer, Audience: "savings", Keys: StaticKeys(set)})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := s.Sign(testClaims())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			b.Fatal(err)
		}
	}
}

var _ KeySource = (*Signer)(nil)
