package assertion

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func newTestVerifier(t testing.TB, keys KeySource, now func() time.Time, aud string) *Verifier {
	t.Helper()
	v, err := NewVerifier(VerifierConfig{Issuer: testIssuer, Audience: aud, Keys: keys, Now: now})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

// signES256 signs header and payload as a compact JWS with priv, building
// the token by hand so that the header can say anything.
func signES256(t testing.TB, priv *ecdsa.PrivateKey, header, payload any) string {
	t.Helper()
	input := b64JSON(t, header) + "." + b64JSON(t, payload)
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64(sig)
}

// storedKey returns the private key with the given ID from store.
func storedKey(t testing.TB, store *memStore, kid string) *ecdsa.PrivateKey {
	t.Helper()
	for _, k := range store.snapshot() {
		if k.ID == kid {
			priv, err := x509.ParsePKCS8PrivateKey(k.PrivateKey)
			if err != nil {
				t.Fatal(err)
			}
			return priv.(*ecdsa.PrivateKey)
		}
	}
	t.Fatalf("no key %q in store", kid)
	return nil
}

func wireClaimsFor(now time.Time) map[string]any {
	return map[string]any{
		"iss": testIssuer, "sub": "u-1001", "aud": "savings",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		"jti": "x", "preferred_username": "alice", "amr": []string{"pwd"},
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func TestVerify(t *testing.T) {
	store := &memStore{}
	clock := newClock()
	signer := newTestSigner(t, store, clock, nil)
	kid := signer.KeyID()
	priv := storedKey(t, store, kid)
	set, err := parseJWKS(signer.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	keys := StaticKeys(set)
	t0 := clock.Now()

	valid := mustSign(t, signer, testClaims())
	parts := strings.Split(valid, ".")
	es256Header := map[string]any{"alg": "ES256", "kid": kid, "typ": "JWT"}
	claims := wireClaimsFor(t0)

	// Someone else's P-256 key, and a signer on another store.
	attacker, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other := newTestSigner(t, &memStore{}, clock, nil)
	wrongIssuer := newTestSigner(t, store, clock, func(c *SignerConfig) { c.Issuer = "https://other.localhost" })

	// HS256 keyed with the public key, in the encodings a confused
	// verifier might use as an HMAC secret.
	pkix, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	hs256 := func(secret []byte) string {
		input := b64JSON(t, map[string]any{"alg": "HS256", "kid": kid, "typ": "JWT"}) + "." + b64JSON(t, claims)
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(input))
		return input + "." + b64(mac.Sum(nil))
	}
	josed := func(alg jose.SignatureAlgorithm, key any) string {
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
			(&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(claims)
		jws, err := sig.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jws.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	flipSig := func(tok string) string {
		p := strings.Split(tok, ".")
		sig, _ := base64.RawURLEncoding.DecodeString(p[2])
		sig[10] ^= 0x01
		return p[0] + "." + p[1] + "." + b64(sig)
	}
	attackerJWK, _ := json.Marshal(jose.JSONWebKey{Key: &attacker.PublicKey})

	tests := []struct {
		name  string
		token string
		now   time.Time // verifier clock; t0 when zero
		aud   string    // verifier audience; "savings" when empty
		want  error     // nil: must verify
	}{
		{name: "valid", token: valid},
		{name: "valid hand-built", token: signES256(t, priv, es256Header, claims)},
		{name: "valid at the end of the leeway", token: valid, now: t0.Add(time.Minute + DefaultLeeway - time.Second)},
		{name: "valid just inside nbf leeway", token: valid, now: t0.Add(-DefaultLeeway)},
		{name: "valid without typ", token: signES256(t, priv, map[string]any{"alg": "ES256", "kid": kid}, claims)},

		{name: "tampered payload", token: parts[0] + "." + b64JSON(t, with(claims, "sub", "u-1")) + "." + parts[2], want: ErrSignature},
		{name: "tampered header", token: b64JSON(t, with(es256Header, "x", "y")) + "." + parts[1] + "." + parts[2], want: ErrSignature},
		{name: "tampered signature", token: flipSig(valid), want: ErrSignature},
		{name: "signature from another payload", token: parts[0] + "." + parts[1] + "." + strings.Split(mustSign(t, signer, testClaims()), ".")[2], want: ErrSignature},
		{name: "truncated signature", token: parts[0] + "." + parts[1] + "." + parts[2][:20], want: ErrSignature},
		{name: "no signature", token: parts[0] + "." + parts[1] + ".", want: ErrSignature},
		{name: "attacker key under our kid", token: signES256(t, attacker, es256Header, claims), want: ErrSignature},
		{name: "attacker key embedded as jwk", token: signES256(t, attacker, with(es256Header, "jwk", json.RawMessage(attackerJWK)), claims), want: ErrSignature},

		{name: "expired", token: valid, now: t0.Add(time.Minute + DefaultLeeway), want: ErrExpired},
		{name: "long expired", token: valid, now: t0.Add(time.Hour), want: ErrExpired},
		{name: "not yet valid", token: valid, now: t0.Add(-DefaultLeeway - time.Second), want: ErrNotYetValid},
		{name: "nbf in the future", token: signES256(t, priv, es256Header, with(claims, "nbf", t0.Add(time.Minute).Unix())), want: ErrNotYetValid},
		{name: "iat in the future", token: signES256(t, priv, es256Header, with(claims, "iat", t0.Add(time.Minute).Unix(), "nbf", nil)), want: ErrNotYetValid},
		{name: "wrong audience", token: valid, aud: "carloans", want: ErrAudience},
		{name: "audience array", token: signES256(t, priv, es256Header, with(claims, "aud", []string{"savings", "carloans"})), want: ErrMalformed},
		{name: "no audience", token: signES256(t, priv, es256Header, with(claims, "aud", nil)), want: ErrAudience},
		{name: "wrong issuer", token: mustSign(t, wrongIssuer, testClaims()), want: ErrIssuer},
		{name: "no exp", token: signES256(t, priv, es256Header, with(claims, "exp", nil)), want: ErrMalformed},
		{name: "exp as string", token: signES256(t, priv, es256Header, with(claims, "exp", "9999999999")), want: ErrMalformed},
		{name: "no iat", token: signES256(t, priv, es256Header, with(claims, "iat", nil)), want: ErrMalformed},
		{name: "no sub", token: signES256(t, priv, es256Header, with(claims, "sub", nil)), want: ErrMalformed},

		{name: "alg none", token: b64JSON(t, map[string]any{"alg": "none", "kid": kid, "typ": "JWT"}) + "." + b64JSON(t, claims) + ".", want: ErrAlgorithm},
		{name: "alg None", token: b64JSON(t, map[string]any{"alg": "None", "kid": kid}) + "." + b64JSON(t, claims) + ".", want: ErrAlgorithm},
		{name: "alg none with signature", token: b64JSON(t, map[string]any{"alg": "none", "kid": kid}) + "." + b64JSON(t, claims) + "." + parts[2], want: ErrAlgorithm},
		{name: "no alg", token: b64JSON(t, map[string]any{"kid": kid}) + "." + b64JSON(t, claims) + "." + parts[2], want: ErrAlgorithm},
		{name: "alg lower case", token: b64JSON(t, with(es256Header, "alg", "es256")) + "." + parts[1] + "." + parts[2], want: ErrAlgorithm},
		{name: "HS256 keyed with PEM public key", token: hs256(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})), want: ErrAlgorithm},
		{name: "HS256 keyed with DER public key", token: hs256(pkix), want: ErrAlgorithm},
		{name: "HS256 keyed with JWKS", token: hs256(signer.JWKS()), want: ErrAlgorithm},
		{name: "RS256", token: josed(jose.RS256, rsaKey), want: ErrAlgorithm},
		{name: "PS256", token: josed(jose.PS256, rsaKey), want: ErrAlgorithm},
		{name: "ES384", token: josed(jose.ES384, p384), want: ErrAlgorithm},

		{name: "unknown kid", token: mustSign(t, other, testClaims()), want: ErrUnknownKey},
		{name: "no kid", token: signES256(t, priv, map[string]any{"alg": "ES256", "typ": "JWT"}, claims), want: ErrUnknownKey},

		{name: "empty", token: "", want: ErrMalformed},
		{name: "garbage", token: "not a token", want: ErrMalformed},
		{name: "two parts", token: parts[0] + "." + parts[1], want: ErrMalformed},
		{name: "four parts", token: valid + ".x", want: ErrMalformed},
		{name: "header not base64", token: "!!." + parts[1] + "." + parts[2], want: ErrMalformed},
		{name: "header not JSON", token: b64([]byte("alg")) + "." + parts[1] + "." + parts[2], want: ErrMalformed},
		{name: "payload not JSON", token: signES256(t, priv, es256Header, "just a string"), want: ErrMalformed},
		{name: "typ not JWT", token: signES256(t, priv, with(es256Header, "typ", "at+jwt"), claims), want: ErrMalformed},
		{name: "crit header", token: signES256(t, priv, with(es256Header, "crit", []string{"exp"}, "exp", 1), claims), want: ErrMalformed},
		{name: "JSON serialization", token: `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, want: ErrMalformed},
		{name: "oversized", token: parts[0] + "." + strings.Repeat("A", maxTokenSize) + "." + parts[2], want: ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			aud := tc.aud
			if aud == "" {
				aud = "savings"
			}
			v := newTestVerifier(t, keys, func() time.Time { return now }, aud)
			c, err := v.Verify(t.Context(), tc.token)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.Subject != "u-1001" || c.Username != "alice" || c.Audience != "savings" || c.Issuer != testIssuer {
					t.Errorf("claims = %+v", c)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify error = %v, want %v", err, tc.want)
			}
			if !reflect.DeepEqual(c, Claims{}) {
				t.Errorf("claims returned with an error: %+v", c)
			}
		})
	}
}

func TestVerifySkipsUnsuitableKeys(t *testing.T) {
	store := &memStore{}
	clock := newClock()
	signer := newTestSigner(t, store, clock, nil)
	kid := signer.KeyID()
	priv := storedKey(t, store, kid)
	tok := mustSign(t, signer, testClaims())
	pub := jose.JSONWebKey{Key: &priv.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)

	tests := []struct {
		name string
		keys []jose.JSONWebKey
		want error
	}{
		{"published for signing", []jose.JSONWebKey{pub}, nil},
		{"no alg or use", []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: kid}}, nil},
		{"duplicate kid, right key second", []jose.JSONWebKey{{Key: &rsaKey.PublicKey, KeyID: kid}, pub}, nil},
		{"published for encryption", []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: kid, Use: "enc"}}, ErrUnknownKey},
		{"published for another alg", []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: kid, Algorithm: "ES384"}}, ErrUnknownKey},
		{"RSA key", []jose.JSONWebKey{{Key: &rsaKey.PublicKey, KeyID: kid}}, ErrUnknownKey},
		{"P-384 key", []jose.JSONWebKey{{Key: &p384.PublicKey, KeyID: kid}}, ErrUnknownKey},
		{"symmetric key", []jose.JSONWebKey{{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: kid}}, ErrUnknownKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newTestVerifier(t, StaticKeys(jose.JSONWebKeySet{Keys: tc.keys}), clock.Now, "savings")
			_, err := v.Verify(t.Context(), tok)
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Fatalf("Verify error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNewVerifierConfig(t *testing.T) {
	keys := StaticKeys(jose.JSONWebKeySet{})
	tests := []struct {
		name string
		cfg  VerifierConfig
		ok   bool
	}{
		{"complete", VerifierConfig{Issuer: testIssuer, Audience: "savings", Keys: keys}, true},
		{"no issuer", VerifierConfig{Audience: "savings", Keys: keys}, false},
		{"no audience", VerifierConfig{Issuer: testIssuer, Keys: keys}, false},
		{"no keys", VerifierConfig{Issuer: testIssuer, Audience: "savings"}, false},
		{"negative leeway", VerifierConfig{Issuer: testIssuer, Audience: "savings", Keys: keys, Leeway: -time.Second}, false},
		{"huge leeway", VerifierConfig{Issuer: testIssuer, Audience: "savings", Keys: keys, Leeway: time.Hour}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewVerifier(tc.cfg); (err == nil) != tc.ok {
				t.Fatalf("NewVerifier error = %v, want ok = %v", err, tc.ok)
			}
		})
	}
}

func TestClaimsJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Claims
		err  bool
	}{
		{name: "integer dates", in: `{"iat":1700000000,"exp":1700000060}`, want: Claims{IssuedAt: time.Unix(1700000000, 0).UTC(), Expiry: time.Unix(1700000060, 0).UTC()}},
		{name: "fractional dates", in: `{"iat":1700000000.75}`, want: Claims{IssuedAt: time.Unix(1700000000, 0).UTC()}},
		{name: "exponent", in: `{"iat":1.7e9}`, want: Claims{IssuedAt: time.Unix(1700000000, 0).UTC()}},
		{name: "null date", in: `{"iat":null}`, want: Claims{}},
		{name: "unknown claims ignored", in: `{"sub":"u","roles":["admin"]}`, want: Claims{Subject: "u"}},
		{name: "string date", in: `{"exp":"1700000000"}`, err: true},
		{name: "huge date", in: `{"exp":1e300}`, err: true},
		{name: "boolean date", in: `{"exp":true}`, err: true},
		{name: "aud array", in: `{"aud":["savings"]}`, err: true},
		{name: "aud number", in: `{"aud":1}`, err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Claims
			err := json.Unmarshal([]byte(tc.in), &c)
			if tc.err {
				if err == nil {
					t.Fatalf("decoded %+v, want an error", c)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c, tc.want) {
				t.Errorf("got %+v, want %+v", c, tc.want)
			}
		})
	}

	// Round trip, and zero times are left out.
	in := testClaims()
	in.Issuer, in.ID = testIssuer, "j"
	in.IssuedAt = time.Unix(1700000000, 0).UTC()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"nbf"`) || strings.Contains(string(b), `"exp"`) {
		t.Errorf("zero times encoded: %s", b)
	}
	var out Claims
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
}

// FuzzVerify checks that no input makes Verify panic, and that whatever
// it accepts carries exactly the claims the gateway signed.
func FuzzVerify(f *testing.F) {
	store := &memStore{}
	clock := newClock()
	signer := newTestSigner(f, store, clock, nil)
	signed := mustSign(f, signer, testClaims())
	v := newTestVerifier(f, signer, clock.Now, "savings")
	want, err := v.Verify(f.Context(), signed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed)
	f.Add("")
	f.Add("a.b.c")
	f.Add(strings.Split(signed, ".")[0] + "..")
	f.Add(b64([]byte(`{"alg":"none"}`)) + "." + strings.Split(signed, ".")[1] + ".")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(t.Context(), token)
		if err != nil {
			return
		}
		if !reflect.DeepEqual(c, want) {
			t.Fatalf("accepted %q with claims %+v, want only %+v", token, c, want)
		}
	})
}
