package postgres

import (
	"context"

	"github.com/portcullis/portcullis/gateway/store"
)

// ListUserSessions returns every session of the user, expired or not, most
// recently seen first (of sessions seen at the same instant, by ID).
func (s *Store) ListUserSessions(ctx context.Context, userID string) ([]store.Session, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = $1 ORDER BY last_seen DESC NULLS LAST, id`, userID)
	sessions, err := collect(rows, err, scanSession)
	if err != nil {
		return nil, storeErr("list user sessions", err)
	}
	return sessions, nil
}

// DeleteUserSessions deletes every session of the user but keep in one
// statement, which returns the IDs it deleted. The statement sees the
// sessions committed when it started: one created concurrently is either
// among them (deleted and returned) or not (kept and not returned).
func (s *Store) DeleteUserSessions(ctx context.Context, userID, keep string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `DELETE FROM sessions WHERE user_id = $1 AND id <> $2 RETURNING id`, userID, keep)
	ids, err := collect(rows, err, func(row scanner) (string, error) {
		var id string
		err := row.Scan(&id)
		return id, err
	})
	if err != nil {
		return nil, storeErr("delete user sessions", err)
	}
	return ids, nil
}
