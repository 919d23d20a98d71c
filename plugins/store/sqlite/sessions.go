package sqlite

import (
	"context"
	"encoding/json"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

const sessionColumns = `id, login_id, user_id, host, methods, auth_time, last_seen, expires_at, device_id`

// insertSession stores one session, every column of sessionColumns given.
const insertSession = `INSERT INTO sessions (` + sessionColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

// sessionArgs are a session's values for sessionColumns, in order.
func sessionArgs(sess store.Session) ([]any, error) {
	methods := sess.Methods
	if methods == nil {
		methods = []string{} // stored as [], not null
	}
	methodsJSON, err := json.Marshal(methods)
	if err != nil {
		return nil, err
	}
	return []any{sess.ID, sess.LoginID, sess.UserID, sess.Host, string(methodsJSON),
		timeArg(sess.AuthTime), timeArg(sess.LastSeen), timeArg(sess.ExpiresAt), sess.DeviceID}, nil
}

// sessionDest are the scan targets of sessionColumns for sess; the methods
// column lands in methods, for stringList to read.
func sessionDest(sess *store.Session, methods *string) []any {
	return []any{&sess.ID, &sess.LoginID, &sess.UserID, &sess.Host, methods,
		timeCol{&sess.AuthTime}, timeCol{&sess.LastSeen}, timeCol{&sess.ExpiresAt}, &sess.DeviceID}
}

// CreateSession stores a new session; ErrConflict if its ID is taken.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	args, err := sessionArgs(sess)
	if err == nil {
		_, err = s.write.ExecContext(ctx, insertSession, args...)
	}
	if err != nil {
		return storeErr("create session", err)
	}
	return nil
}

// sessionUserQuery reads a session with its user in one statement: a left
// join, so that a session whose user is gone still reads, with NULL user
// columns that come back as the zero User.
const sessionUserQuery = `SELECT s.id, s.login_id, s.user_id, s.host, s.methods, s.auth_time, s.last_seen, s.expires_at, s.device_id,
	COALESCE(u.id, ''), COALESCE(u.username, ''), COALESCE(u.display_name, ''), COALESCE(u.password_hash, ''),
	COALESCE(u.failed_logins, 0), COALESCE(u.locked, 0), u.locked_at, COALESCE(u.products, '[]'),
	COALESCE(u.security_phone, ''), COALESCE(u.email, ''), COALESCE(u.customer_id, ''), u.consent_at,
	COALESCE(u.consent_version, ''), u.created_at, u.updated_at, COALESCE(u.step_up_failures, 0)
	FROM sessions AS s LEFT JOIN users AS u ON u.id = s.user_id WHERE s.id = ?`

// GetSession returns the session with the given ID, whether or not it has
// expired: expiry is the caller's decision.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	st, err := s.getSession.get(ctx)
	if err != nil {
		return store.Session{}, storeErr("get session", err)
	}
	var (
		sess    store.Session
		methods string
	)
	err = st.QueryRowContext(ctx, id).Scan(sessionDest(&sess, &methods)...)
	if err == nil {
		sess.Methods, err = stringList(methods)
	}
	if err != nil {
		return store.Session{}, storeErr("get session", err)
	}
	return sess, nil
}

// GetSessionUser returns the session with the given ID and its user, read
// in one statement (and so one read transaction); the zero User when the
// session's user does not exist.
func (s *Store) GetSessionUser(ctx context.Context, id string) (store.Session, store.User, error) {
	st, err := s.getSessionUser.get(ctx)
	if err != nil {
		return store.Session{}, store.User{}, storeErr("get session user", err)
	}
	var (
		sess              store.Session
		u                 store.User
		methods, products string
	)
	err = st.QueryRowContext(ctx, id).Scan(append(sessionDest(&sess, &methods),
		&u.ID, &u.Username, &u.DisplayName, &u.PasswordHash, &u.FailedLogins, &u.Locked,
		timeCol{&u.LockedAt}, &products, &u.SecurityPhone, &u.Email,
		&u.CustomerID, timeCol{&u.ConsentAt}, &u.ConsentVersion, timeCol{&u.CreatedAt}, timeCol{&u.UpdatedAt},
		&u.StepUpFailures)...)
	if err == nil {
		sess.Methods, err = stringList(methods)
	}
	if err == nil && u.ID != "" {
		u.Products, err = stringList(products)
	}
	if err != nil {
		return store.Session{}, store.User{}, storeErr("get session user", err)
	}
	return sess, u, nil
}

// TouchSession sets the session's LastSeen; ErrNotFound for an unknown
// session.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	st, err := s.touchSession.get(ctx)
	if err == nil {
		err = oneRow(st.ExecContext(ctx, timeArg(at), id))
	}
	if err != nil {
		return storeErr("touch session", err)
	}
	return nil
}

// DeleteSession deletes the session; deleting an unknown session is not an
// error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.write.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, id); err != nil {
		return storeErr("delete session", err)
	}
	return nil
}

// DeleteLogin deletes every session of the login.
func (s *Store) DeleteLogin(ctx context.Context, loginID string) error {
	if _, err := s.write.ExecContext(ctx, `DELETE FROM sessions WHERE login_id = ?`, loginID); err != nil {
		return storeErr("delete login", err)
	}
	return nil
}
