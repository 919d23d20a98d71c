package session

import (
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// cache keeps recently used sessions with their users so that the proxy does
// not read the store on every request. Entries live briefly (revocation on
// this instance removes them at once). The zero cache keeps nothing: every
// lookup misses.
type cache struct {
	lru *expirable.LRU[string, Identity]
}

func newCache(size int, ttl time.Duration) cache {
	if size <= 0 {
		return cache{}
	}
	return cache{lru: expirable.NewLRU[string, Identity](size, nil, ttl)}
}

func (c cache) get(sid string) (Identity, bool) {
	if c.lru == nil {
		return Identity{}, false
	}
	return c.lru.Get(sid)
}

func (c cache) add(sid string, id Identity) {
	if c.lru != nil {
		c.lru.Add(sid, id)
	}
}

func (c cache) remove(sid string) {
	if c.lru != nil {
		c.lru.Remove(sid)
	}
}

// purge drops every entry.
func (c cache) purge() {
	if c.lru != nil {
		c.lru.Purge()
	}
}

// removeLogin drops every session of the login.
func (c cache) removeLogin(loginID string) {
	if c.lru == nil {
		return
	}
	for _, sid := range c.lru.Keys() {
		if id, ok := c.lru.Peek(sid); ok && id.Session.LoginID == loginID {
			c.lru.Remove(sid)
		}
	}
}
