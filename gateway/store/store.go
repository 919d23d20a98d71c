// Package store is the contract between the gateway and the places it keeps
// state: the records it keeps and the parts a store is made of. Each part is
// an interface of its own, so that an operator can keep users in PostgreSQL
// and sessions, counters and single-use records in Redis; a store that keeps
// everything (the embedded SQLite store) implements them all. The packages
// that use a part declare the few methods they call; the conformance suite in
// storetest checks each part on its own.
//
// Rules every part keeps:
//   - Implementations are safe for concurrent use, by any number of
//     goroutines and gateway replicas.
//   - Times round-trip with at least millisecond precision, in any location;
//     the zero time stays zero.
//   - A record with a lifetime has expired at exactly its ExpiresAt.
//   - Reusing any record's ID, not only a username, is ErrConflict.
//   - An unreachable store is an error from any method, and the gateway
//     denies.
package store

import (
	"context"
	"errors"
	"time"
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
	// canonical form (see credential.CanonicalUsername).
	Username     string
	DisplayName  string
	PasswordHash string // argon2id, PHC string format
	// FailedLogins counts consecutive wrong passwords; a success resets it.
	FailedLogins int
	// StepUpFailures counts step-up answers in a row that did not pass
	// (security codes, authenticator codes, challenge answers), over every
	// code and login: only a passed step-up and an unlock (an
	// administrator's, a completed recovery) reset it.
	StepUpFailures int
	Locked         bool
	LockedAt       time.Time
	// Products are the routes (upstream apps) the customer's records
	// hold, by route name.
	Products []string
	// SecurityPhone is the number security codes go to, in E.164 form;
	// empty when none is set. It is not the contact phone.
	SecurityPhone string
	// Email is the address notifications (and, where the policy enables
	// it, codes) go to; empty when none is on file.
	Email string
	// CustomerID is the bank's customer ID the profile was created for
	// (see selfservice.Directory); empty for a profile made otherwise (an
	// administrator's). One customer ID has at most one profile.
	CustomerID string
	// ConsentAt is when the customer agreed to electronic delivery, and
	// ConsentVersion the version of the consent text they were shown;
	// the zero time and "" when they never did.
	ConsentAt      time.Time
	ConsentVersion string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Users keeps customer profiles. Lookups return ErrNotFound for an unknown
// user. Every change is a targeted update of the fields it names, made in one
// atomic step, so concurrent changes to different fields never overwrite each
// other; each also sets UpdatedAt to the time given, and returns ErrNotFound
// for an unknown user.
type Users interface {
	// CreateUser stores a new user, every field as given. ErrConflict when
	// the ID, the username or a non-empty customer ID is taken.
	CreateUser(ctx context.Context, u User) error
	// UserByName looks a user up by canonical username.
	UserByName(ctx context.Context, username string) (User, error)
	// UserByCustomerID looks up the profile of a customer ID; ErrNotFound
	// when the customer has none, and for the empty ID.
	UserByCustomerID(ctx context.Context, customerID string) (User, error)
	UserByID(ctx context.Context, id string) (User, error)
	// ListUsers returns every user, ordered by username.
	ListUsers(ctx context.Context) ([]User, error)

	// SetPasswordHash replaces the user's password hash and nothing else
	// (a concurrent lock stays).
	SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error
	// SetUsername renames the user; ErrConflict when the name belongs to
	// another user.
	SetUsername(ctx context.Context, userID, username string, at time.Time) error
	// SetDisplayName replaces the name the gateway greets the user by.
	SetDisplayName(ctx context.Context, userID, name string, at time.Time) error
	// SetProducts replaces the routes the user's records hold.
	SetProducts(ctx context.Context, userID string, products []string, at time.Time) error
	// SetSecurityPhone replaces the number security codes go to (E.164;
	// empty removes it).
	SetSecurityPhone(ctx context.Context, userID, phone string, at time.Time) error
	// SetEmail replaces the address notifications go to (empty removes
	// it).
	SetEmail(ctx context.Context, userID, email string, at time.Time) error

	// AddLoginFailure adds one to the user's consecutive failures and
	// returns the new count. Any number of concurrent failures all count.
	AddLoginFailure(ctx context.Context, userID string) (int, error)
	// ResetLoginFailures sets the user's consecutive failures to zero
	// whatever they were (a new password).
	ResetLoginFailures(ctx context.Context, userID string) error
	// ConfirmLogin is the compare-and-set that ends a successful password
	// check: in one atomic step it sets the user's consecutive failures to
	// zero if the profile is unlocked and has fewer than maxFailures
	// failures, and reports whether it did. false means a concurrent
	// failure locked (or reached the lock on) the profile after the
	// password was checked, and the login must be refused.
	ConfirmLogin(ctx context.Context, userID string, maxFailures int) (bool, error)
	// LockUser locks the profile at the given time unless it is locked
	// already, and reports whether this call locked it (so that exactly one
	// of several concurrent lockers notifies). It changes nothing else but
	// UpdatedAt.
	LockUser(ctx context.Context, userID string, at time.Time) (bool, error)
	// UnlockUser unlocks the profile and sets its consecutive failures and
	// step-up failures to zero in one step (an administrator's unlock, a
	// completed recovery), and reports whether it was locked.
	UnlockUser(ctx context.Context, userID string, at time.Time) (bool, error)

	// AddStepUpFailure adds one to the user's step-up failures and returns
	// the new count: a step-up answer reserves its place before it is
	// judged. Any number of concurrent calls all count, each returning a
	// count of its own.
	AddStepUpFailure(ctx context.Context, userID string) (int, error)
	// ConfirmStepUp is the compare-and-set that ends a passed step-up: in
	// one atomic step it sets the user's step-up failures to zero if the
	// profile is unlocked and has at most maxFailures of them (the passing
	// answer's own reservation included), and reports whether it did.
	// false means the profile was locked, or concurrent answers reached
	// the limit, after the answer was judged, and the step-up must be
	// refused.
	ConfirmStepUp(ctx context.Context, userID string, maxFailures int) (bool, error)
}

// Hits counts events per key in fixed time windows: failed logins per source
// address, codes sent per number, and the like. Windows are back to back and
// aligned to an instant the store chooses (the Unix epoch will do).
type Hits interface {
	// AddHit adds one to the counter named key in the fixed window of the
	// given length that contains now, and returns the count in that
	// window. Any number of concurrent hits all count.
	AddHit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error)
	// ReleaseHit takes back one hit that AddHit counted in the window of
	// the given length that contains now (never below zero): a hit
	// reserved before the outcome was known, for an outcome that does not
	// count.
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
	// DeviceID is the registered device the login was made from (the
	// Device's ID), shared by all the login's sessions; empty when the
	// device was not registered. Removing the device ends the sessions
	// that name it.
	DeviceID string
}

