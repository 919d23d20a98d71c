package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/portcullis/portcullis/gateway"
)

// PutGrant stores a grant under id, replacing any grant already there.
func (s *Store) PutGrant(ctx context.Context, id string, g gateway.Grant) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO grants (id, session_id, host, expires_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET session_id = excluded.session_id, host = excluded.host, expires_at = excluded.expires_at`,
		id, g.SessionID, g.Host, timeArg(g.ExpiresAt))
	if err != nil {
		return storeErr("put grant", err)
	}
	return nil
}

// TakeGrant deletes the grant and returns it if it is still valid at now,
// that is, now is before its ExpiresAt. An expired grant is deleted too.
func (s *Store) TakeGrant(ctx context.Context, id string, now time.Time) (gateway.Grant, error) {
	var g gateway.Grant
	err := s.write.QueryRowContext(ctx, `DELETE FROM grants WHERE id = ? RETURNING session_id, host, expires_at`, id).
		Scan(&g.SessionID, &g.Host, timeCol{&g.ExpiresAt})
	if err != nil {
		return gateway.Grant{}, storeErr("take grant", err)
	}
	if !now.Before(g.ExpiresAt) {
		return gateway.Grant{}, fmt.Errorf("sqlite: take grant: %w (expired)", gateway.ErrNotFound)
	}
	return g, nil
}
