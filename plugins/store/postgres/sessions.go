package postgres

import (
	"context"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

const sessionColumns = `id, login_id, user_id, host, methods, auth_time, last_seen, expires_at, device_id`

// insertSession stores one session, every column of sessionColumns given.
const insertSession = `INSERT INTO sessions (` + sessionColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

// sessionArgs are a session's values for sessionColumns, in order.
func sessionArgs(sess store.Session) []any {
	return []any{sess.ID, sess.LoginID, sess.UserID, sess.Host, textArray(sess.Methods),
		ts(sess.AuthTime), ts(sess.LastSeen), ts(sess.ExpiresAt), sess.DeviceID}
}

// sessionDest are the scan targets of sessionColumns for sess.
func sessionDest(sess *store.Session) []any {
	return []any{&sess.ID, &sess.LoginID, &sess.UserID, &sess.Host, &sess.Methods,
		timeCol{&sess.AuthTime}, timeCol{&sess.LastSeen}, timeCol{&sess.ExpiresAt}, &sess.DeviceID}
}

// scanSession reads a row of sessionColumns.
func scanSession(row scanner) (store.Session, error) {
	var sess store.Session
	err := row.Scan(sessionDest(&sess)...)
	return sess, err
}

// CreateSession stores a new session; ErrConflict if its ID is taken.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	if _, err := s.pool.Exec(ctx, insertSession, sessionArgs(sess)...); err != nil {
		return storeErr("create session", err)
	}
	return nil
}

// GetSession reads a session by ID, past its ExpiresAt or not: the caller
// judges expiry.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1`, id))
	if err != nil {
		return store.Session{}, lookupErr("get session", err)
	}
	return sess, nil
}

// sessionUserQuery reads a session with its user in one statement: a left
// join, so that a session whose user is gone still reads, with user columns
// that come back as the zero User.
const sessionUserQuery = `SELECT s.id, s.login_id, s.user_id, s.host, s.methods, s.auth_time, s.last_seen, s.expires_at, s.device_id,
	COALESCE(u.id, ''), COALESCE(u.username, ''), COALESCE(u.display_name, ''), COALESCE(u.password_hash, ''),
	COALESCE(u.failed_logins, 0), COALESCE(u.step_up_failures, 0), COALESCE(u.locked, false), u.locked_at,
	u.products, COALESCE(u.security_phone, ''), COALESCE(u.email, ''), COALESCE(u.customer_id, ''),
	u.consent_at, COALESCE(u.consent_version, ''), u.created_at, u.updated_at
	FROM sessions AS s LEFT JOIN users AS u ON u.id = s.user_id WHERE s.id = $1`

// GetSessionUser returns the session with the given ID and its user, read in
// one statement and so as of one snapshot; the zero User when the session's
// user does not exist.
func (s *Store) GetSessionUser(ctx context.Context, id string) (store.Session, store.User, error) {
	var (
		sess store.Session
		u    store.User
	)
	err := s.pool.QueryRow(ctx, sessionUserQuery, id).Scan(append(sessionDest(&sess), userDest(&u)...)...)
	if err != nil {
		return store.Session{}, store.User{}, lookupErr("get session user", err)
	}
	return sess, u, nil
}

// TouchSession records that the session was used at the given time;
// ErrNotFound when no session has the ID.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	err := oneRow(s.pool.Exec(ctx, `UPDATE sessions SET last_seen = $1 WHERE id = $2`, ts(at), id))
	if err != nil {
		return storeErr("touch session", err)
	}
	return nil
}

// DeleteSession removes the session; when there is none, there is nothing to
// do and no error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id = $1`, id); err != nil {
		return storeErr("delete session", err)
	}
	return nil
}

// DeleteLogin deletes every session of the login in one statement.
func (s *Store) DeleteLogin(ctx context.Context, loginID string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE login_id = $1`, loginID); err != nil {
		return storeErr("delete login", err)
	}
	return nil
}
