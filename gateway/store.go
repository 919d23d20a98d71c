package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/portcullis/portcullis/assertion"
)

// ErrNotFound is returned by a store when the record asked for does not exist
// (or has expired, for records with a lifetime).
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by a store when a record would violate a uniqueness
// rule, such as a second user with the same username.
var ErrConflict = errors.New("conflict")

// User is a customer's login profile.
type User struct {
	ID string
	// Username is the name the customer logs in with, stored in its
	// canonical form (see CanonicalUsername).
	Username     string
	DisplayName  string
	PasswordHash string // argon2id, PHC string format
	// FailedLogins counts consecutive wrong passwords; a success resets it.
	FailedLogins int
	Locked       bool
	LockedAt     time.Time
	// Products are the routes (upstream apps) the customer's records
	// hold, by route name.
	Products  []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// UserStore keeps customer profiles. Implementations are safe for concurrent
// use. Lookups return ErrNotFound for an unknown user; CreateUser and
// UpdateUser return ErrConflict when the username belongs to another user.
type UserStore interface {
	CreateUser(ctx context.Context, u User) error
	// UserByName looks a user up by canonical username.
	UserByName(ctx context.Context, username string) (User, error)
	UserByID(ctx context.Context, id string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// SetPasswordHash replaces the user's password hash and nothing else
	// (a concurrent lock stays). ErrNotFound for an unknown user.
	SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error
	// UpdateUser replaces every field of the user with the given ID
	// except FailedLogins, which only the counter methods change.
	UpdateUser(ctx context.Context, u User) error
}

// LoginCounter counts failed password attempts. Increments are atomic: any
// number of concurrent failures, from any number of gateway replicas, all count.
type LoginCounter interface {
	// AddLoginFailure adds one to the user's consecutive failures and
	// returns the new count. ErrNotFound for an unknown user.
	AddLoginFailure(ctx context.Context, userID string) (int, error)
	// ResetLoginFailures sets the user's consecutive failures to zero
	// whatever they were (an administrator's unlock, a new password).
	ResetLoginFailures(ctx context.Context, userID string) error
	// ConfirmLogin is the compare-and-set that ends a successful password
	// check: in one atomic step it sets the user's consecutive failures to
	// zero if the profile is unlocked and has fewer than maxFailures
	// failures, and reports whether it did. false means a concurrent
	// failure locked (or reached the lock on) the profile after the
	// password was checked, and the login must be refused.
	// ErrNotFound for an unknown user.
	ConfirmLogin(ctx context.Context, userID string, maxFailures int) (bool, error)
	// LockUser locks the profile at the given time unless it is locked
	// already, and reports whether this call locked it (so that exactly one
	// of several concurrent lockers notifies). It changes nothing else.
	// ErrNotFound for an unknown user.
	LockUser(ctx context.Context, userID string, at time.Time) (bool, error)
	// AddHit adds one to the counter named key in the fixed window of the
	// given length that contains now, and returns the count in that window.
	// Used for failures per source address.
	AddHit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error)
	// ReleaseHit takes back one hit that AddHit counted in the window of
	// the given length that contains now (never below zero): a hit reserved
	// before the outcome was known, for an outcome that does not count.
	ReleaseHit(ctx context.Context, key string, window time.Duration, now time.Time) error
	// Hits returns the count AddHit would have reached in the window that
	// contains now, without adding to it: 0 for a key never hit there.
	Hits(ctx context.Context, key string, window time.Duration, now time.Time) (int, error)
}

// Session is the server side of a signed-in browser or API client on one host.
// Every host a customer visits after one login has its own Session (and its own
// host-only cookie); they share a LoginID so that logout ends them all.
type Session struct {
	// ID is the SHA-256 of the cookie token, hex encoded; the token itself is
	// never stored.
	ID       string
	LoginID  string
	UserID   string
	Host     string
	Methods  []string // authentication methods used, as in RFC 8176 ("pwd", "otp", ...)
	AuthTime time.Time
	// LastSeen is when the session was last used, for the idle limit.
	LastSeen time.Time
	// ExpiresAt is the absolute end of the login, shared by all its sessions.
	ExpiresAt time.Time
}

// SessionStore keeps sessions. GetSession returns ErrNotFound for an unknown
// or deleted session; expiry is the caller's decision, but implementations may
// drop sessions past ExpiresAt.
type SessionStore interface {
	CreateSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, id string) (Session, error)
	// TouchSession records use of the session at the given time.
	TouchSession(ctx context.Context, id string, at time.Time) error
	DeleteSession(ctx context.Context, id string) error
	// DeleteLogin deletes every session that shares the login ID.
	DeleteLogin(ctx context.Context, loginID string) error
}

// Grant is a single-use, short-lived permission to open a session on another
// host for an existing login (the cross-host sign-in exchange).
type Grant struct {
	// SessionID is the session on the login host that issued the grant.
	SessionID string
	Host      string // the host the grant may be redeemed on
	ExpiresAt time.Time
}

// GrantStore keeps exchange grants under the hash of their code.
type GrantStore interface {
	PutGrant(ctx context.Context, id string, g Grant) error
	// TakeGrant deletes and returns the grant in one atomic step, so a code
	// can be redeemed once only. ErrNotFound if it is absent or expired at now.
	TakeGrant(ctx context.Context, id string, now time.Time) (Grant, error)
}

// Store is everything the gateway keeps. Times round-trip with at least
// millisecond precision (in any location; the zero time stays zero). A
// record with a lifetime has expired at exactly its ExpiresAt. Reusing any
// record's ID, not only a username, is ErrConflict. An unreachable store is an error
// from any method, and the gateway denies.
type Store interface {
	UserStore
	LoginCounter
	SessionStore
	GrantStore
	assertion.KeyStore
	// Ping reports whether the store can be read and written: it proves a
	// write (one that changes nothing the gateway reads), not only a connection.
	Ping(ctx context.Context) error
	// Sweep deletes what has expired at now: sessions past ExpiresAt,
	// grants, counter windows. Stores that expire records by themselves
	// may do nothing.
	Sweep(ctx context.Context, now time.Time) error
	Close() error
}
