package assertion

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// jwksServer serves a signer's JWKS and counts the requests, or fails
// them when down is set.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int32
	down atomic.Bool
}

func newJWKSServer(t *testing.T, h http.Handler) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if s.down.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func newRemote(srv *jwksServer, clock *fakeClock) *RemoteKeySet {
	r := RemoteJWKS(srv.URL, srv.Client())
	r.now = clock.Now
	return r
}

func TestRemoteJWKS(t *testing.T) {
	store := &memStore{}
	clock := newClock()
	signer := newTestSigner(t, store, clock, nil)
	srv := newJWKSServer(t, signer.JWKSHandler())
	remote := newRemote(srv, clock)
	v := newTestVerifier(t, remote, clock.Now, "savings")

	verify := func(tok string) error {
		t.Helper()
		_, err := v.Verify(t.Context(), tok)
		return err
	}
	wantHits := func(n int32) {
		t.Helper()
		if got := srv.hits.Load(); got != n {
			t.Fatalf("JWKS fetched %d times, want %d", got, n)
		}
	}

	wantHits(0) // nothing fetched before it is needed
	tok1 := mustSign(t, signer, testClaims())
	if err := verify(tok1); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	wantHits(1)
	if err := verify(mustSign(t, signer, testClaims())); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	wantHits(1) // cached

	// A rotation right after the first fetch: the new kid is unknown and
	// the fetch is rate-limited, so it fails for now.
	clock.Advance(time.Second)
	if err := signer.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	tok2 := mustSign(t, signer, testClaims())
	if err := verify(tok2); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Verify within the refetch interval = %v, want ErrUnknownKey", err)
	}
	wantHits(1)
	if err := verify(tok1); err != nil {
		t.Fatalf("Verify with a cached key: %v", err)
	}

	// Once the interval has passed, the unknown kid triggers a refetch.
	clock.Advance(remoteRefetchInterval)
	if err := verify(tok2); err != nil {
		t.Fatalf("Verify after refetch: %v", err)
	}
	wantHits(2)

	// Tokens with made-up kids cost at most one fetch per interval.
	for range 20 {
		other := newTestSigner(t, &memStore{}, clock, nil)
		if err := verify(mustSign(t, other, testClaims())); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Verify unknown kid = %v, want ErrUnknownKey", err)
		}
	}
	clock.Advance(remoteRefetchInterval)
	for range 20 {
		other := newTestSigner(t, &memStore{}, clock, nil)
		if err := verify(mustSign(t, other, testClaims())); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Verify unknown kid = %v, want ErrUnknownKey", err)
		}
	}
	wantHits(3)

	// With the gateway down, known keys keep working past the maximum
	// age; an unknown kid reports that the keys are unavailable.
	srv.down.Store(true)
	clock.Advance(remoteMaxAge)
	tok3 := mustSign(t, signer, testClaims())
	if err := verify(tok3); err != nil {
		t.Fatalf("Verify with a stale cache: %v", err)
	}
	wantHits(4)
	clock.Advance(remoteRefetchInterval)
	other := newTestSigner(t, &memStore{}, clock, nil)
	if err := verify(mustSign(t, other, testClaims())); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("Verify unknown kid with the gateway down = %v, want ErrKeysUnavailable", err)
	}
	wantHits(5)

	// Back up: the stale set is replaced.
	srv.down.Store(false)
	clock.Advance(remoteRefetchInterval)
	if err := verify(mustSign(t, signer, testClaims())); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	wantHits(6)
}

func TestRemoteJWKSUnavailable(t *testing.T) {
	clock := newClock()
	signer := newTestSigner(t, &memStore{}, clock, nil)
	srv := newJWKSServer(t, signer.JWKSHandler())
	srv.down.Store(true)
	v := newTestVerifier(t, newRemote(srv, clock), clock.Now, "savings")
	tok := mustSign(t, signer, testClaims())

	for range 3 {
		if _, err := v.Verify(t.Context(), tok); !errors.Is(err, ErrKeysUnavailable) {
			t.Fatalf("Verify = %v, want ErrKeysUnavailable", err)
		}
	}
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times after failing, want 1", n)
	}
	srv.down.Store(false)
	clock.Advance(remoteRefetchInterval)
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Errorf("Verify after recovery: %v", err)
	}
}

func TestRemoteJWKSConcurrent(t *testing.T) {
	clock := newClock()
	signer := newTestSigner(t, &memStore{}, clock, nil)
	srv := newJWKSServer(t, signer.JWKSHandler())
	v := newTestVerifier(t, newRemote(srv, clock), clock.Now, "savings")
	tok := mustSign(t, signer, testClaims())
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := v.Verify(t.Context(), tok); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times by concurrent verifiers, want 1", n)
	}
}

func TestRemoteJWKSBadResponses(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"not JSON", "<html>"},
		{"no keys member", `{"kid":"x"}`},
		{"too large", `{"keys":[],"padding":"` + strings.Repeat("a", maxJWKSSize) + `"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			if _, err := RemoteJWKS(srv.URL, srv.Client()).Keys(t.Context(), "k"); err == nil {
				t.Error("Keys succeeded")
			}
		})
	}
}

func TestParseJWKSSkipsUnknownKeys(t *testing.T) {
	signer := newTestSigner(t, &memStore{}, newClock(), nil)
	good, err := parseJWKS(signer.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	doc := []byte(`{"keys":[{"kty":"XYZ","kid":"future"},` + string(signer.JWKS()[len(`{"keys":[`):]))
	set, err := parseJWKS(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].KeyID != good.Keys[0].KeyID {
		t.Errorf("parsed %d keys from %s, want only %q", len(set.Keys), doc, good.Keys[0].KeyID)
	}
}

func TestStaticKeys(t *testing.T) {
	src := StaticKeys(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{KeyID: "a"}, {KeyID: "b"}}})
	keys, err := src.Keys(t.Context(), "b")
	if err != nil || len(keys) != 1 || keys[0].KeyID != "b" {
		t.Errorf("Keys(b) = %v, %v", keys, err)
	}
	if keys, err := src.Keys(t.Context(), "c"); err != nil || len(keys) != 0 {
		t.Errorf("Keys(c) = %v, %v; want none", keys, err)
	}
}
