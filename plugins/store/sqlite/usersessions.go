package sqlite

import (
	"context"

	"github.com/portcullis/portcullis/gateway/store"
)

// ListUserSessions returns every session of the user, expired or not, most
// recently seen first (of sessions seen at the same instant, by ID).
func (s *Store) ListUserSessions(ctx context.Context, userID string) ([]store.Session, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = ? ORDER BY last_seen DESC NULLS LAST, id`, userID)
	if err != nil {
		return nil, storeErr("list user sessions", err)
	}
	defer rows.Close()
	sessions := []store.Session{}
	for rows.Next() {
		var (
			sess    store.Session
			methods string
		)
		err := rows.Scan(sessionDest(&sess, &methods)...)
		if err == nil {
			sess.Methods, err = stringList(methods)
		}
		if err != nil {
			return nil, storeErr("list user sessions", err)
		}
		sessions = append(sessions, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("list user sessions", err)
	}
	return sessions, nil
}

// DeleteUserSessions deletes every session of the user but keep in one
// statement, which returns the IDs it deleted: a session inserted
// concurrently is either in the statement's snapshot (deleted and
// returned) or committed after it (kept).
func (s *Store) DeleteUserSessions(ctx context.Context, userID, keep string) ([]string, error) {
	rows, err := s.write.QueryContext(ctx, `DELETE FROM sessions WHERE user_id = ? AND id <> ? RETURNING id`, userID, keep)
	if err != nil {
		return nil, storeErr("delete user sessions", err)
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, storeErr("delete user sessions", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("delete user sessions", err)
	}
	if err := rows.Close(); err != nil {
		return nil, storeErr("delete user sessions", err)
	}
	return ids, nil
}
