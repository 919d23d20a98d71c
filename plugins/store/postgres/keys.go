package postgres

import (
	"context"
	"time"

	"github.com/portcullis/portcullis/assertion"
)

// SigningKeys lists the keys by CreatedAt, oldest first, and keys created at
// one instant in the order they were added.
func (s *Store) SigningKeys(ctx context.Context) ([]assertion.Key, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, private_key, created_at, retired_at
		FROM signing_keys ORDER BY created_at, seq`)
	keys, err := collect(rows, err, func(row scanner) (assertion.Key, error) {
		var k assertion.Key
		err := row.Scan(&k.ID, &k.PrivateKey, timeCol{&k.CreatedAt}, timeCol{&k.RetiredAt})
		return k, err
	})
	if err != nil {
		return nil, storeErr("list signing keys", err)
	}
	return keys, nil
}

// AddSigningKey stores a key; ErrConflict when a key has its ID.
func (s *Store) AddSigningKey(ctx context.Context, k assertion.Key) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO signing_keys (id, private_key, created_at, retired_at) VALUES ($1, $2, $3, $4)`,
		k.ID, bytesArg(k.PrivateKey), ts(k.CreatedAt), ts(k.RetiredAt))
	if err != nil {
		return storeErr("add signing key", err)
	}
	return nil
}

// RetireSigningKey records when the key was retired; ErrNotFound when no
// key has the ID.
func (s *Store) RetireSigningKey(ctx context.Context, id string, at time.Time) error {
	err := oneRow(s.pool.Exec(ctx, `UPDATE signing_keys SET retired_at = $1 WHERE id = $2`, ts(at), id))
	if err != nil {
		return storeErr("retire signing key", err)
	}
	return nil
}