// Sessions keeps sessions. GetSession returns ErrNotFound for an unknown or
// deleted session; expiry is the caller's decision, but implementations may
// drop sessions past ExpiresAt.
type Sessions interface {
	CreateSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, id string) (Session, error)
	// TouchSession records use of the session at the given time.
	TouchSession(ctx context.Context, id string, at time.Time) error
	DeleteSession(ctx context.Context, id string) error
	// DeleteLogin deletes every session that shares the login ID.
	DeleteLogin(ctx context.Context, loginID string) error
	// ListUserSessions returns every session of the user, on every host
	// and of every login, most recently seen first; none is an empty
	// list, not an error. Sessions past ExpiresAt may be listed.
	ListUserSessions(ctx context.Context, userID string) ([]Session, error)
	// DeleteUserSessions deletes every session of the user except the one
	// whose ID is keep ("" keeps none), in one atomic step, and returns
	// the IDs it deleted. A session created while it runs is either
	// deleted and returned or kept and not returned, never one without
	// the other.
	DeleteUserSessions(ctx context.Context, userID, keep string) ([]string, error)
}

// SessionUsers is an optional part for a store that keeps both sessions and
// users: it reads a session together with its user in one step, which is
// what the gateway needs on every request whose session it has not cached.
// The gateway uses it when one store is both its Sessions and its Users and
// implements it; otherwise it calls GetSession and then UserByID.
type SessionUsers interface {
	// GetSessionUser returns the session with the given ID as GetSession
	// does, with the user whose ID is its UserID as UserByID does, both as
	// of one instant. ErrNotFound for an unknown or deleted session. A
	// session whose user does not exist is returned with the zero User
	// (an empty ID) and no error.
	GetSessionUser(ctx context.Context, id string) (Session, User, error)
}

// SessionTouches is an optional part of a Sessions store: it records the use
// of many sessions in one step, so that the gateway can write the LastSeen
// of every session used in the last moment at once rather than one write per
// session. The gateway falls back to TouchSession when a store lacks it.
type SessionTouches interface {
	// TouchSessions sets the LastSeen of each session named in seen to the
	// time given for it, as TouchSession does for one, in one atomic step.
	// A session that does not exist is skipped, not an error.
	TouchSessions(ctx context.Context, seen map[string]time.Time) error
}

// Record is a single-use, expiring record: the cross-host exchange code, and
// the security codes, recovery tokens and WebAuthn challenges of the flows
// that need one. The store keeps it whole and treats Payload as opaque.
type Record struct {
	// ID is what the holder presents, hashed (never the secret itself).
	ID string
	// Kind says what the record is for ("exchange", ...); a record is
	// found only under its own kind, so a code of one kind is never taken
	// as another.
	Kind string
	// Subject is whom or what the record is for: a session, a user, a
	// login flow.
	Subject string
	// Payload is whatever the kind needs; nil and empty are the same.
	Payload []byte
	// Attempts counts failed uses so far (see AttemptRecord).
	Attempts  int
	ExpiresAt time.Time
}

