package sqlite

import (
	"context"
	"time"

	"github.com/portcullis/portcullis/assertion"
)

// SigningKeys returns every key, oldest first: by CreatedAt, then in the
// order they were added.
func (s *Store) SigningKeys(ctx context.Context) ([]assertion.Key, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, private_key, created_at, retired_at
		FROM signing_keys ORDER BY created_at, rowid`)
	if err != nil {
		return nil, storeErr("list signing keys", err)
	}
	defer rows.Close()
	var keys []assertion.Key
	for rows.Next() {
		var k assertion.Key
		if err := rows.Scan(&k.ID, &k.PrivateKey, timeCol{&k.CreatedAt}, timeCol{&k.RetiredAt}); err != nil {
			return nil, storeErr("list signing keys", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("list signing keys", err)
	}
	return keys, nil
}

// AddSigningKey stores a new key; ErrConflict if its ID is taken.
func (s *Store) AddSigningKey(ctx context.Context, k assertion.Key) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO signing_keys (id, private_key, created_at, retired_at) VALUES (?, ?, ?, ?)`,
		k.ID, k.PrivateKey, timeArg(k.CreatedAt), timeArg(k.RetiredAt))
	if err != nil {
		return storeErr("add signing key", err)
	}
	return nil
}

// RetireSigningKey sets the key's RetiredAt; ErrNotFound for an unknown key.
func (s *Store) RetireSigningKey(ctx context.Context, id string, at time.Time) error {
	err := oneRow(s.write.ExecContext(ctx, `UPDATE signing_keys SET retired_at = ? WHERE id = ?`, timeArg(at), id))
	if err != nil {
		return storeErr("retire signing key", err)
	}
	return nil
}
