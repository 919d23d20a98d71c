// Package credential checks what people sign in with: the argon2id
// password hasher and the username rules, one-time security codes,
// authenticator-app (TOTP) codes, challenge answers and passkeys
// (WebAuthn). It keeps no state: callers store what it seals, and single use,
// expiry and attempt limits are the store's atomic steps.
package credential

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters. The defaults are OWASP's
// recommended minimum for argon2id: 19 MiB of memory, 2 iterations, 1 lane.
type Params struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
	// MaxConcurrent bounds how many hashes run at once, so a burst of
	// logins queues instead of exhausting memory (each hash holds
	// MemoryKiB for its duration) or every core (proxied requests keep a
	// core to themselves).
	MaxConcurrent int
	// QueueTimeout bounds how long a hash waits for a slot; past it the
	// hash fails with ErrBusy and the caller answers 503 with Retry-After,
	// rather than letting a queue grow without end. 0 means 2 seconds.
	QueueTimeout time.Duration
	// Nice lowers the scheduling priority of the threads that hash (0
	// keeps it, 19 is the lowest; see compute): when the cores are busy,
	// proxied requests come first.
	Nice int
}

// DefaultParams returns OWASP's argon2id parameters, with hashing bounded
// below the core count (one hash on one or two cores, one fewer than the
// cores on more) and at a lower priority (DefaultNice) than proxying.
func DefaultParams() Params {
	return Params{MemoryKiB: 19 * 1024, Time: 2, Threads: 1, MaxConcurrent: max(1, runtime.NumCPU()-1),
		QueueTimeout: defaultQueueTimeout, Nice: DefaultNice}
}

// defaultQueueTimeout is how long a hash waits for a slot by default.
const defaultQueueTimeout = 2 * time.Second

// ErrBusy is a hash that found every slot taken for its whole QueueTimeout.
var ErrBusy = errors.New("password: every hashing slot is busy")

const (
	saltLen = 16
	keyLen  = 32
)

// ErrPasswordHash reports a stored hash that cannot be read.
var ErrPasswordHash = errors.New("malformed password hash")

// Hasher hashes and verifies passwords with argon2id, running at most
// MaxConcurrent hashes at a time. It is safe for concurrent use.
type Hasher struct {
	params Params
	rand   io.Reader
	slots  chan struct{}
	wait   time.Duration // the queue timeout
	// dummy is a hash of a random password, verified against when the
	// username is unknown so that both cases cost one argon2id run.
	dummy string
}

// NewHasher returns a Hasher with the given parameters and randomness.
func NewHasher(p Params, rand io.Reader) (*Hasher, error) {
	if p.MemoryKiB < 8*1024 || p.Time < 1 || p.Threads < 1 {
		return nil, fmt.Errorf("password: parameters too weak: memory %d KiB, time %d, threads %d", p.MemoryKiB, p.Time, p.Threads)
	}
	if p.MaxConcurrent < 1 {
		return nil, fmt.Errorf("password: max concurrent hashes must be at least 1, got %d", p.MaxConcurrent)
	}
	if p.QueueTimeout < 0 {
		return nil, fmt.Errorf("password: queue timeout %v is negative", p.QueueTimeout)
	}
	if p.Nice < 0 || p.Nice > 19 {
		return nil, fmt.Errorf("password: nice %d is outside 0 to 19", p.Nice)
	}
	wait := p.QueueTimeout
	if wait == 0 {
		wait = defaultQueueTimeout
	}
	h := &Hasher{params: p, rand: rand, slots: make(chan struct{}, p.MaxConcurrent), wait: wait}
	secret := make([]byte, 32)
	if _, err := io.ReadFull(rand, secret); err != nil {
		return nil, fmt.Errorf("password: dummy: %w", err)
	}
	dummy, err := h.Hash(context.Background(), base64.RawStdEncoding.EncodeToString(secret))
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	wait := time.NewTimer(h.wait)
	defer wait.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-wait.C:
		return ErrBusy
	case <-ctx.Done():
		return fmt.Errorf("password: waiting for a hash slot: %w", ctx.Err())
	}
}

func (h *Hasher) release() { <-h.slots }

// Hash returns the PHC-format argon2id hash of password with a fresh salt.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := io.ReadFull(h.rand, salt); err != nil {
		return "", fmt.Errorf("password: salt: %w", err)
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	p := h.params
	var key []byte
	h.compute(func() { key = argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, keyLen) })
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Verify reports whether password matches the stored hash. An empty hash
// (an unknown user, or a profile without a password) is checked against the
// dummy hash so that the answer takes the same time, and is always false.
func (h *Hasher) Verify(ctx context.Context, hash, password string) (bool, error) {
	known := hash != ""
	if !known {
		hash = h.dummy
	}
	var p Params
	var version int
	var saltB64, keyB64 string
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, ErrPasswordHash
	}
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, ErrPasswordHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil ||
		p.MemoryKiB == 0 || p.Time == 0 || p.Threads == 0 || p.MemoryKiB > 1<<22 || p.Time > 64 {
		return false, ErrPasswordHash
	}
	saltB64, keyB64 = parts[4], parts[5]
	salt, err1 := base64.RawStdEncoding.DecodeString(saltB64)
	want, err2 := base64.RawStdEncoding.DecodeString(keyB64)
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false, ErrPasswordHash
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	var got []byte
	h.compute(func() { got = argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want))) })
	return subtle.ConstantTimeCompare(got, want) == 1 && known, nil
}

// NeedsRehash reports whether a stored hash uses weaker parameters than h.
func (h *Hasher) NeedsRehash(hash string) bool {
	want := fmt.Sprintf("m=%d,t=%d,p=%d", h.params.MemoryKiB, h.params.Time, h.params.Threads)
	parts := strings.Split(hash, "$")
	return len(parts) != 6 || parts[3] != want
}