// Records keeps single-use records. Every method that finds a record finds it
// only under its own kind and only while now is before its ExpiresAt;
// otherwise ErrNotFound.
type Records interface {
	// PutRecord stores a new record. ErrConflict when a record with the
	// same kind and ID exists and has not expired at now; an expired one
	// is replaced.
	PutRecord(ctx context.Context, r Record, now time.Time) error
	// GetRecord returns the record without using it up: what a resend
	// needs to know of the code it replaces.
	GetRecord(ctx context.Context, kind, id string, now time.Time) (Record, error)
	// TakeRecord deletes and returns the record in one atomic step, so it
	// is used once only: of any number of concurrent takers, one gets it
	// and the rest ErrNotFound.
	TakeRecord(ctx context.Context, kind, id string, now time.Time) (Record, error)
	// AttemptRecord adds one to the record's Attempts and returns the
	// record as it is after that, in one atomic step: a guess reserves
	// its attempt before it is judged, so any number of concurrent guesses
	// all count against the record's limit.
	AttemptRecord(ctx context.Context, kind, id string, now time.Time) (Record, error)
}

// Device is a browser the customer registered after passing a step-up: it
// skips the step-up at later logins (the password is still asked).
type Device struct {
	// ID is the SHA-256 of the device cookie's secret, hex encoded; the
	// secret itself is never stored.
	ID     string
	UserID string
	// Name is what the person sees in the device list, from the browser's
	// description of itself.
	Name       string
	CreatedAt  time.Time
	LastUsedAt time.Time
	// ExpiresAt ends the registration; the policy data sets its lifetime.
	ExpiresAt time.Time
}

// Devices keeps registered devices. A device is found only while now is
// before its ExpiresAt; otherwise ErrNotFound, as for an unknown ID.
type Devices interface {
	// AddDevice stores a new device. ErrConflict when the ID is taken.
	AddDevice(ctx context.Context, d Device) error
	// DeviceByID returns the device with the given ID.
	DeviceByID(ctx context.Context, id string, now time.Time) (Device, error)
	// TouchDevice records use of the device at the given time.
	TouchDevice(ctx context.Context, id string, at time.Time) error
	// ListDevices returns the user's live devices, most recently used
	// first.
	ListDevices(ctx context.Context, userID string, now time.Time) ([]Device, error)
	// DeleteDevice removes one of the user's devices: ErrNotFound when the
	// user has no device with that ID (another user's device is not
	// theirs to remove).
	DeleteDevice(ctx context.Context, userID, id string) error
	// DeleteDevices removes every device of the user (a password reset,
	// an administrator) and returns how many there were.
	DeleteDevices(ctx context.Context, userID string) (int, error)
}

// Factor is a second factor the customer enrolled: an authenticator app, a
// passkey, or a set of challenge questions.
type Factor struct {
	ID     string
	UserID string
	// Kind is "totp", "passkey" or "questions".
	Kind string
	// Name is what the person called it ("work phone", "YubiKey").
	Name string
	// Secret is what checking the factor needs, kept whole by the store:
	// the TOTP key, the passkey's public credential, the questions with
	// their hashed answers. The credential package owns its format.
	Secret []byte
	// Counter is the factor's replay guard: the last TOTP time step
	// accepted, the passkey's signature count.
	Counter    int64
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// Factors keeps second factors.
type Factors interface {
	// AddFactor stores a new factor. ErrConflict when the ID is taken.
	AddFactor(ctx context.Context, f Factor) error
	// FactorsOf returns the user's factors, oldest first.
	FactorsOf(ctx context.Context, userID string) ([]Factor, error)
	// AdvanceFactor is the replay guard's compare-and-set: in one atomic
	// step it sets the factor's Counter to counter and LastUsedAt to at if
	// counter is greater than the Counter stored, and reports whether it
	// did. Of any number of concurrent callers with the same counter, one
	// gets true. ErrNotFound unless the user has the factor.
	AdvanceFactor(ctx context.Context, userID, id string, counter int64, at time.Time) (bool, error)
	// DeleteFactor removes one of the user's factors; ErrNotFound when the
	// user has no factor with that ID.
	DeleteFactor(ctx context.Context, userID, id string) error
}

// Upkeep is what the process that owns a store needs of it beside the parts.
type Upkeep interface {
	// Ping reports whether the store can be read and written: it proves a
	// write (one that changes nothing the gateway reads), not only a
	// connection.
	Ping(ctx context.Context) error
	// Sweep deletes what has expired at now: sessions past ExpiresAt,
	// single-use records, devices, counter windows. Stores that expire records by
	// themselves may do nothing.
	Sweep(ctx context.Context, now time.Time) error
	Close() error
}
