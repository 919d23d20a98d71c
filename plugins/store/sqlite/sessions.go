package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// CreateSession stores a new session; ErrConflict if its ID is taken.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	methods := sess.Methods
	if methods == nil {
		methods = []string{} // stored as [], not null
	}
	methodsJSON, err := json.Marshal(methods)
	if err != nil {
		return storeErr("create session", err)
	}
	_, err = s.write.ExecContext(ctx, `INSERT INTO sessions
		(id, login_id, user_id, host, methods, auth_time, last_seen, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		sess.ID, sess.LoginID, sess.UserID, sess.Host, string(methodsJSON),
		timeArg(sess.AuthTime), timeArg(sess.LastSeen), timeArg(sess.ExpiresAt))
	if err != nil {
		return storeErr("create session", err)
	}
	return nil
}

// GetSession returns the session with the given ID, whether or not it has
// expired: expiry is the caller's decision.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	var (
		sess    store.Session
		methods string
	)
	err := s.read.QueryRowContext(ctx, `SELECT id, login_id, user_id, host, methods, auth_time, last_seen, expires_at
		FROM sessions WHERE id = ?`, id).Scan(
		&sess.ID, &sess.LoginID, &sess.UserID, &sess.Host, &methods,
		timeCol{&sess.AuthTime}, timeCol{&sess.LastSeen}, timeCol{&sess.ExpiresAt})
	if err != nil {
		return store.Session{}, storeErr("get session", err)
	}
	if err := json.Unmarshal([]byte(methods), &sess.Methods); err != nil {
		return store.Session{}, storeErr("get session", fmt.Errorf("methods: %w", err))
	}
	return sess, nil
}

// TouchSession sets the session's LastSeen; ErrNotFound for an unknown
// session.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	err := oneRow(s.write.ExecContext(ctx, `UPDATE sessions SET last_seen = ? WHERE id = ?`, timeArg(at), id))
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
