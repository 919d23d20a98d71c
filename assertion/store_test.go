package assertion

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// memStore is an in-memory KeyStore.
type memStore struct {
	mu   sync.Mutex
	keys []Key
	err  error // returned by every method when set
}

func (m *memStore) SigningKeys(context.Context) ([]Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	out := make([]Key, len(m.keys))
	for i, k := range m.keys {
		k.PrivateKey = slices.Clone(k.PrivateKey)
		out[i] = k
	}
	slices.SortStableFunc(out, func(a, b Key) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

func (m *memStore) AddSigningKey(_ context.Context, k Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if slices.ContainsFunc(m.keys, func(o Key) bool { return o.ID == k.ID }) {
		return fmt.Errorf("key %s exists", k.ID)
	}
	k.PrivateKey = slices.Clone(k.PrivateKey)
	m.keys = append(m.keys, k)
	return nil
}

func (m *memStore) RetireSigningKey(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	for i := range m.keys {
		if m.keys[i].ID == id {
			m.keys[i].RetiredAt = at
			return nil
		}
	}
	return errors.New("not found")
}

func (m *memStore) setErr(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.err = err
}

func (m *memStore) snapshot() []Key {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.keys)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
