package assertion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// KeySource supplies the public keys assertions are verified with.
// Implementations are safe for concurrent use.
type KeySource interface {
	// Keys returns the published keys whose ID is kid; none (and a nil
	// error) when no such key is published. An error means the keys could
	// not be obtained. A source that fetches keys may refetch on meeting
	// an unknown kid.
	Keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error)
}

// StaticKeys is a KeySource that always returns keys from set.
func StaticKeys(set jose.JSONWebKeySet) KeySource {
	return staticKeys{set: set}
}

type staticKeys struct{ set jose.JSONWebKeySet }

func (s staticKeys) Keys(_ context.Context, kid string) ([]jose.JSONWebKey, error) {
	return s.set.Key(kid), nil
}

const (
	// remoteRefetchInterval is the least time between two fetches: an
	// unknown kid, which anyone can put in a token, must not turn into a
	// flood of requests to the gateway.
	remoteRefetchInterval = 10 * time.Second
	// remoteMaxAge is how long a fetched set is used before it is fetched
	// again, so that keys the gateway stops publishing are forgotten.
	remoteMaxAge = 10 * time.Minute
	// maxJWKSSize bounds the response body read.
	maxJWKSSize = 1 << 20
)

// RemoteKeySet is a KeySource that fetches a JWKS over HTTP and caches it.
// It fetches again on meeting a kid it does not know, and when the cached
// set is older than ten minutes, but never more than once every ten
// seconds. When a fetch fails it keeps using the keys it has.
type RemoteKeySet struct {
	url         string
	client      *http.Client
	now         func() time.Time
	minInterval time.Duration
	maxAge      time.Duration

	cached atomic.Pointer[fetchedSet]

	fetchMu sync.Mutex // one fetch at a time; guards triedAt and lastErr
	triedAt time.Time
	lastErr error
}

type fetchedSet struct {
	set jose.JSONWebKeySet
	at  time.Time
}

// RemoteJWKS returns a RemoteKeySet for the JWKS at url, such as the
// gateway's https://login.example/.portcullis/jwks.json. A nil client
// means a client with a ten-second timeout. Nothing is fetched until the
// first Keys call.
func RemoteJWKS(url string, client *http.Client) *RemoteKeySet {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &RemoteKeySet{
		url:         url,
		client:      client,
		now:         time.Now,
		minInterval: remoteRefetchInterval,
		maxAge:      remoteMaxAge,
	}
}

// Keys implements KeySource.
func (r *RemoteKeySet) Keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	if c := r.cached.Load(); c != nil && r.now().Sub(c.at) < r.maxAge {
		if keys := c.set.Key(kid); len(keys) > 0 {
			return keys, nil
		}
	}

	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	// Another caller may have fetched while this one waited.
	now := r.now()
	c := r.cached.Load()
	if c != nil && now.Sub(c.at) < r.maxAge {
		if keys := c.set.Key(kid); len(keys) > 0 {
			return keys, nil
		}
	}
	if !r.triedAt.IsZero() && now.Sub(r.triedAt) < r.minInterval {
		if c != nil {
			return c.set.Key(kid), nil
		}
		return nil, fmt.Errorf("fetch jwks: %w (not retrying yet)", r.lastErr)
	}

	set, err := r.fetch(ctx)
	if err != nil {
		// A fetch the caller gave up on says nothing about the server.
		if ctx.Err() == nil {
			r.triedAt, r.lastErr = now, err
		}
		if c != nil {
			if keys := c.set.Key(kid); len(keys) > 0 {
				return keys, nil
			}
		}
		return nil, err
	}
	r.triedAt, r.lastErr = now, nil
	r.cached.Store(&fetchedSet{set: set, at: now})
	return set.Key(kid), nil
}

func (r *RemoteKeySet) fetch(ctx context.Context) (jose.JSONWebKeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks: %s: status %s", r.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks: %w", err)
	}
	if len(body) > maxJWKSSize {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks: %s: larger than %d bytes", r.url, maxJWKSSize)
	}
	return parseJWKS(body)
}

// parseJWKS decodes a JWKS, skipping keys it cannot parse (a key type it
// does not know must not hide the keys it does).
func parseJWKS(b []byte) (jose.JSONWebKeySet, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("parse jwks: %w", err)
	}
	if raw.Keys == nil {
		return jose.JSONWebKeySet{}, errors.New("parse jwks: no keys member")
	}
	var set jose.JSONWebKeySet
	for _, rk := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(rk); err != nil {
			continue
		}
		set.Keys = append(set.Keys, k)
	}
	return set, nil
}
