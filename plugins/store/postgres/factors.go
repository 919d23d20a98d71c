package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis/portcullis/gateway/store"
)

const factorColumns = `id, user_id, kind, name, secret, counter, created_at, last_used_at`

// factorDest are the scan targets of factorColumns for f.
func factorDest(f *store.Factor) []any {
	return []any{&f.ID, &f.UserID, &f.Kind, &f.Name, &f.Secret, &f.Counter, timeCol{&f.CreatedAt}, timeCol{&f.LastUsedAt}}
}

func scanFactor(row scanner) (f store.Factor, err error) { return f, row.Scan(factorDest(&f)...) }

// AddFactor enrols a factor. Factor IDs are unique over every user:
// ErrConflict when any user's factor has the ID.
func (s *Store) AddFactor(ctx context.Context, f store.Factor) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO factors (`+factorColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		f.ID, f.UserID, f.Kind, f.Name, bytesArg(f.Secret), f.Counter, ts(f.CreatedAt), ts(f.LastUsedAt))
	if err != nil {
		return storeErr("add factor", err)
	}
	return nil
}

// FactorsOf lists the user's factors by CreatedAt, oldest first, and those
// created at one instant in the order they were enrolled.
func (s *Store) FactorsOf(ctx context.Context, userID string) ([]store.Factor, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+factorColumns+` FROM factors
		WHERE user_id = $1 ORDER BY created_at, seq`, userID)
	factors, err := collect(rows, err, scanFactor)
	if err != nil {
		return nil, storeErr("list factors", err)
	}
	return factors, nil
}

// AdvanceFactor moves the factor's counter forward in one conditional
// statement that also reports whether the user has the factor. Of concurrent
// callers, each update waits for the one before it and tests its counter
// against the counter that one committed, so only a greater counter wins.
func (s *Store) AdvanceFactor(ctx context.Context, userID, id string, counter int64, at time.Time) (bool, error) {
	var advanced, found bool
	err := s.pool.QueryRow(ctx, `WITH advanced AS (
			UPDATE factors SET counter = $3, last_used_at = $4
			WHERE user_id = $1 AND id = $2 AND counter < $3
			RETURNING 1
		)
		SELECT EXISTS (SELECT 1 FROM advanced), EXISTS (SELECT 1 FROM factors WHERE user_id = $1 AND id = $2)`,
		userID, id, counter, ts(at)).Scan(&advanced, &found)
	switch {
	case err != nil:
		return false, storeErr("advance factor", err)
	case !advanced && !found:
		return false, storeErr("advance factor", pgx.ErrNoRows)
	}
	return advanced, nil
}

// DeleteFactor removes one factor of the user with a single statement that
// names both: ErrNotFound when the user has no factor with the ID, also when
// another user has.
func (s *Store) DeleteFactor(ctx context.Context, userID, id string) error {
	err := oneRow(s.pool.Exec(ctx, `DELETE FROM factors WHERE user_id = $1 AND id = $2`, userID, id))
	if err != nil {
		return storeErr("delete factor", err)
	}
	return nil
}
